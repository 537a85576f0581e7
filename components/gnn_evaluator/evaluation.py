"""Test-split metrics of an exported GNN and the blessing decision (plain functions)."""
from __future__ import annotations

import json
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


def predict_heads(model_dir: str, files: Sequence[str], subgraph_schema: tfgnn.GraphSchema,
                  root: str, heads: dict, batch_size: int = 256) -> dict:
  """A multi-task model's `serving_default` over serialized subgraphs: for each head (task
  name -> {feature, ...}, as the trainer records them) (targets, outputs), its target read
  from the root node's feature of the examples."""
  if not tf.saved_model.contains_saved_model(model_dir):
    raise ValueError(f"model directory {model_dir} is not a SavedModel (no saved_model.pb); "
                     "was the trainer's export interrupted?")
  serve = tf.saved_model.load(model_dir).signatures["serving_default"]
  gtspec = tfgnn.create_graph_spec_from_schema_pb(subgraph_schema)
  targets = {name: [] for name in heads}
  outputs = {name: [] for name in heads}
  for batch in tf.data.TFRecordDataset(list(files)).batch(batch_size):
    graph = tfgnn.parse_example(gtspec, batch).merge_batch_to_components()
    served = serve(examples=batch)
    for name, head in heads.items():
      targets[name].append(tfgnn.gather_first_node(
          graph, root, feature_name=head["feature"]).numpy().reshape(-1))
      outputs[name].append(served[name].numpy())
  if not any(targets.values()) or not next(iter(targets.values())):
    raise ValueError(f"no examples to evaluate in {list(files)}")
  return {name: (np.concatenate(targets[name]), np.concatenate(outputs[name]))
          for name in heads}


KERAS_METADATA = "keras_metadata.pb"


def serving_graph_spec(model_dir: str) -> Optional[tfgnn.GraphTensorSpec]:
  """The GraphTensorSpec with which a SavedModel's `serving_default` parses its examples:
  the config of the `ParseExample` layer that TF-GNN's KerasModelExporter saves in front of
  the model (Keras writes it to keras_metadata.pb). None for a SavedModel without one."""
  path = os.path.join(model_dir, KERAS_METADATA)
  if not tf.io.gfile.exists(path):
    return None
  try:  # Keras 2's own reader of this file (tf_keras has no public name for it)
    from tf_keras.protobuf import saved_metadata_pb2
    from tf_keras.src.saving.legacy.saved_model import json_utils
  except ImportError:
    return None
  metadata = saved_metadata_pb2.SavedMetadata()
  with tf.io.gfile.GFile(path, "rb") as f:
    metadata.ParseFromString(f.read())
  # The outermost parse layer is the serving signature's (`root.layer-1`).
  for node in sorted(metadata.nodes, key=lambda n: n.node_path.count(".")):
    layer = json.loads(node.metadata or "{}")
    if str(layer.get("class_name", "")).split(">")[-1] == "ParseExample":
      spec = json_utils.decode(json.dumps(layer["config"])).get("graph_tensor_spec")
      return spec if isinstance(spec, tfgnn.GraphTensorSpec) else None
  return None


def _item_shape(spec) -> str:
  return f"{spec.dtype.name} of shape {spec.shape[1:].as_list()}"


def spec_incompatibilities(model_spec: tfgnn.GraphTensorSpec,
                           examples_spec: tfgnn.GraphTensorSpec) -> list[str]:
  """What a model that parses examples with `model_spec` needs and examples written with
  `examples_spec` lack (sets, features, or a feature's dtype or shape); [] if it can score
  them. Extra sets and features are fine: parsing ignores them."""
  problems = []

  def compare(where: str, needed: dict, present: dict):
    for name, spec in sorted(needed.items()):
      if name not in present:
        problems.append(f"the baseline takes feature `{name}` of {where}, which this graph "
                        "no longer has")
      elif (spec.dtype != present[name].dtype
            or spec.shape[1:].as_list() != present[name].shape[1:].as_list()):
        problems.append(f"the baseline takes feature `{name}` of {where} as "
                        f"{_item_shape(spec)}; this graph has {_item_shape(present[name])}")

  compare("the context", model_spec.context_spec.features_spec,
          examples_spec.context_spec.features_spec)
  for kind, needed, present in (
      ("node set", model_spec.node_sets_spec, examples_spec.node_sets_spec),
      ("edge set", model_spec.edge_sets_spec, examples_spec.edge_sets_spec)):
    for name, spec in sorted(needed.items()):
      if name not in present:
        problems.append(f"the baseline takes {kind} `{name}`, which this graph no longer has")
      else:
        compare(f"{kind} `{name}`", spec.features_spec, present[name].features_spec)
  return problems


