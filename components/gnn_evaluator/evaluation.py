"""Test-split metrics of an exported GNN and the blessing decision (plain functions)."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_gnn as tfgnn  # registers the GraphTensor ops the SavedModel needs

from components import graph_io
from pipelines.config import EvaluationConfig


def predict(model_dir: str, files: Sequence[str], subgraph_schema: tfgnn.GraphSchema,
            label: graph_io.Label, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
  """Runs the SavedModel's `serving_default` over serialized subgraphs.

  Returns (labels, logits): each subgraph's root label, read from the examples themselves.
  """
  # TF's own error here is a raw OSError about saved_model.pb{,txt}; say what the dir is.
  if not tf.saved_model.contains_saved_model(model_dir):
    raise ValueError(f"model directory {model_dir} is not a SavedModel (no saved_model.pb); "
                     "was the trainer's export interrupted?")
  serve = tf.saved_model.load(model_dir).signatures["serving_default"]
  gtspec = tfgnn.create_graph_spec_from_schema_pb(subgraph_schema)

  def root_labels(serialized):
    graph = tfgnn.parse_example(gtspec, serialized).merge_batch_to_components()
    return tfgnn.gather_first_node(graph, label.node_set, feature_name=label.feature)

  labels, logits = [], []
  for batch in tf.data.TFRecordDataset(list(files)).batch(batch_size):
    labels.append(root_labels(batch).numpy().reshape(-1))
    outputs = serve(examples=batch)
    logits.append(next(iter(outputs.values())).numpy())
  if not labels:
    raise ValueError(f"no examples to evaluate in {list(files)}")
  return np.concatenate(labels), np.concatenate(logits)


def classification_metrics(labels: np.ndarray, logits: np.ndarray,
                           num_classes: int) -> dict:
  """Accuracy, micro- and macro-F1 (over the classes present in labels or predictions)."""
  predictions = logits.argmax(-1)
  confusion = np.zeros([num_classes, num_classes], np.int64)
  np.add.at(confusion, (labels, predictions), 1)
  true_pos = np.diag(confusion).astype(np.float64)
  predicted = confusion.sum(0)
  actual = confusion.sum(1)
  present = (predicted + actual) > 0
  f1 = np.divide(2 * true_pos, predicted + actual, out=np.zeros(num_classes),
                 where=(predicted + actual) > 0)
  accuracy = float(true_pos.sum() / max(len(labels), 1))
  return {
      "num_examples": int(len(labels)),
      "accuracy": accuracy,
      # For single-label multiclass, micro-F1 equals accuracy.
      "micro_f1": accuracy,
      "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
      "confusion_matrix": confusion.tolist(),
  }


def bless(candidate: dict, baseline: Optional[dict],
          config: EvaluationConfig) -> tuple[bool, list[str]]:
  """TFX-style validation: an absolute lower bound, and no regression beyond
  `max_regression` against the baseline (when there is one). Returns (blessed, reasons)."""
  metric = config.metric
  value = candidate[metric]
  reasons = []
  if value < config.lower_bound:
    reasons.append(f"{metric} {value:.4f} is below the lower bound {config.lower_bound:.4f}")
  if baseline is not None:
    change = value - baseline[metric]
    if change < -config.max_regression:
      reasons.append(
          f"{metric} {value:.4f} is {-change:.4f} worse than the baseline's "
          f"{baseline[metric]:.4f} (allowed: {config.max_regression:.4f})")
  return not reasons, reasons
