"""Pusher: TFX's Pusher interface (spec keys, blessing check, `pushed*` properties) with
tfx-gnn's executor.

Pushes only a blessed model (TFX's `blessed` property), to `<base_directory>/<version>` where
the version is a Unix timestamp as TF Serving expects; the version directory appears whole
(copied under a hidden name, then renamed). With `custom_config={"mlflow_tracking_uri": ...,
"registered_model_name": ...}` it also registers a model version in MLflow's registry from the
trainer's MLflow run, tagged with the blessing, and moves the alias `champion` to it. Given the
sampler's `examples` and the `graph` (root-node tasks), that version is a pyfunc model that
scores node ids (`tfx_gnn.components.mlflow_model`) and the PushedModel records the
`serving_spec` (sampling spec, seed, Graph directory) that GnnBulkInferrer and `tfx-gnn
predict` score with; otherwise it is the SavedModel's raw files.

Its spec repeats TFX's `PusherSpec` (less the InfraValidator's blessing) because
`tfx.types.standard_component_specs` imports TensorFlow Model Analysis, 2.4 s of every run's
start-up for a library no component here uses.

Usage:
  pusher = Pusher(model=trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
                  push_destination=pusher_pb2.PushDestination(
                      filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=...)),
                  custom_config={"mlflow_tracking_uri": uri, "registered_model_name": name})
"""
import json

from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import pusher_pb2
from tfx.types import channel, component_spec, standard_artifacts, system_executions

from tfx_gnn.components import types
from tfx_gnn.components.pusher import executor


class PusherSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      "push_destination": component_spec.ExecutionParameter(type=pusher_pb2.PushDestination),
      # JSON: mlflow_tracking_uri, registered_model_name.
      "custom_config": component_spec.ExecutionParameter(type=str, optional=True),
  }
  INPUTS = {
      "model": component_spec.ChannelParameter(type=standard_artifacts.Model),
      "model_blessing": component_spec.ChannelParameter(type=standard_artifacts.ModelBlessing),
      # Root-node models: the sampler's Examples (its sampling spec and seed) and the Graph
      # make the pushed model scorable by node id (PushedModel's `serving_spec`, MLflow pyfunc).
      "examples": component_spec.ChannelParameter(type=standard_artifacts.Examples,
                                                  optional=True),
      "graph": component_spec.ChannelParameter(type=types.Graph, optional=True),
  }
  OUTPUTS = {
      "pushed_model": component_spec.ChannelParameter(type=standard_artifacts.PushedModel),
  }
  TYPE_ANNOTATION = system_executions.Deploy


class Pusher(base_component.BaseComponent):
  """Pushes the model if the evaluator blessed it."""
  SPEC_CLASS = PusherSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, model, model_blessing, push_destination: pusher_pb2.PushDestination,
               custom_config: dict | None = None, examples=None, graph=None):
    super().__init__(spec=PusherSpec(
        model=model, model_blessing=model_blessing, examples=examples, graph=graph,
        push_destination=push_destination,
        custom_config=json.dumps(custom_config or {}, sort_keys=True),
        pushed_model=channel.Channel(type=standard_artifacts.PushedModel)))
