"""The evaluator's default gate, one test per task family: with the default `evaluation`
settings a model at or below the trivial predictor on the same examples (majority class, a
constant score, the mean) is never blessed, and a clearly better one is. Plus the baseline
compatibility check on a real exported model, the exported-epoch record, and the real Pusher
given a NOT_BLESSED blessing."""
import json
import os

import numpy as np
import pytest

import mlflow_template
from tfx_gnn.components.gnn_evaluator.config import EvaluationConfig

DEFAULTS = EvaluationConfig()  # what a run gets with no `evaluation` section


def judge(task, labels, outputs, num_classes=2, baseline=None):
  from tfx_gnn.components.gnn_evaluator import evaluation
  config = DEFAULTS.for_task(task)
  metrics, trivial = evaluation.evaluate_split(task, labels, outputs, num_classes, config.metric)
  blessed, reasons = evaluation.bless(metrics, baseline, config, trivial)
  return blessed, reasons, metrics, trivial


def noisy_logits(labels, num_classes, correct_share, rng):
  """Logits whose argmax is the label for about `correct_share` of the examples and a
  uniformly random class otherwise."""
  predicted = np.where(rng.random(len(labels)) < correct_share, labels,
                       rng.integers(0, num_classes, len(labels)))
  return np.eye(num_classes)[predicted] + rng.normal(0, 0.01, [len(labels), num_classes])


def test_node_classification_at_or_below_the_majority_class_is_not_blessed():
  rng = np.random.default_rng(0)
  labels = rng.choice(3, size=400, p=[0.5, 0.3, 0.2])
  majority = np.eye(3)[np.zeros(400, int)]
  blessed, reasons, metrics, trivial = judge("root_node_multiclass", labels, majority, 3)
  assert metrics["accuracy"] == trivial["accuracy"] == pytest.approx((labels == 0).mean())
  assert not blessed and "does not beat the trivial baseline" in reasons[0]
  assert "majority class, 0" in reasons[0]
  # Chance (uniform random guesses), and a model a hair above the majority class.
  assert not judge("root_node_multiclass", labels, rng.normal(size=[400, 3]), 3)[0]
  slightly = majority.copy()
  fixed = np.flatnonzero(labels != 0)[:8]  # 8 of 400 more right than the majority class
  slightly[fixed] = np.eye(3)[labels[fixed]]
  blessed, reasons, metrics, trivial = judge("root_node_multiclass", labels, slightly, 3)
  assert trivial["accuracy"] < metrics["accuracy"] < trivial["accuracy"] + 0.1 * (
      1 - trivial["accuracy"]), metrics["accuracy"]
  assert not blessed
  # A model that learned something is blessed: the gate can pass.
  assert judge("root_node_multiclass", labels, noisy_logits(labels, 3, 0.8, rng), 3)[0]


def test_regression_at_or_below_the_mean_is_not_blessed():
  rng = np.random.default_rng(1)
  targets = rng.normal(5.0, 2.0, 300)
  blessed, reasons, metrics, trivial = judge("root_node_regression", targets,
                                             np.full(300, targets.mean()))
  assert DEFAULTS.for_task("root_node_regression").metric == "rmse"
  assert trivial["rmse"] == pytest.approx(targets.std())
  assert not blessed and "the mean target" in reasons[0]
  # Noise around the mean is worse than the mean; a 5% better rmse is within the margin.
  assert not judge("root_node_regression", targets, targets.mean() + rng.normal(0, 1, 300))[0]
  shrunk = targets.mean() + 0.1 * (targets - targets.mean())  # rmse = 0.9 x the mean's
  blessed, _, metrics, trivial = judge("root_node_regression", targets, shrunk + 0.05)
  assert trivial["rmse"] * 0.85 < metrics["rmse"] < trivial["rmse"], metrics
  assert not blessed
  assert judge("root_node_regression", targets, targets + rng.normal(0, 0.5, 300))[0]


def test_link_prediction_at_auc_one_half_is_not_blessed():
  rng = np.random.default_rng(2)
  labels = np.repeat([1, 0, 0, 0], 100)  # 3 non-links per link
  assert DEFAULTS.for_task("link_prediction").metric == "auc"
  blessed, reasons, metrics, trivial = judge("link_prediction", labels, np.zeros(400))
  assert trivial["auc"] == 0.5 and trivial["accuracy"] == 0.75
  assert not blessed and "AUC 0.5" in reasons[0]
  blessed, _, metrics, _ = judge("link_prediction", labels, rng.normal(size=400))
  assert abs(metrics["auc"] - 0.5) < 0.08 and not blessed
  # Every link scored above 53% of the non-links: AUC 0.53, above chance but within the margin.
  weak = np.where(labels == 1, 158.5, np.arange(400) - 100.0)  # non-links score 0..299
  blessed, _, metrics, _ = judge("link_prediction", labels, weak)
  assert metrics["auc"] == pytest.approx(0.53) and not blessed
  assert judge("link_prediction", labels, rng.normal(size=400) + 1.5 * labels)[0]


