"""Pusher: TFX's standard Pusher component with tfx-gnn's executor.

Pushes only a blessed model (TFX's `blessed` property), to `<base_directory>/<version>` where
the version is a Unix timestamp as TF Serving expects; the version directory appears whole
(copied under a hidden name, then renamed). With `custom_config={"mlflow_tracking_uri": ...,
"registered_model_name": ...}` it also registers a model version in MLflow's registry from the
trainer's MLflow run, tagged with the blessing.

Usage:
  pusher = Pusher(model=trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
                  push_destination=pusher_pb2.PushDestination(
                      filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=...)),
                  custom_config={"mlflow_tracking_uri": uri, "registered_model_name": name})
"""
from tfx.components.pusher import component as tfx_pusher
from tfx.dsl.components.base import executor_spec

from components.pusher import executor


class Pusher(tfx_pusher.Pusher):
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
