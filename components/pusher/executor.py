"""The Pusher's executor: TFX's blessing check and bookkeeping, an atomic publish, MLflow
(a pyfunc model that scores node ids, with the `champion` alias)."""
from __future__ import annotations

import json
import os

from absl import logging
from tfx.components.util import model_utils
from tfx.dsl.components.base import base_executor
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils, proto_utils

from tfx_gnn.components import graph_io, node_scoring
from tfx_gnn.components import publish as publish_lib


def publish(model_path: str, base_directory: str,
            reuse_latest: bool = False) -> tuple[str, str, bool]:
  """Copies the SavedModel to `<base_directory>/<version>` atomically: a reader polling the
  directory sees no version or a complete one. With `reuse_latest`, a model byte-identical to
  the latest version is not copied again. Returns (serving_path, version, whether a new version
  was made)."""
  latest = publish_lib.latest_version(base_directory) if reuse_latest else None
  if latest is not None:
    latest_path = os.path.join(base_directory, latest)
    if publish_lib.tree_digest(latest_path) == publish_lib.tree_digest(model_path):
      return latest_path, latest, False
  path, version = publish_lib.publish_new_version(
      lambda staging: io_utils.copy_dir(model_path, staging), base_directory)
  return path, version, True


def register_in_mlflow(tracking_uri: str, name: str, run_id: str, blessing_uri: str,
                       serving_path: str, spec: node_scoring.ServingSpec | None = None,
                       example_ids: list[str] | None = None) -> str:
  """Registers a new version of `name` from the trainer's MLflow run: with a ServingSpec, the
  pyfunc model that scores node ids (`mlflow_model`), else the run's raw SavedModel files; the
  `champion` alias moves to it (only blessed models get here). A version already registered
  for this serving path and run (a rerun, or a retried Pusher) is reused, not duplicated.
  Returns the version."""
  from mlflow.exceptions import MlflowException
  from tfx_gnn.components import mlflow_model, tracking
  client = tracking.client(tracking_uri)
  try:
    client.create_registered_model(name)
  except MlflowException as e:
    if e.error_code != "RESOURCE_ALREADY_EXISTS":
      raise
  for existing in client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'"):
    if existing.tags.get("serving_path") == serving_path:
      client.set_registered_model_alias(name, mlflow_model.CHAMPION, existing.version)
      return str(existing.version)
  artifact_path = ("model" if spec is None else  # the trainer's copy of the SavedModel
                   mlflow_model.log(client, run_id, serving_path, spec, example_ids))
  run = client.get_run(run_id)
  version = client.create_model_version(
      name, source=f"{run.info.artifact_uri}/{artifact_path}", run_id=run_id,
      tags={"blessed": "true", "blessing": blessing_uri, "serving_path": serving_path})
  client.set_registered_model_alias(name, mlflow_model.CHAMPION, version.version)
  return str(version.version)


EXAMPLE_IDS = 3  # node ids in the registered model's input example


@publish_lib.atomic_outputs
class Executor(base_executor.BaseExecutor):
  """TFX's Pusher executor's behaviour and output properties (`pushed`, `pushed_destination`,
  `pushed_version`), without its module, which imports TensorFlow Model Analysis."""

  def Do(self, input_dict, output_dict, exec_properties):
    pushed = artifact_utils.get_single_instance(output_dict["pushed_model"])
    blessing = artifact_utils.get_single_instance(input_dict["model_blessing"])
    if not model_utils.is_model_blessed(blessing):
      logging.info("Model on %s was not blessed by the evaluator; not pushed", blessing.uri)
      pushed.set_int_custom_property("pushed", 0)
      return
    destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(exec_properties["push_destination"], destination)
    if destination.WhichOneof("destination") != "filesystem":
      raise ValueError("push_destination: only `filesystem` is supported")
    model = artifact_utils.get_single_instance(input_dict["model"])
    model_path = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
    # The model the evaluator compared against is this very artifact on an unchanged rerun
    # (the trainer was cached, and the baseline is the model that run blessed): it is served
    # already, and a second copy would be a duplicate version.
    is_baseline = (blessing.has_custom_property("baseline_model_id") and
                   blessing.get_int_custom_property("baseline_model_id") == model.id)
    serving_path, version, new = publish(model_path, destination.filesystem.base_directory,
                                         reuse_latest=is_baseline)
    logging.info("Model pushed to %s" if new else "Model already served as %s; no new version",
                 serving_path)
    io_utils.copy_dir(model_path, pushed.uri)  # archive, as TFX does
    pushed.set_int_custom_property("pushed", 1)
    pushed.set_string_custom_property("pushed_destination", serving_path)
    pushed.set_string_custom_property("pushed_version", version)
    pushed.set_int_custom_property("new_version", int(new))

    # Root-node models given the sampler's Examples and the Graph: what a client needs to
    # score node ids (GnnBulkInferrer, `tfx-gnn predict` and the MLflow model read it).
    spec = example_ids = None
    if input_dict.get("examples") and input_dict.get("graph"):
      graph = artifact_utils.get_single_instance(input_dict["graph"])
      spec = node_scoring.serving_spec(artifact_utils.get_single_instance(input_dict["examples"]),
                                       graph, model)
      pushed.set_string_custom_property("serving_spec", spec.to_property())
      split_counts = json.loads(graph.get_string_custom_property("split_counts") or "{}")
      split = next((s for s in ("test", "eval", "train") if split_counts.get(s)), None)
      example_ids = (graph_io.read_seeds(graph.uri, split) if split else
                     node_scoring.node_ids(graph.uri, spec.node_set))[:EXAMPLE_IDS]

    custom = json.loads(exec_properties.get("custom_config") or "null") or {}
    run_id = model.get_string_custom_property("mlflow_run_id")
    if run_id:
      pushed.set_string_custom_property("mlflow_run_id", run_id)
    if custom.get("mlflow_tracking_uri") and run_id:
      mlflow_version = register_in_mlflow(
          custom["mlflow_tracking_uri"], custom.get("registered_model_name", "tfx-gnn"),
          run_id, blessing.uri, serving_path, spec, example_ids)
      pushed.set_string_custom_property("mlflow_model_version", mlflow_version)
