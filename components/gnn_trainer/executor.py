"""GnnTrainer's executor: reads the subgraph schema and splits, trains, logs to MLflow.

Training backs up to a directory that outlives the execution (`backup_dir`), keyed by what
determines the training, so a rerun after a crash resumes from the last completed epoch.
"""
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import uuid

import tensorflow as tf
from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from tfx_gnn.components import config_base, graph_io, hyperparameters, publish, tracking
from tfx_gnn.components.gnn_trainer.config import (MULTI_TASK, ModelConfig, TaskConfig,
                                                    TasksConfig, TrainerConfig)
from tfx_gnn.components.subgraph_sampler.config import SamplingConfig

EMBEDDINGS_FILE = "embeddings.parquet"  # in the Model's directory, for task dgi


BACKUP_DIR = ".backup"  # under the component's directory: <pipeline root>/GnnTrainer/.backup


def backup_dir(model_uri: str, examples, graph, exec_properties) -> str:
  """A checkpoint directory shared by every execution that would train the same model: keyed
  by the input artifacts and the model and trainer configs (not by the execution); in dynamic
  mode also by the sampling config, which then shapes the train subgraphs; with a user
  module, by its packaged wheel (named by its sources' hash) or module name."""
  key = {"examples": examples.id, "graph": graph.id,
         "model": json.loads(exec_properties["model_config"]),
         "trainer": json.loads(exec_properties["trainer_config"]),
         "task": json.loads(exec_properties.get("task_config") or "{}")}
  if exec_properties.get("tasks_config"):
    key["tasks"] = json.loads(exec_properties["tasks_config"])
  module = exec_properties.get("module_path") or exec_properties.get("module_file")
  if module:
    key["module"] = module
  sampling = json.loads(exec_properties.get("sampling_config") or "{}")
  if sampling.get("mode") == "dynamic":
    key["sampling"] = sampling
  key = json.dumps(key, sort_keys=True)
  fingerprint = hashlib.sha256(key.encode()).hexdigest()[:16]
  component_dir = os.path.dirname(os.path.dirname(publish.final_path(model_uri)))
  return os.path.join(component_dir, BACKUP_DIR, fingerprint)


@contextlib.contextmanager
def exclusive_backup_dir(path: str):
  """Yields `path`, locked for this process; if another live process trains the same model
  from it, a private directory instead (no resume, but no two writers of one checkpoint).
  The lock dies with its process, so a killed run's backup is free for the rerun."""
  if not publish.is_local(path):
    yield path
    return
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(os.path.dirname(path), os.path.basename(path) + ".lock"), "w") as lock:
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      private = f"{path}-{uuid.uuid4().hex[:8]}"
      logging.warning("backup %s is in use by another run; training without resume in %s",
                      path, private)
      try:
        yield private
      finally:
        shutil.rmtree(private, ignore_errors=True)
      return
    yield path


def remove_backup(path: str) -> None:
  if tf.io.gfile.exists(path):
    tf.io.gfile.rmtree(path)
  lock = path + ".lock"
  if os.path.exists(lock):
    os.remove(lock)


