"""The Kubeflow Pipelines v2 file compiled from the same create_pipeline as the local run."""
import importlib
import json
import os

import pytest
import yaml

import mlflow_template
from tfx_gnn.pipelines import config as config_lib
from tfx_gnn.pipelines import kubeflow_runner

pytestmark = pytest.mark.slow  # runs pipelines, trains models or starts servers

TINY = os.path.join(os.path.dirname(__file__), "configs", "tiny.yaml")


def test_compiled_pipeline_loads_into_kfp_protos_with_the_whole_dag(tmp_path):
  config = config_lib.load_config(TINY, {
      "pipeline": {"root": str(tmp_path / "run")},
      "kubeflow": {"image": "registry.example/tfx-gnn:1", "pipeline_root": "gs://bucket/root"}})
  path = kubeflow_runner.compile_pipeline(config, str(tmp_path / "pipeline.yaml"))
  spec = kubeflow_runner.load_pipeline_spec(path)
  tasks = spec.root.dag.tasks
  assert {"GraphIngest", "GraphValidator", "SubgraphSampler", "GnnTrainer", "GnnEvaluator",
          "Pusher", "Attribution", "RunReport", "GnnBulkInferrer"} <= set(tasks)

  def producer(task, key):
    return tasks[task].inputs.artifacts[key].task_output_artifact.producer_task

  assert producer("GraphValidator", "graph") == "GraphIngest"
  assert producer("SubgraphSampler", "graph") == "GraphIngest"
  assert producer("GnnTrainer", "examples") == "SubgraphSampler"
  assert producer("GnnEvaluator", "model") == "GnnTrainer"
  # The blessing gate: the Pusher consumes the evaluator's blessing.
  assert producer("Pusher", "model_blessing") == "GnnEvaluator"
  assert producer("Pusher", "model") == "GnnTrainer"
  # The baseline comes from the latest-blessed-model resolver.
  assert producer("GnnEvaluator", "baseline_model").startswith("latest_blessed_model_resolver")
  # Attribution explains the evaluated model; the run report comes last.
  assert producer("Attribution", "model") == "GnnTrainer"
  assert "GnnEvaluator" in tasks["Attribution"].dependent_tasks
  assert producer("RunReport", "attributions") == "Attribution"
  assert producer("RunReport", "pushed_model") == "Pusher"
  # Bulk inference scores with what the Pusher pushed; the Pusher records how to sample.
  assert producer("GnnBulkInferrer", "pushed_model") == "Pusher"
  assert producer("Pusher", "examples") == "SubgraphSampler"

  # The bare spec that the KFP client uploads as it is, the pipeline root as its default.
  bare, platform = yaml.safe_load_all(open(path))
  assert "pipelineSpec" not in bare and bare["pipelineInfo"]["name"] == config.pipeline.name
  assert bare["defaultPipelineRoot"] == "gs://bucket/root/pipeline"
  # Pushed models go under the cluster's root too, not a path of the compiling machine.
  push = json.loads(bare["root"]["dag"]["tasks"]["Pusher"]["inputs"][
      "parameters"]["push_destination"]["runtimeValue"]["constantValue"]["stringValue"])
  assert push["filesystem"]["base_directory"] == "gs://bucket/root/serving"
  executors = spec.deployment_spec["executors"]
  for name, executor in executors.items():
    if "container" not in executor:
      continue  # resolver steps are MLMD queries, not containers
    container = executor["container"]
    args = list(container["args"])
    assert container["image"] == "registry.example/tfx-gnn:1"
    class_path = args[args.index("--executor_class_path") + 1]
    module, cls = class_path.rsplit(".", 1)
    assert hasattr(importlib.import_module(module), cls), class_path
    # The Beam args reach the sampler unchanged.
    if name.startswith("SubgraphSampler"):
      assert "--runner=FnApiRunner" in args
    # Every step's pod gets the KFP run's id (TFX's entrypoint passes none) from its label.
    assert platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"][name] == {
        "fieldPathAsEnv": [{"name": "KFP_RUN_ID",
                            "fieldPath": "metadata.labels['pipeline/runid']"}]}


def test_replayed_pipeline_file_pushes_a_model_and_resolves_its_baseline(tmp_path):
  """Every container step of the compiled file, run through TFX's Kubeflow v2 entrypoint with
  the exact command and arguments; twice, so the second run resolves the first's blessing."""
  import kfp_replay
  config = config_lib.load_config(TINY, {
      "pipeline": {"root": str(tmp_path / "root")},
      "push": {"destination": str(tmp_path / "serving")}})
  # Replayed on this machine: a local pipeline root is real here (`tfx-gnn compile` refuses it).
  path = kubeflow_runner.compile_pipeline(config, str(tmp_path / "pipeline.yaml"),
                                          local_root_ok=True)
  store = kfp_replay.ReplayStore()
  mlflow_template.copy_into(config)  # the replay's subject is the file, not MLflow's migrations

  first = kfp_replay.replay(path, store, run_id="5f0c-first-run")
  assert {n: r["state"] for n, r in first.items() if not n.startswith("latest")} == {
      n: "COMPLETE" for n in ("GraphIngest", "GraphValidator", "SubgraphSampler", "GnnTrainer",
                              "GnnEvaluator", "Pusher", "Attribution", "RunReport",
                              "GnnBulkInferrer")}
  assert first["latest_blessed_model_resolver-model-resolver"]["outputs"] == {}
  blessing = first["GnnEvaluator"]["outputs"]["blessing"]
  assert blessing["metadata"]["blessed"] == 1
  # The entrypoint rewrote the model id into the artifact's name, as KFP's resolver needs.
  model = first["GnnTrainer"]["outputs"]["model"]
  assert blessing["metadata"]["current_model_id"] == model["name"]
  pushed = first["Pusher"]["outputs"]["pushed_model"]
  assert pushed["metadata"]["pushed"] == 1
  assert os.path.exists(os.path.join(pushed["metadata"]["pushed_destination"], "saved_model.pb"))
  predictions = first["GnnBulkInferrer"]["outputs"]["predictions"]
  assert predictions["metadata"]["inferred"] == 1 and predictions["metadata"]["num_nodes"] == 300
  # The MLflow run says which pipeline and KFP run it belongs to.
  from mlflow.tracking import MlflowClient
  client = MlflowClient(config.tracking_uri)
  trainer_runs = client.search_runs(
      [client.get_experiment_by_name(config.experiment).experiment_id],
      "tags.`tfx.component` = 'GnnTrainer'")
  assert [r.info.run_name for r in trainer_runs] == ["tfx-gnn-tiny/5f0c-first-run/GnnTrainer"]
  assert trainer_runs[0].data.tags["tfx.pipeline_run_id"] == "5f0c-first-run"

  second = kfp_replay.replay(path, store)
  for name in ("GraphIngest", "GraphValidator", "SubgraphSampler", "GnnTrainer"):
    assert second[name]["state"] == "CACHED", name
  assert second["latest_blessed_model_resolver-model-resolver"]["outputs"]["model"] == model
  assert second["GnnEvaluator"]["state"] == "COMPLETE"
  second_blessing = second["GnnEvaluator"]["outputs"]["blessing"]
  assert second_blessing["metadata"]["baseline_model_id"] == model["name"]