def baseline_incompatibilities(model_dir: str, subgraph_schema: tfgnn.GraphSchema) -> list[str]:
  """`spec_incompatibilities` of the SavedModel in `model_dir` with subgraphs of
  `subgraph_schema` ([] when the model does not say what it parses)."""
  model_spec = serving_graph_spec(model_dir)
  if model_spec is None:
    return []
  return spec_incompatibilities(model_spec,
                                tfgnn.create_graph_spec_from_schema_pb(subgraph_schema))


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
  """MSE, RMSE, MAE and R² (the share of the targets' variance explained: 0 for the mean
  predictor on these examples, 1 for a perfect one; 0 where the targets do not vary and the
  predictions miss them)."""
  targets = targets.reshape(-1).astype(np.float64)
  errors = predictions.reshape(-1) - targets
  mse = float(np.mean(errors ** 2))
  variance = float(np.var(targets)) if len(targets) else 0.0
  r2 = 1.0 - mse / variance if variance > 0 else (1.0 if mse == 0 else 0.0)
  return {"num_examples": int(len(errors)), "mse": mse, "rmse": float(np.sqrt(mse)),
          "mae": float(np.mean(np.abs(errors))), "r2": float(r2)}


def linear_probe_outputs(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                         num_classes: int) -> np.ndarray:
  """A logistic regression fitted on (train_x, train_y): its logits for test_x, one column
  per class (-inf for a class the train rows lack)."""
  from sklearn.linear_model import LogisticRegression
  from sklearn.preprocessing import StandardScaler
  scaler = StandardScaler().fit(train_x)
  probe = LogisticRegression(max_iter=2000).fit(scaler.transform(train_x), train_y)
  logits = probe.decision_function(scaler.transform(test_x))
  full = np.full([len(test_x), num_classes], -np.inf)
  full[:, probe.classes_] = logits if logits.ndim == 2 else np.stack([-logits, logits], -1)
  return full


def linear_probe_metrics(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                         test_y: np.ndarray, num_classes: int) -> dict:
  """How well frozen embeddings (or raw features) separate the classes: a logistic regression
  fitted on the train split, scored on the test split (the usual DGI protocol)."""
  return classification_metrics(
      test_y.astype(np.int64), linear_probe_outputs(train_x, train_y, test_x, num_classes),
      num_classes)


BINARY_TASKS = ("root_node_binary", "link_prediction")
REGRESSION_TASKS = ("root_node_regression", "graph_regression")


def task_metrics(task: str, labels: np.ndarray, outputs: np.ndarray, num_classes: int) -> dict:
  """The metrics of one task family (TaskConfig.type) on (labels, model outputs)."""
  if task in BINARY_TASKS:
    return binary_metrics(labels, outputs)
  if task in REGRESSION_TASKS:
    return regression_metrics(labels, outputs)
  return classification_metrics(labels, outputs, num_classes)