@publish.atomic_outputs
class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    from tfx_gnn.components.gnn_trainer import distributed, training
    examples = artifact_utils.get_single_instance(input_dict["examples"])
    graph = artifact_utils.get_single_instance(input_dict["graph"])
    model = artifact_utils.get_single_instance(output_dict["model"])
    model_run = artifact_utils.get_single_instance(output_dict["model_run"])
    model_cfg = config_base.validate(ModelConfig, exec_properties["model_config"])
    trainer_cfg = TrainerConfig.model_validate_json(exec_properties["trainer_config"])
    task_cfg = config_base.validate(TaskConfig, exec_properties.get("task_config") or "{}")
    task_cfgs = (config_base.validate(TasksConfig, exec_properties["tasks_config"])
                 if exec_properties.get("tasks_config") else None)
    if task_cfgs and len(task_cfgs) == 1:  # a one-task mapping is that task
      task_cfg, task_cfgs = next(iter(task_cfgs.values())), None
    sampling_cfg = (SamplingConfig.model_validate_json(exec_properties["sampling_config"])
                    if exec_properties.get("sampling_config") else None)
    # -- GnnTuner: its best settings override the model, trainer and sampling configs (also
    # in exec_properties, so that the backup's key tells the tuned training apart).
    tuned = None
    if input_dict.get("hyperparameters"):
      tuned = artifact_utils.get_single_instance(input_dict["hyperparameters"])
      overrides = hyperparameters.read_overrides(tuned.uri)
      model_cfg = hyperparameters.apply(model_cfg, overrides, "model", ModelConfig)
      trainer_cfg = hyperparameters.apply(trainer_cfg, overrides, "trainer")
      if sampling_cfg is not None:
        sampling_cfg = hyperparameters.apply(sampling_cfg, overrides, "sampling")
      exec_properties = {**exec_properties, "model_config": model_cfg.model_dump_json(),
                         "trainer_config": trainer_cfg.model_dump_json(),
                         **({"sampling_config": sampling_cfg.model_dump_json()}
                            if sampling_cfg is not None else {})}
    # -- end GnnTuner
    dynamic_mode = sampling_cfg is not None and sampling_cfg.mode == "dynamic"

    train_files = graph_io.split_files(examples, "train")
    if not train_files and not dynamic_mode:
      raise ValueError(f"examples {examples.uri} have no train split to train on")
    run = tracking.Run(exec_properties["tracking_uri"], exec_properties["experiment"],
                       run_name=tracking.run_name(self._context, "GnnTrainer",
                                                 exec_properties["experiment"]),
                       tags={"tfx.component": "GnnTrainer",
                             "tfx.model_uri": publish.final_path(model.uri),
                             **tracking.pipeline_tags(self._context)})
    run.log_params({**tracking.flatten("model", model_cfg.model_dump()),
                    **tracking.flatten("trainer", {  # the epochs it will train at most
                        **trainer_cfg.model_dump(), "epochs": trainer_cfg.epochs_to_train(
                            has_eval=bool(graph_io.split_files(examples, "eval")))}),
                    **(tracking.flatten("tasks", {n: c.model_dump() for n, c in
                                                  task_cfgs.items()}) if task_cfgs else
                       tracking.flatten("task", task_cfg.model_dump())),
                    **(tracking.sampling_params(sampling_cfg.model_dump())
                       if sampling_cfg else {})})
    ok = False
    try:
      export_dir = path_utils.serving_model_path(model.uri)
      schema = graph_io.read_schema_file(graph_io.subgraph_schema_path(examples.uri))
      label = graph_io.read_label(graph.uri)
      eval_files = graph_io.split_files(examples, "eval")
      train_splits = ["train"]
      if task_cfg.type == "dgi" and not task_cfgs:
        # Unsupervised and transductive (as in the DGI paper): every split's subgraphs, whose
        # labels the model never reads; nothing to validate on.
        train_files = train_files + eval_files + graph_io.split_files(examples, "test")
        train_splits = list(graph_io.SPLITS)
        eval_files = []
      if dynamic_mode:
        from tfx_gnn.components.gnn_trainer import dynamic
        from tfx_gnn.components.subgraph_sampler import fast_sampler
        fast_sampler.check_graph_fits(graph.uri, graph_io.read_schema(graph.uri),
                         exec_properties.get("memory_limit_gb"))
        split_counts = graph_io.read_info(graph.uri).get("splits", {})
        seed_ids = [i for s in train_splits if split_counts.get(s, 0) > 0
                    for i in graph_io.read_seeds(graph.uri, s)]
      with exclusive_backup_dir(backup_dir(model.uri, examples, graph, exec_properties)) as backup:
        if tf.io.gfile.exists(backup) and tf.io.gfile.listdir(backup):
          logging.warning("GnnTrainer: resuming from the backup in %s (an earlier run of "
                          "this training was interrupted)", backup)
        epochs_run, epoch_logs = [], []

        def on_epoch(epoch, logs):
          epochs_run.append(epoch)
          epoch_logs.append((epoch, logs))
          run.log_metrics(logs, step=epoch)

        train_subgraphs = None
        if dynamic_mode:  # fresh subgraphs every epoch, from the Graph artifact
          train_subgraphs = dynamic.train_subgraphs(
              graph.uri, sampling_cfg, seed_ids, shuffle_seed=trainer_cfg.seed,
              backup_dir=backup)
          logging.info("GnnTrainer: dynamic sampling of %d seeds per epoch, from epoch %d",
                       len(train_subgraphs), train_subgraphs.first_epoch)
        # In `trainer.num_workers` local worker processes when it is > 1.
        result = distributed.train(
            train_files=train_files, eval_files=eval_files, subgraph_schema=schema, label=label,
            model_cfg=model_cfg, trainer_cfg=trainer_cfg, task_cfg=task_cfg,
            **({"task_cfgs": task_cfgs} if task_cfgs else {}),
            model_dir=model_run.uri, export_dir=export_dir, backup_dir=backup,
            on_epoch=on_epoch, train_subgraphs=train_subgraphs,
            module_file=exec_properties.get("module_file") or None,
            module_path=exec_properties.get("module_path") or None)
        run.log_artifacts(export_dir, "model")
        remove_backup(backup)  # exported: the backup has served its purpose
      if epochs_run and epochs_run[0] > 0:  # resumed: epochs before it came from the backup
        model.set_int_custom_property("resumed_at_epoch", epochs_run[0])
        run.client.set_tag(run.run_id, "resumed_at_epoch", str(epochs_run[0]))
      # Which epoch's weights were exported (the best validation loss's, or the last).
      exported = training.exported_epoch(epoch_logs, validated=bool(eval_files))
      if exported is not None:
        model.set_int_custom_property("exported_epoch", exported)
        model.set_int_custom_property("epochs_trained", epoch_logs[-1][0] + 1)
        run.client.set_tag(run.run_id, "exported_epoch", str(exported))
      if task_cfg.type == "dgi" and not task_cfgs:
        path = os.path.join(model.uri, EMBEDDINGS_FILE)
        files_by_split = {s: graph_io.split_files(examples, s) for s in graph_io.SPLITS}
        if dynamic_mode:  # no train split on disk: its subgraphs as the batch mode samples them
          files_by_split["train"] = dynamic.fixed_subgraphs(
              train_subgraphs.sampler, graph_io.read_seeds(graph.uri, "train"), salt="train")
        training.write_embeddings(export_dir, files_by_split, schema, label, path)
        run.client.log_artifact(run.run_id, path)
        model.set_string_custom_property(
            "embeddings_uri", os.path.join(publish.final_path(model.uri), EMBEDDINGS_FILE))
      # The evaluator reads each example's target where the task did.
      model.set_string_custom_property("target_location", result.target[0])
      model.set_string_custom_property("target_feature", result.target[1])
      if result.heads:  # multi-task: the evaluator scores each head on its own target
        model.set_string_custom_property("heads", json.dumps(result.heads, sort_keys=True))
      for key, values in result.history.items():
        model.set_float_custom_property(f"final_{key}", values[-1])
      ok = True
    finally:
      run.finish(ok)
    model.set_string_custom_property("task", MULTI_TASK if task_cfgs else task_cfg.type)
    model.set_string_custom_property("sampling_mode", "dynamic" if dynamic_mode else "batch")
    model.set_string_custom_property("mlflow_run_id", run.run_id)
    model.set_string_custom_property("mlflow_tracking_uri", run.tracking_uri)
    if tuned is not None:
      model.set_string_custom_property("hyperparameters_uri", publish.final_path(tuned.uri))
