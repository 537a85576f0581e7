"""GnnTrainer's executor: reads the subgraph schema and splits, trains, logs to MLflow."""
import os

import tensorflow as tf
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components import graph_io, tracking
from components.subgraph_sampler.executor import subgraph_schema_path
from pipelines.config import ModelConfig, TrainerConfig


def split_files(examples, split: str) -> list[str]:
  """The data files of one split of an Examples artifact ([] if it has no such split)."""
  if split not in artifact_utils.decode_split_names(examples.split_names):
    return []
  return sorted(tf.io.gfile.glob(os.path.join(
      artifact_utils.get_split_uri([examples], split), "*")))


class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    from components.gnn_trainer import training  # pylint: disable=g-import-not-at-top
    examples = artifact_utils.get_single_instance(input_dict["examples"])
    graph = artifact_utils.get_single_instance(input_dict["graph"])
    model = artifact_utils.get_single_instance(output_dict["model"])
    model_run = artifact_utils.get_single_instance(output_dict["model_run"])
    model_cfg = ModelConfig.model_validate_json(exec_properties["model_config"])
    trainer_cfg = TrainerConfig.model_validate_json(exec_properties["trainer_config"])

    train_files = split_files(examples, "train")
    if not train_files:
      raise ValueError(f"examples {examples.uri} have no train split to train on")
    run = tracking.Run(exec_properties["tracking_uri"], exec_properties["experiment"],
                       run_name=f"train-{model.id or 'local'}",
                       tags={"tfx.component": "GnnTrainer", "tfx.model_uri": model.uri})
    run.log_params({**tracking.flatten("model", model_cfg.model_dump()),
                    **tracking.flatten("trainer", trainer_cfg.model_dump())})
    ok = False
    try:
      export_dir = path_utils.serving_model_path(model.uri)
      result = training.train(
          train_files=train_files, eval_files=split_files(examples, "eval"),
          subgraph_schema=graph_io.read_schema_file(subgraph_schema_path(examples.uri)),
          label=graph_io.read_label(graph.uri), model_cfg=model_cfg, trainer_cfg=trainer_cfg,
          model_dir=model_run.uri, export_dir=export_dir,
          on_epoch=lambda epoch, logs: run.log_metrics(logs, step=epoch))
      run.log_artifacts(export_dir, "model")
      for key, values in result.history.items():
        model.set_float_custom_property(f"final_{key}", values[-1])
      ok = True
    finally:
      run.finish(ok)
    model.set_string_custom_property("mlflow_run_id", run.run_id)
    model.set_string_custom_property("mlflow_tracking_uri", run.tracking_uri)
