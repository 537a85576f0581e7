"""Test-split metrics of an exported GNN and the blessing decision (plain functions)."""
from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_gnn as tfgnn  # registers the GraphTensor ops the SavedModel needs

from tfx_gnn.components import graph_io
from tfx_gnn.components.gnn_evaluator.config import EvaluationConfig


def predict(model_dir: str, files: Sequence[str], subgraph_schema: tfgnn.GraphSchema,
            label: Optional[graph_io.Label], batch_size: int = 256,
            target: Optional[tuple] = None) -> tuple[np.ndarray, np.ndarray]:
  """Runs the SavedModel's `serving_default` over serialized subgraphs.

  Returns (labels, logits): each example's target, read from the examples themselves where
  `target` = (location, feature) says (the trainer records it on the Model): `root` (the
  root node's label; the default), `readout` (link prediction: the `_readout` node's label)
  or `context` (graph-level tasks).
  """
  location, feature = target or ("root", label.feature)
  # TF's own error here is a raw OSError about saved_model.pb{,txt}; say what the dir is.
  if not tf.saved_model.contains_saved_model(model_dir):
    raise ValueError(f"model directory {model_dir} is not a SavedModel (no saved_model.pb); "
                     "was the trainer's export interrupted?")
  serve = tf.saved_model.load(model_dir).signatures["serving_default"]
  gtspec = tfgnn.create_graph_spec_from_schema_pb(subgraph_schema)

  def root_labels(serialized):
    graph = tfgnn.parse_example(gtspec, serialized).merge_batch_to_components()
    if location == "readout":
      return graph.node_sets["_readout"][feature]
    if location == "context":
      return graph.context[feature]
    return tfgnn.gather_first_node(graph, label.node_set, feature_name=feature)

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


LOWER_IS_BETTER = ("mse", "mae", "rmse")


def binary_metrics(labels: np.ndarray, logits: np.ndarray) -> dict:
  """Root-node binary classification: accuracy, F1s at logit 0, and ROC AUC (rank-based)."""
  scores = logits.reshape(-1)
  out = classification_metrics(labels.astype(np.int64), np.stack([-scores, scores], -1), 2)
  positives, negatives = scores[labels == 1], scores[labels == 0]
  if len(positives) and len(negatives):
    # P(score of a random positive > score of a random negative), ties count half.
    greater = (positives[:, None] > negatives[None, :]).mean()
    ties = (positives[:, None] == negatives[None, :]).mean()
    out["auc"] = float(greater + 0.5 * ties)
  else:
    out["auc"] = 0.5
  return out


def regression_metrics(targets: np.ndarray, predictions: np.ndarray) -> dict:
  errors = predictions.reshape(-1) - targets.reshape(-1).astype(np.float64)
  mse = float(np.mean(errors ** 2))
  return {"num_examples": int(len(errors)), "mse": mse, "rmse": float(np.sqrt(mse)),
          "mae": float(np.mean(np.abs(errors)))}


def linear_probe_metrics(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                         test_y: np.ndarray, num_classes: int) -> dict:
  """How well frozen embeddings (or raw features) separate the classes: a logistic regression
  fitted on the train split, scored on the test split (the usual DGI protocol)."""
  from sklearn.linear_model import LogisticRegression  # pylint: disable=g-import-not-at-top
  from sklearn.preprocessing import StandardScaler  # pylint: disable=g-import-not-at-top
  scaler = StandardScaler().fit(train_x)
  probe = LogisticRegression(max_iter=2000).fit(scaler.transform(train_x), train_y)
  logits = probe.decision_function(scaler.transform(test_x))
  full = np.full([len(test_y), num_classes], -np.inf)
  full[:, probe.classes_] = logits if logits.ndim == 2 else np.stack([-logits, logits], -1)
  return classification_metrics(test_y.astype(np.int64), full, num_classes)


def task_metrics(task: str, labels: np.ndarray, outputs: np.ndarray, num_classes: int) -> dict:
  """The metrics of one task family (TaskConfig.type) on (labels, model outputs)."""
  if task in ("root_node_binary", "link_prediction"):
    return binary_metrics(labels, outputs)
  if task in ("root_node_regression", "graph_regression"):
    return regression_metrics(labels, outputs)
  return classification_metrics(labels, outputs, num_classes)


def bless(candidate: dict, baseline: Optional[dict],
          config: EvaluationConfig) -> tuple[bool, list[str]]:
  """TFX-style validation: an absolute lower bound, and no regression beyond
  `max_regression` against the baseline (when there is one). Returns (blessed, reasons)."""
  metric = config.metric
  if metric not in candidate:
    raise ValueError(f"evaluation.metric: {metric!r} is not a metric of this task "
                     f"(it has {sorted(k for k, v in candidate.items() if isinstance(v, float))})")
  value = candidate[metric]
  reasons = []
  sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
  if metric in LOWER_IS_BETTER:
    if config.upper_bound is not None and value > config.upper_bound:
      reasons.append(f"{metric} {value:.4f} is above the upper bound {config.upper_bound:.4f}")
  elif value < config.lower_bound:
    reasons.append(f"{metric} {value:.4f} is below the lower bound {config.lower_bound:.4f}")
  if baseline is not None:
    change = sign * (value - baseline[metric])
    if change < -config.max_regression:
      reasons.append(
          f"{metric} {value:.4f} is {-change:.4f} worse than the baseline's "
          f"{baseline[metric]:.4f} (allowed: {config.max_regression:.4f})")
  return not reasons, reasons


def read_embeddings(path: str):
  """The trainer's embeddings Parquet (task dgi) as a pandas DataFrame."""
  import tempfile  # pylint: disable=g-import-not-at-top
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  if "://" not in path:
    return pq.read_table(path).to_pandas()
  with tempfile.TemporaryDirectory() as local:  # a remote store pyarrow may not know
    tf.io.gfile.copy(path, os.path.join(local, "e.parquet"))
    return pq.read_table(os.path.join(local, "e.parquet")).to_pandas()


def embedding_probe_metrics(path: str, split: str, num_classes: int) -> dict:
  """Linear-probe metrics of embeddings: fitted on the train rows, scored on `split`'s."""
  frame = read_embeddings(path)
  if "label" not in frame:
    raise ValueError(f"embeddings {path} have no label column to probe with")
  train, test = frame[frame.split == "train"], frame[frame.split == split]
  if train.empty or test.empty:
    raise ValueError(f"embeddings {path} lack train or {split!r} rows to probe with")
  return linear_probe_metrics(np.stack(train.embedding), train.label.to_numpy(),
                              np.stack(test.embedding), test.label.to_numpy(), num_classes)