def test_graph_classification_at_the_majority_class_is_not_blessed():
  rng = np.random.default_rng(3)
  labels = rng.choice(4, size=60, p=[0.4, 0.2, 0.2, 0.2])
  predicted_majority = np.eye(4)[np.full(60, np.bincount(labels).argmax())]
  blessed, reasons, metrics, trivial = judge("graph_multiclass", labels, predicted_majority, 4)
  assert metrics["accuracy"] == trivial["accuracy"] and not blessed
  assert not judge("graph_multiclass", labels, rng.normal(size=[60, 4]), 4)[0]
  assert judge("graph_multiclass", labels, noisy_logits(labels, 4, 0.9, rng), 4)[0]


def _write_embeddings(path, splits):
  """The trainer's embeddings Parquet (task dgi): split, label, embedding per root node."""
  import pyarrow as pa
  import pyarrow.parquet as pq
  tables = []
  for split, (labels, vectors) in splits.items():
    tables.append(pa.table({
        "label": pa.array(labels), "split": pa.array([split] * len(labels)),
        "embedding": pa.FixedSizeListArray.from_arrays(
            pa.array(vectors.astype(np.float32).reshape(-1)), vectors.shape[1])}))
  pq.write_table(pa.concat_tables(tables), path)


def test_dgi_probe_on_uninformative_embeddings_is_not_blessed(tmp_path):
  from tfx_gnn.components.gnn_evaluator import evaluation
  rng = np.random.default_rng(4)
  labels = {s: rng.choice(3, size=n, p=[0.5, 0.25, 0.25])
            for s, n in (("train", 600), ("eval", 300))}
  noise = {s: (y, rng.normal(size=[len(y), 16])) for s, y in labels.items()}
  signal = {s: (y, rng.normal(size=[len(y), 16]) + 2.0 * np.eye(16)[y])
            for s, y in labels.items()}
  outcomes = {}
  for name, splits in (("noise", noise), ("signal", signal)):
    path = str(tmp_path / f"{name}.parquet")
    _write_embeddings(path, splits)
    y, logits = evaluation.embedding_probe(path, "eval", 3)
    np.testing.assert_array_equal(y, labels["eval"])
    outcomes[name] = judge("dgi", y, logits, 3)
  blessed, reasons, metrics, trivial = outcomes["noise"]
  print(f"dgi probe on noise: accuracy {metrics['accuracy']:.3f} vs majority "
        f"{trivial['accuracy']:.3f}; on signal: {outcomes['signal'][2]['accuracy']:.3f}")
  assert metrics["accuracy"] < trivial["accuracy"] + 0.05
  assert not blessed and "majority class" in reasons[0]
  assert outcomes["signal"][0]


def test_a_perfectly_predictable_split_cannot_be_beaten():
  """All eval examples of one class: the majority class is perfect, nothing beats it."""
  labels = np.zeros(50, int)
  blessed, reasons, _, _ = judge("root_node_multiclass", labels, np.eye(3)[labels], 3)
  assert not blessed and "needs >= 1.0000" in reasons[0]


def test_margin_and_regression_are_reported_together():
  from tfx_gnn.components.gnn_evaluator import evaluation
  cfg = EvaluationConfig(metric="accuracy", max_regression=0.01)
  trivial = {"accuracy": 0.5, "predictor": "the majority class, 1 (50.0% of these examples)"}
  assert evaluation.bless({"accuracy": 0.8}, {"accuracy": 0.805}, cfg, trivial) == (True, [])
  blessed, reasons = evaluation.bless({"accuracy": 0.52}, {"accuracy": 0.8}, cfg, trivial)
  assert not blessed and len(reasons) == 2
  assert "needs >= 0.5500" in reasons[0] and "worse than the baseline" in reasons[1]
  with pytest.raises(ValueError, match="min_margin_over_trivial|less than 1"):
    EvaluationConfig(min_margin_over_trivial=1.0)


def test_exported_epoch_follows_the_best_validation_loss():
  from tfx_gnn.components.gnn_trainer import training
  logs = [(0, {"loss": 1.0, "val_loss": 0.9}), (1, {"loss": 0.8, "val_loss": 0.7}),
          (2, {"loss": 0.7, "val_loss": 0.7}), (3, {"loss": 0.6, "val_loss": float("nan")})]
  assert training.exported_epoch(logs, validated=True) == 2  # 1-based; first of a tie
  assert training.exported_epoch(logs, validated=False) == 4  # no validation: the last
  # Resumed at epoch 5 (0-based): ModelCheckpoint's best starts over in the new process.
  assert training.exported_epoch([(5, {"val_loss": 2.0}), (6, {"loss": 1.0})], True) == 6
  assert training.exported_epoch([], True) is None