def trivial_outputs(task: str, labels: np.ndarray, num_classes: int,
                    metric: str) -> tuple[np.ndarray, str]:
  """What a model that ignores its input would output on these examples, at best: the
  majority class for classification (and a dgi probe), a constant score on the majority's
  side for binary tasks and link prediction (accuracy of the majority, AUC 0.5), the mean
  for regression (the median when judged by mae). Returns (outputs, a description)."""
  n = len(labels)
  if task in REGRESSION_TASKS:
    targets = labels.reshape(-1).astype(np.float64)
    if metric == "mae":
      value, what = float(np.median(targets)), "median"
    else:
      value, what = float(np.mean(targets)), "mean"
    return np.full([n], value), f"the {what} target, {value:.4g}"
  if task in BINARY_TASKS:
    positives = int((labels == 1).sum())
    majority = 1 if positives * 2 >= n else 0
    share = (positives if majority else n - positives) / max(n, 1)
    return (np.full([n], 1.0 if majority else -1.0),
            f"a constant score: always {'positive' if majority else 'negative'} "
            f"({share:.1%} of these examples), AUC 0.5")
  counts = np.bincount(labels.reshape(-1).astype(np.int64), minlength=num_classes)
  majority = int(counts.argmax())
  return (np.eye(num_classes)[np.full([n], majority)],
          f"the majority class, {majority} ({counts[majority] / max(n, 1):.1%} of these "
          f"examples)")


def trivial_metrics(task: str, labels: np.ndarray, num_classes: int, metric: str) -> dict:
  """The task's metrics of the trivial predictor (`trivial_outputs`) on these examples, with
  its description under `predictor`."""
  outputs, description = trivial_outputs(task, labels, num_classes, metric)
  return {**task_metrics(task, labels, outputs, num_classes), "predictor": description}


def evaluate_split(task: str, labels: np.ndarray, outputs: np.ndarray, num_classes: int,
                   metric: str) -> tuple[dict, dict]:
  """(the model's metrics, the trivial predictor's) on one split's examples."""
  return (task_metrics(task, labels, outputs, num_classes),
          trivial_metrics(task, labels, num_classes, metric))


def required_score(trivial: float, metric: str, margin: float) -> float:
  """The score a model must reach to beat the trivial one by `margin`: that fraction of the
  gap between the trivial score and a perfect one (1 for accuracy, F1 and AUC; 0 for the
  errors mse, rmse and mae, which must be at most (1 - margin) times the trivial error)."""
  perfect = 0.0 if metric in LOWER_IS_BETTER else 1.0
  return trivial + margin * (perfect - trivial)


def bless(candidate: dict, baseline: Optional[dict], config: EvaluationConfig,
          trivial: dict) -> tuple[bool, list[str]]:
  """TFX-style validation on one split's metrics: an absolute bound, a clear margin over the
  trivial predictor measured on the same examples (`trivial`, see `trivial_metrics`; a model
  at or below it is never blessed, whatever the margin), and no regression beyond
  `max_regression` against the baseline (when there is one). Returns (blessed, reasons)."""
  metric = config.metric
  if metric not in candidate:
    raise ValueError(f"evaluation.metric: {metric!r} is not a metric of this task "
                     f"(it has {sorted(k for k, v in candidate.items() if isinstance(v, float))})")
  value = candidate[metric]
  reasons = []
  lower_is_better = metric in LOWER_IS_BETTER
  sign = -1.0 if lower_is_better else 1.0
  if lower_is_better:
    if config.upper_bound is not None and value > config.upper_bound:
      reasons.append(f"{metric} {value:.4f} is above the upper bound {config.upper_bound:.4f}")
  elif value < config.lower_bound:
    reasons.append(f"{metric} {value:.4f} is below the lower bound {config.lower_bound:.4f}")
  floor = trivial[metric]
  required = required_score(floor, metric, config.min_margin_over_trivial)
  if sign * (value - floor) <= 0 or sign * (value - required) < 0:
    reasons.append(
        f"{metric} {value:.4f} does not beat the trivial baseline ({trivial['predictor']}: "
        f"{floor:.4f}) by the required margin: it needs {'<=' if lower_is_better else '>='} "
        f"{required:.4f} (evaluation.min_margin_over_trivial "
        f"{config.min_margin_over_trivial:g})")
  if baseline is not None:
    change = sign * (value - baseline[metric])
    if change < -config.max_regression:
      reasons.append(
          f"{metric} {value:.4f} is {-change:.4f} worse than the baseline's "
          f"{baseline[metric]:.4f} (allowed: {config.max_regression:.4f})")
  return not reasons, reasons


