"""GNN training with TF-GNN's Runner: the MtAlbis model template on sampled subgraphs.

`train()` is `tensorflow_gnn.runner.run` with a `RootNodeMulticlassClassification` task whose
label is the root node's label feature (removed from every node of that set before the model
sees it), a model built from `ModelConfig`, and a KerasModelExporter whose `serving_default`
takes serialized GraphTensor tf.Examples.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence

import tensorflow as tf
import tensorflow_gnn as tfgnn
from tensorflow_gnn import runner
from tensorflow_gnn.models import mt_albis

from components import graph_io
from components.attribution import exporter as ig_exporter
from pipelines.config import ModelConfig, TrainerConfig

OUTPUT_NAME = "logits"
# A second SavedModel, `<export_dir>/integrated_gradients/`, whose `integrated_gradients`
# signature returns a GraphTensor of summed gradients named IG_OUTPUT_NAME (the Attribution
# component reads it); a subdirectory because TF-GNN's IG exporter cannot name serving outputs.
IG_SUBDIR = "integrated_gradients"
IG_OUTPUT_NAME = "gradients"
# The ModelConfig fields that are MtAlbisGraphUpdate arguments, passed through unchanged.
MT_ALBIS_OPTIONS = (
    "units", "message_dim", "attention_type", "attention_edge_set_names",
    "attention_num_heads", "simple_conv_reduce_type", "simple_conv_use_receiver_state",
    "state_dropout_rate", "edge_dropout_rate", "l2_regularization", "normalization_type",
    "batch_normalization_momentum", "next_state_type", "edge_set_combine_type")


def _input_features(node_set_spec) -> list[str]:
  return sorted(k for k in node_set_spec.features_spec if not k.startswith("#"))


def _l2(factor: float):
  return tf.keras.regularizers.l2(factor) if factor else None


def initial_states(gtspec: tfgnn.GraphTensorSpec, cfg: ModelConfig) -> tf.keras.layers.Layer:
  """Initial node states: dense features projected to `units`; node sets without features get
  a trainable embedding of their hashed `#id` (as TF-GNN's OGBN-MAG example does)."""

  def node_sets_fn(node_set, *, node_set_name):
    names = _input_features(gtspec.node_sets_spec[node_set_name])
    if names:
      parts = []
      for name in names:
        value = tf.cast(node_set[name], tf.float32)
        if value.shape.rank == 1:
          value = tf.expand_dims(value, -1)
        parts.append(value)
      x = tf.concat(parts, -1) if len(parts) > 1 else parts[0]
      if cfg.feature_normalization == "sum":  # as GCN/GAT row-normalize bag-of-words
        x = x / tf.maximum(tf.reduce_sum(tf.abs(x), -1, keepdims=True), 1e-12)
      elif cfg.feature_normalization == "l2":
        x = tf.math.l2_normalize(x, -1)
      if cfg.input_dropout_rate:
        x = tf.keras.layers.Dropout(cfg.input_dropout_rate)(x)
      return tf.keras.layers.Dense(
          cfg.units, name=f"project_{node_set_name}",
          kernel_regularizer=_l2(cfg.l2_regularization))(x)
    if graph_io.ID in gtspec.node_sets_spec[node_set_name].features_spec:
      ids = tf.keras.layers.Hashing(cfg.id_hash_bins)(node_set[graph_io.ID])
      return tf.keras.layers.Embedding(
          cfg.id_hash_bins, cfg.id_embedding_dim, name=f"embed_{node_set_name}",
          embeddings_regularizer=_l2(cfg.l2_regularization))(ids)
    # Neither features nor ids: a constant state; messages still carry structure.
    return tfgnn.keras.layers.MakeEmptyFeature()(node_set)

  return tfgnn.keras.layers.MapFeatures(node_sets_fn=node_sets_fn, name="initial_states")


def build_model_fn(cfg: ModelConfig, root_node_set: str) -> Callable[[tfgnn.GraphTensorSpec],
                                                                     tf.keras.Model]:
  """The Runner's `model_fn`: GraphTensor in, GraphTensor with hidden states out."""

  def model_fn(gtspec: tfgnn.GraphTensorSpec) -> tf.keras.Model:
    inputs = tf.keras.layers.Input(type_spec=gtspec)
    graph = initial_states(gtspec, cfg)(inputs)
    if cfg.features_only:
      # The baseline without message passing: an MLP on the root node's own features.
      graph = tfgnn.keras.layers.MapFeatures(
          node_sets_fn=lambda ns, node_set_name: (
              tf.keras.layers.Dense(cfg.units, "relu")(ns[tfgnn.HIDDEN_STATE])
              if node_set_name == root_node_set else ns[tfgnn.HIDDEN_STATE]),
          name="features_only")(graph)
      return tf.keras.Model(inputs, graph)
    options = {name: getattr(cfg, name) for name in MT_ALBIS_OPTIONS}
    for i in range(cfg.num_rounds):
      last = i == cfg.num_rounds - 1
      graph = mt_albis.MtAlbisGraphUpdate(
          # Sampled edges point away from the root: messages flow back to the source.
          receiver_tag=tfgnn.SOURCE,
          # Only the root's node set matters after the last round.
          node_set_names=[root_node_set] if last else None,
          **options)(graph)
    return tf.keras.Model(inputs, graph)

  return model_fn


@dataclasses.dataclass
class TrainResult:
  history: dict[str, list[float]]  # per-epoch metrics, Keras names
  export_dir: str


class _History(tf.keras.callbacks.Callback):
  """Records per-epoch logs and forwards them (e.g. to MLflow)."""

  def __init__(self, on_epoch: Optional[Callable[[int, dict], None]]):
    super().__init__()
    self.history: dict[str, list[float]] = {}
    self._on_epoch = on_epoch

  def on_epoch_end(self, epoch, logs=None):
    logs = {k: float(v) for k, v in (logs or {}).items()}
    for k, v in logs.items():
      self.history.setdefault(k, []).append(v)
    if self._on_epoch:
      self._on_epoch(epoch, logs)


def train(*, train_files: Sequence[str], eval_files: Sequence[str],
          subgraph_schema: tfgnn.GraphSchema, label: graph_io.Label, model_cfg: ModelConfig,
          trainer_cfg: TrainerConfig, model_dir: str, export_dir: str,
          backup_dir: Optional[str] = None,
          on_epoch: Optional[Callable[[int, dict], None]] = None) -> TrainResult:
  """Trains and exports the model; `model_dir` holds checkpoints; training backs up to
  `backup_dir` (default `<model_dir>/backup`) after each epoch and resumes from it."""
  tf.keras.utils.set_random_seed(trainer_cfg.seed)
  gtspec = tfgnn.create_graph_spec_from_schema_pb(subgraph_schema)
  task = runner.RootNodeMulticlassClassification(
      label.node_set, num_classes=label.num_classes,
      label_fn=runner.RootNodeLabelFn(label.node_set, feature_name=label.feature))
  history = _History(on_epoch)
  trainer = runner.KerasTrainer(
      strategy=tf.distribute.get_strategy(),
      model_dir=model_dir,
      backup_dir=backup_dir,
      steps_per_epoch=trainer_cfg.steps_per_epoch,
      callbacks=[history],
      verbose=0)

  def optimizer_fn():
    return tf.keras.optimizers.AdamW(trainer_cfg.learning_rate,
                                     weight_decay=trainer_cfg.weight_decay)

  train_ds = runner.TFRecordDatasetProvider(
      filenames=list(train_files), shuffle_filenames=True,
      examples_shuffle_size=trainer_cfg.shuffle_buffer)
  eval_ds = runner.TFRecordDatasetProvider(filenames=list(eval_files)) if eval_files else None
  runner.run(
      train_ds_provider=train_ds,
      valid_ds_provider=eval_ds,
      model_fn=build_model_fn(model_cfg, label.node_set),
      optimizer_fn=optimizer_fn,
      trainer=trainer,
      task=task,
      gtspec=gtspec,
      global_batch_size=trainer_cfg.batch_size,
      epochs=trainer_cfg.epochs,
      model_exporters=[runner.KerasModelExporter(output_names=OUTPUT_NAME),
                       ig_exporter.IntegratedGradientsExporter(
                           IG_OUTPUT_NAME, subdirectory=IG_SUBDIR,
                           **trainer_cfg.integrated_gradients.model_dump())],
      export_dirs=[export_dir])
  return TrainResult(history.history, export_dir)
