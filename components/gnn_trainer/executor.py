"""GnnTrainer's executor: reads the subgraph schema and splits, trains, logs to MLflow."""
import os

import tensorflow as tf
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components import graph_io, tracking
from components.subgraph_sampler.executor import subgraph_schema_path
from pipelines.config import ModelConfig, TaskConfig, TrainerConfig

EMBEDDINGS_FILE = "embeddings.parquet"  # in the Model's directory, for task dgi


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
    task_cfg = TaskConfig.model_validate_json(exec_properties.get("task_config") or "{}")

    train_files = split_files(examples, "train")
    if not train_files:
      raise ValueError(f"examples {examples.uri} have no train split to train on")
    run = tracking.Run(exec_properties["tracking_uri"], exec_properties["experiment"],
                       run_name=f"train-{model.id or 'local'}",
                       tags={"tfx.component": "GnnTrainer", "tfx.model_uri": model.uri})
    run.log_params({**tracking.flatten("model", model_cfg.model_dump()),
                    **tracking.flatten("trainer", trainer_cfg.model_dump()),
                    **tracking.flatten("task", task_cfg.model_dump())})
    ok = False
    try:
      export_dir = path_utils.serving_model_path(model.uri)
      schema = graph_io.read_schema_file(subgraph_schema_path(examples.uri))
      label = graph_io.read_label(graph.uri)
      eval_files = split_files(examples, "eval")
      if task_cfg.type == "dgi":
        # Unsupervised and transductive (as in the DGI paper): every split's subgraphs, whose
        # labels the model never reads; nothing to validate on.
        train_files = train_files + eval_files + split_files(examples, "test")
        eval_files = []
      result = training.train(
          train_files=train_files, eval_files=eval_files,
          subgraph_schema=schema, label=label, model_cfg=model_cfg, trainer_cfg=trainer_cfg,
          task_cfg=task_cfg, model_dir=model_run.uri, export_dir=export_dir,
          on_epoch=lambda epoch, logs: run.log_metrics(logs, step=epoch))
      run.log_artifacts(export_dir, "model")
      if task_cfg.type == "dgi":
        path = os.path.join(model.uri, EMBEDDINGS_FILE)
        training.write_embeddings(
            export_dir, {s: split_files(examples, s) for s in ("train", "eval", "test")},
            schema, label, path)
        run.client.log_artifact(run.run_id, path)
        model.set_string_custom_property("embeddings_uri", path)
      for key, values in result.history.items():
        model.set_float_custom_property(f"final_{key}", values[-1])
      ok = True
    finally:
      run.finish(ok)
    model.set_string_custom_property("task", task_cfg.type)
    model.set_string_custom_property("mlflow_run_id", run.run_id)
    model.set_string_custom_property("mlflow_tracking_uri", run.tracking_uri)