# ------------------------------------------------------------------ the real Pusher
def _artifact(cls, uri, **int_props):
  artifact = cls()
  artifact.uri = str(uri)
  os.makedirs(artifact.uri, exist_ok=True)
  for key, value in int_props.items():
    artifact.set_int_custom_property(key, value)
  return artifact


@pytest.mark.parametrize("blessed", [0, 1])
def test_pusher_pushes_nothing_for_a_not_blessed_model(tmp_path, blessed):
  import mlflow
  from tfx.proto import pusher_pb2
  from tfx.types import standard_artifacts
  from tfx.utils import proto_utils
  from tfx_gnn.components.pusher import executor as pusher_executor
  mlflow_template.copy_to(tmp_path / "mlflow.db")
  tracking_uri = f"sqlite:///{tmp_path}/mlflow.db"
  client = mlflow.MlflowClient(tracking_uri)
  experiment = client.create_experiment("gate", artifact_location=str(tmp_path / "mlruns"))
  run = client.create_run(experiment)
  client.log_text(run.info.run_id, "a model", "model/MLmodel")
  client.set_terminated(run.info.run_id)

  model = _artifact(standard_artifacts.Model, tmp_path / "model")
  serving = os.path.join(model.uri, "Format-Serving")
  os.makedirs(serving)
  with open(os.path.join(serving, "saved_model.pb"), "wb") as f:
    f.write(b"a model")
  model.set_string_custom_property("mlflow_run_id", run.info.run_id)
  blessing = _artifact(standard_artifacts.ModelBlessing, tmp_path / "blessing", blessed=blessed)
  with open(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w") as f:
    f.write("" if blessed else "accuracy 0.3300 does not beat the trivial baseline")
  pushed = _artifact(standard_artifacts.PushedModel, tmp_path / "pushed")
  destination = tmp_path / "serving"
  pusher_executor.Executor().Do(
      {"model": [model], "model_blessing": [blessing]}, {"pushed_model": [pushed]},
      {"push_destination": proto_utils.proto_to_json(pusher_pb2.PushDestination(
          filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(destination)))),
       "custom_config": json.dumps({"mlflow_tracking_uri": tracking_uri,
                                    "registered_model_name": "gate"})})
  versions = client.search_model_versions("name='gate'")
  assert pushed.get_int_custom_property("pushed") == blessed
  if blessed:  # the same Pusher does push a blessed model: the check below can fail
    assert len(os.listdir(destination)) == 1 and len(versions) == 1
  else:
    assert not destination.exists()
    assert versions == [] and client.search_registered_models() == []
    assert os.listdir(pushed.uri) == []


SCHEMA = """
node_sets { key: "paper" value {
  features { key: "feat" value { dtype: DT_FLOAT shape { dim { size: 8 } } } }
  features { key: "year" value { dtype: DT_INT64 } }
  features { key: "label" value { dtype: DT_INT64 } } } }
node_sets { key: "author" value { features { key: "#id" value { dtype: DT_STRING } } } }
edge_sets { key: "writes" value { source: "author" target: "paper" } }
"""


def test_baseline_spec_check_names_what_the_new_subgraphs_lack():
  import tensorflow_gnn as tfgnn
  from google.protobuf import text_format
  from tfx_gnn.components.gnn_evaluator import evaluation

  def spec(text):
    return tfgnn.create_graph_spec_from_schema_pb(text_format.Parse(text, tfgnn.GraphSchema()))

  trained_on = spec(SCHEMA)
  assert evaluation.spec_incompatibilities(trained_on, trained_on) == []
  # Extra features and sets are fine: parsing ignores them.
  more = SCHEMA.replace('features { key: "year"', 'features { key: "venue" value { dtype: '
                        'DT_INT64 } }\n  features { key: "year"')
  assert evaluation.spec_incompatibilities(trained_on, spec(more)) == []
  changed = (SCHEMA.replace('  features { key: "year" value { dtype: DT_INT64 } }\n', "")
             .replace("size: 8", "size: 7")
             .replace('edge_sets { key: "writes"', 'edge_sets { key: "wrote"'))
  assert evaluation.spec_incompatibilities(trained_on, spec(changed)) == [
      "the baseline takes feature `feat` of node set `paper` as float32 of shape [8]; this "
      "graph has float32 of shape [7]",
      "the baseline takes feature `year` of node set `paper`, which this graph no longer has",
      "the baseline takes edge set `writes`, which this graph no longer has"]
