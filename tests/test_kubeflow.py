"""The Kubeflow Pipelines v2 file compiled from the same create_pipeline as the local run."""
import importlib
import json
import os

from pipelines import config as config_lib
from pipelines import kubeflow_runner

TINY = os.path.join(os.path.dirname(__file__), "configs", "tiny.yaml")


def test_compiled_pipeline_loads_into_kfp_protos_with_the_whole_dag(tmp_path):
  config = config_lib.load_config(TINY, {
      "pipeline": {"root": str(tmp_path / "run")},
      "kubeflow": {"image": "registry.example/tfx-gnn:1", "pipeline_root": "gs://bucket/root"}})
  path = kubeflow_runner.compile_pipeline(config, str(tmp_path / "pipeline.json"))
  spec = kubeflow_runner.load_pipeline_spec(path)
  tasks = spec.root.dag.tasks
  assert {"GraphIngest", "GraphValidator", "SubgraphSampler", "GnnTrainer", "GnnEvaluator",
          "Pusher"} <= set(tasks)

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

  job = json.load(open(path))
  assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/root"
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
