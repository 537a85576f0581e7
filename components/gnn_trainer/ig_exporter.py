"""TF-GNN's IntegratedGradientsExporter, restricted to floating-point input features.

The Runner's exporter interpolates *every* feature of the input GraphTensor between a
counterfactual and the input; `tf.math.subtract` then fails on the string `#id` features that
models use for hashed-id embeddings of featureless node sets (e.g. MAG's authors and fields of
study), so the export fails for such models. This exporter runs the same method, with the
library's own helpers (`counterfactual`, `interpolate_graph_features`, `sum_graph_features`,
`reduce_graph_sequence`), over the floating-point features only and holds every other feature
(ids, integers) at its input value. On a graph whose features are all floats it computes
exactly what the library's `integrated_gradients` does (tests/test_attribution.py checks).
"""
from __future__ import annotations

import os
from typing import Optional

import tensorflow as tf
import tensorflow_gnn as tfgnn
from tensorflow_gnn.runner import interfaces
from tensorflow_gnn.runner.utils import attribution as tfgnn_attribution

from tfx_gnn.components import graph_io

SIGNATURE = "integrated_gradients"


def _split_features(graph: tfgnn.GraphTensor):
  """(graph with only the floating-point node/edge/context features, the other features)."""
  def floats(features):
    return {k: v for k, v in features.items() if v.dtype.is_floating}

  def others(features):
    return {k: v for k, v in features.items() if not v.dtype.is_floating}

  kept = {"context": others(graph.context.features),
          "node_sets": {n: others(s.features) for n, s in graph.node_sets.items()},
          "edge_sets": {e: others(s.features) for e, s in graph.edge_sets.items()}}
  numeric = graph.replace_features(
      context=floats(graph.context.features),
      node_sets={n: floats(s.features) for n, s in graph.node_sets.items()},
      edge_sets={e: floats(s.features) for e, s in graph.edge_sets.items()})
  return numeric, kept


def _with_features(graph: tfgnn.GraphTensor, kept: dict) -> tfgnn.GraphTensor:
  return graph.replace_features(
      context={**graph.context.features, **kept["context"]},
      node_sets={n: {**s.features, **kept["node_sets"][n]} for n, s in graph.node_sets.items()},
      edge_sets={e: {**s.features, **kept["edge_sets"][e]} for e, s in graph.edge_sets.items()})


def integrated_gradients(preprocess_model: tf.keras.Model, model: tf.keras.Model, *,
                         output_name: Optional[str], random_counterfactual: bool, steps: int,
                         seed: Optional[int] = None):
  """As `tensorflow_gnn.runner.utils.attribution.integrated_gradients`, over the
  floating-point features only: returns their summed gradients as a GraphTensor."""

  @tf.function(input_signature=tfgnn_attribution._input_signature(preprocess_model))
  def fn(inputs):
    graph, labels = preprocess_model(inputs)
    if isinstance(graph, (list, tuple)):
      graph, *_ = graph
    tfgnn.check_scalar_graph_tensor(graph, name="integrated_gradients")
    numeric, kept = _split_features(graph)
    baseline = tfgnn_attribution.counterfactual(numeric, random=random_counterfactual,
                                                seed=seed)
    delta = tfgnn_attribution.subtract_graph_features(numeric, baseline)

    def scaled(graph, factor):
      fn = lambda inputs: tf.math.multiply(*inputs, factor)
      return tfgnn_attribution.reduce_graph_sequence(
          (graph,), context_fn=fn, edge_set_fn=fn, node_set_fn=fn)

    def gradient_at(alpha):
      """The gradients at the interpolation `baseline + alpha * delta`."""
      interpolation = tfgnn_attribution.sum_graph_features((baseline, scaled(delta, alpha)))
      with tf.GradientTape(persistent=True) as tape:
        tape.watch(interpolation)
        logits = model(_with_features(interpolation, kept))
        loss = model.compiled_loss(labels, logits, regularization_losses=model.losses)

      def gradient_fn(inputs):
        return tape.gradient(loss, *inputs, unconnected_gradients=tf.UnconnectedGradients.ZERO)

      return tfgnn_attribution.reduce_graph_sequence(
          (interpolation,), context_fn=gradient_fn, edge_set_fn=gradient_fn,
          node_set_fn=gradient_fn)

    # The library unrolls its `steps` interpolations (np.linspace(0, 1, steps)) into `steps`
    # copies of the model; a while loop over the same alphas traces the model once, which
    # makes the export (and the SavedModel) many times smaller and faster.
    alphas = tf.linspace(0.0, 1.0, steps)
    summed = scaled(numeric, 0.0)
    for i in tf.range(steps):
      summed = tfgnn_attribution.sum_graph_features(
          (summed, gradient_at(tf.gather(alphas, i))))
    if output_name is None:
      return summed
    # The inputs the gradients were taken at: the features after preprocessing (e.g.
    # `feature_normalization`), which an attribution multiplies, and the root labels, so
    # that a reader needs no second parse of the serialized batch.
    outputs = {output_name: summed, graph_io.IG_INPUTS_OUTPUT: numeric}
    if isinstance(labels, tf.Tensor):  # not a multi-task dict
      outputs[graph_io.IG_LABELS_OUTPUT] = labels
    return outputs

  return fn


class IntegratedGradientsExporter(tfgnn_attribution.IntegratedGradientsExporter):
  """The Runner's exporter (same arguments, same signature) with `integrated_gradients` over
  the floating-point features only, saved as a plain SavedModel: Attribution, its one reader,
  loads the signature with `tf.saved_model.load`."""

  def save(self, run_result: interfaces.RunResult, export_dir: str):
    preprocess_model = run_result.preprocess_model
    model = run_result.trained_model
    if preprocess_model is None:
      raise ValueError("Integrated gradients requires a `preprocess_model`.")
    signatures = {
        SIGNATURE: integrated_gradients(
            preprocess_model, model, output_name=self._integrated_gradients_output_name,
            random_counterfactual=self._random_counterfactual, steps=self._steps,
            seed=self._seed)}
    # A module that holds only the variables the signature reads (the model's, the
    # preprocessing's, and the compiled loss's mean metric, which the signature's loss
    # updates), not the Keras models: saving those would also serialize every layer's config
    # and call traces, which nothing reads here (the library's exporter retraced the whole
    # model for them, most of the export's time).
    holder = tf.Module()
    holder.read_variables = [
        *preprocess_model.variables, *model.variables,
        *(v for metric in model.compiled_loss.metrics for v in metric.variables)]
    if self._subdirectory:
      export_dir = os.path.join(export_dir, self._subdirectory)
    tf.saved_model.save(holder, export_dir, signatures=signatures, options=self._options)