def read_embeddings(path: str):
  """The trainer's embeddings Parquet (task dgi) as a pandas DataFrame."""
  import tempfile
  import pyarrow.parquet as pq
  if "://" not in path:
    return pq.read_table(path).to_pandas()
  with tempfile.TemporaryDirectory() as local:  # a remote store pyarrow may not know
    tf.io.gfile.copy(path, os.path.join(local, "e.parquet"))
    return pq.read_table(os.path.join(local, "e.parquet")).to_pandas()


def embedding_probe(path: str, split: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
  """A linear probe of embeddings, fitted on the train rows: (labels, logits) of `split`'s."""
  frame = read_embeddings(path)
  if "label" not in frame:
    raise ValueError(f"embeddings {path} have no label column to probe with")
  train, test = frame[frame.split == "train"], frame[frame.split == split]
  if train.empty or test.empty:
    raise ValueError(f"embeddings {path} lack train or {split!r} rows to probe with")
  labels = test.label.to_numpy().astype(np.int64)
  return labels, linear_probe_outputs(np.stack(train.embedding), train.label.to_numpy(),
                                      np.stack(test.embedding), num_classes)


def embedding_probe_metrics(path: str, split: str, num_classes: int) -> dict:
  """Linear-probe metrics of embeddings: fitted on the train rows, scored on `split`'s."""
  return classification_metrics(*embedding_probe(path, split, num_classes), num_classes)


def evaluate_heads(heads: dict, outputs_by_split: dict, config, decided_on: str,
                   baseline_outputs: Optional[dict] = None) -> dict:
  """A multi-task model's evaluation: each head (task name -> {type, num_classes, ...}) is
  scored on its own target and gated on its own (`config.gate_for`: its metric, bounds and
  margin over its own trivial predictor, its regression against the baseline's same head);
  the model is blessed only if every head passes. `outputs_by_split`: split -> head ->
  (targets, outputs), `baseline_outputs`: head -> (targets, outputs) on `decided_on`.

  Returns metrics.json's content: per head under `tasks`, and at the top level each split's
  metrics flattened as `<head>/<metric>` (so that summaries and reports that read one task's
  metrics read every head's)."""
  per_task = {}
  for name, head in heads.items():
    gate = config.gate_for(name, head["type"])
    splits, trivial = {}, {}
    for split, outputs in outputs_by_split.items():
      splits[split], trivial[split] = evaluate_split(
          head["type"], *outputs[name], head["num_classes"], gate.metric)
    baseline = (task_metrics(head["type"], *baseline_outputs[name], head["num_classes"])
                if baseline_outputs is not None else None)
    blessed, reasons = bless(splits[decided_on], baseline, gate, trivial[decided_on])
    per_task[name] = {
        "type": head["type"], "target": head["feature"], "metric": gate.metric,
        "thresholds": {**gate.model_dump(exclude={"metric"}),
                       "required_over_trivial": required_score(
                           trivial[decided_on][gate.metric], gate.metric,
                           gate.min_margin_over_trivial),
                       "lower_is_better": gate.metric in LOWER_IS_BETTER},
        "splits": splits, "trivial": trivial, "candidate": splits[decided_on],
        "baseline": baseline, "blessed": blessed, "reasons": reasons}

  def flat(pick) -> dict:
    out = {}
    for name, task in per_task.items():
      metrics = pick(task)
      if metrics is None:
        return None
      out.update({f"{name}/{k}": v for k, v in metrics.items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool)})
    return out

  first = next(iter(per_task))
  return {
      "split": decided_on,
      "splits": {s: flat(lambda t, s=s: t["splits"][s]) for s in outputs_by_split},
      "trivial": {s: {**flat(lambda t, s=s: t["trivial"][s]), "predictor": "per head, below"}
                  for s in outputs_by_split},
      "metric": f"{first}/{per_task[first]['metric']}",
      "thresholds": None,  # per head
      "candidate": flat(lambda t: t["candidate"]),
      "baseline": flat(lambda t: t["baseline"]),
      "tasks": per_task,
      "blessed": all(t["blessed"] for t in per_task.values()),
      "reasons": [f"{name}: {reason}" for name, t in per_task.items() for reason in t["reasons"]],
  }
