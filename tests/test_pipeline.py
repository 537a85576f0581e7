"""Integration tests: the whole pipeline under TFX's LocalDagRunner on a tiny graph.

The first run is conftest.py's `served_tiny_run` (shared with the attribution, report and
MLflow UI tests: the tiny pipeline against a real MLflow server); the module runs it once more
with another trainer seed, on the same root, to check caching and the baseline comparison.
"""
import os

import pytest
import yaml

from tfx_gnn.pipelines import config as config_lib
from tfx_gnn.components import lineage
from tfx_gnn.pipelines import local_runner

pytestmark = pytest.mark.slow  # runs pipelines, trains models or starts servers

HERE = os.path.dirname(__file__)
TINY = os.path.join(HERE, "configs", "tiny.yaml")
EXPECTED_TYPES = {"tfx_gnn.Graph", "tfx_gnn.GraphStatistics", "tfx_gnn.GraphAnomalies",
                  "Examples", "Model", "ModelRun", "ModelEvaluation", "ModelBlessing",
                  "PushedModel"}


def tiny_config(root, **overrides) -> config_lib.Config:
  return config_lib.load_config(
      TINY, config_lib.merge({"pipeline": {"root": str(root)}}, overrides))


@pytest.fixture(scope="module")
def two_runs(served_tiny_run):
  first = served_tiny_run.config
  # Attribution and the run report have their own tests (on the first run).
  second = tiny_config(first.root, trainer={"seed": 1},
                       mlflow={"tracking_uri": served_tiny_run.server.url},
                       attribution={"enabled": False}, report={"enabled": False})
  return first, served_tiny_run.summary, local_runner.run(second)


def test_first_run_completes_and_pushes(two_runs):
  config, summary, _ = two_runs
  assert set(summary["components"].values()) == {"COMPLETE"}, summary["components"]
  assert summary["blessed"] is True
  assert summary["pushed"] is True
  assert summary["pushed_to"].startswith(config.serving_dir)
  assert os.path.exists(os.path.join(summary["pushed_to"], "saved_model.pb"))
  assert summary["test_metrics"]["num_examples"] == 60  # 20% of 300 papers
  assert summary["baseline_metrics"] is None  # nothing was blessed before


def test_pushed_model_serves_serialized_subgraphs(two_runs):
  import tensorflow as tf
  import tensorflow_gnn  # noqa: F401  (registers GraphTensor ops)
  _, summary, _ = two_runs
  store = lineage.open_store(two_runs[0].metadata_path)
  examples = [ref for r in lineage.executions(store, summary["run_id"]) for ref in r.outputs
              if ref.type == "Examples"][0]
  files = tf.io.gfile.glob(os.path.join(examples.uri, "Split-test", "*"))
  batch = [r.numpy() for r in tf.data.TFRecordDataset(files).take(7)]
  serve = tf.saved_model.load(summary["pushed_to"]).signatures["serving_default"]
  logits = serve(examples=tf.constant(batch))["logits"]
  assert logits.shape == (7, 4)
  # A serving request carries no label: the model must not need one.
  unlabelled = []
  for serialized in batch:
    example = tf.train.Example.FromString(serialized)
    del example.features.feature["nodes/paper.label"]
    unlabelled.append(example.SerializeToString())
  same = serve(examples=tf.constant(unlabelled))["logits"]
  assert tf.reduce_all(tf.abs(same - logits) < 1e-5)


def test_mlmd_holds_every_artifact_type_linked_by_executions(two_runs):
  config, summary, _ = two_runs
  store = lineage.open_store(config.metadata_path)
  records = lineage.executions(store, summary["run_id"])
  produced = {ref.type for r in records for ref in r.outputs}
  assert EXPECTED_TYPES <= produced
  by_component = {r.component: r for r in records}
  graph_id = by_component["GraphIngest"].outputs[0].id
  # The Graph produced by ingest is what the sampler and the trainer consumed.
  assert graph_id in {ref.id for ref in by_component["SubgraphSampler"].inputs}
  model_id = [ref.id for ref in by_component["GnnTrainer"].outputs if ref.type == "Model"][0]
  assert model_id in {ref.id for ref in by_component["Pusher"].inputs}
  assert "GraphIngest" in lineage.format_lineage(records)


def test_mlflow_run_has_params_and_per_epoch_metrics(two_runs):
  from mlflow.tracking import MlflowClient
  config, summary, _ = two_runs
  client = MlflowClient(tracking_uri=config.tracking_uri)
  run = client.get_run(summary["mlflow_run_id"])
  assert run.data.params["model.units"] == "16"
  history = client.get_metric_history(run.info.run_id, "val_sparse_categorical_accuracy")
  # One point per epoch trained (tests/configs/tiny.yaml: trainer.epochs).
  assert [m.step for m in history] == list(range(config.trainer.epochs))
  artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "model")]
  assert "model/saved_model.pb" in artifacts
  version = client.get_model_version(config.pipeline.name, summary["mlflow_model_version"])
  assert version.tags["blessed"] == "true"


def test_second_run_reuses_upstream_and_compares_with_first(two_runs):
  config, first, second = two_runs
  assert second["components"]["GraphIngest"] == "CACHED"
  assert second["components"]["GraphValidator"] == "CACHED"
  assert second["components"]["SubgraphSampler"] == "CACHED"
  assert second["components"]["GnnTrainer"] == "COMPLETE"
  store = lineage.open_store(config.metadata_path)
  records = {r.component: r for r in lineage.executions(store, second["run_id"])}
  blessing = [r for r in records["GnnEvaluator"].outputs if r.type == "ModelBlessing"][0]
  first_model = first["model_uri"]
  assert blessing.properties["baseline_model"] == first_model
  assert second["baseline_metrics"] is not None


def test_config_file_error_names_the_key(tmp_path):
  raw = yaml.safe_load(open(TINY))
  raw["trainer"]["epoks"] = 3
  path = tmp_path / "bad.yaml"
  path.write_text(yaml.safe_dump(raw))
  with pytest.raises(config_lib.ConfigError, match=r"trainer\.epoks: unknown key"):
    config_lib.load_config(str(path))


def test_integrated_gradients_are_exported_only_for_attribution(tmp_path):
  import json
  from tfx_gnn.pipelines import pipeline
  for enabled in (True, False):
    config = tiny_config(tmp_path, attribution={"enabled": enabled})
    components = pipeline.create_components(config, config.root)
    by_id = {c.id: c for c in components}
    trainer_cfg = json.loads(by_id["GnnTrainer"].exec_properties["trainer_config"])
    assert (trainer_cfg["integrated_gradients"] is not None) == enabled
    assert ("Attribution" in by_id) == enabled
  with pytest.raises(config_lib.ConfigError, match=r"trainer\.integrated_gradients: null"):
    tiny_config(tmp_path, trainer={"integrated_gradients": None})
