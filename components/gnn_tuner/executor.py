"""GnnTuner's executor: runs the search (tuning.tune) and writes the HyperParameters artifact."""
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from tfx_gnn.components import config_base, publish, tracking
from tfx_gnn.components.gnn_trainer.config import ModelConfig, TaskConfig, TrainerConfig
from tfx_gnn.components.gnn_tuner.config import TunerConfig
from tfx_gnn.components.subgraph_sampler.config import SamplingConfig


@publish.atomic_outputs
class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    from tfx_gnn.components.gnn_tuner import tuning
    graph = artifact_utils.get_single_instance(input_dict["graph"])
    best = artifact_utils.get_single_instance(output_dict["best_hyperparameters"])
    tuner_cfg = TunerConfig.model_validate_json(exec_properties["tuner_config"])
    run = tracking.Run(exec_properties["tracking_uri"], exec_properties["experiment"],
                       run_name=f"tune-{best.id or 'local'}",
                       tags={"tfx.component": "GnnTuner",
                             "tfx.hyperparameters_uri": publish.final_path(best.uri)})
    run.log_params(tracking.flatten("tuner", tuner_cfg.model_dump(mode="json")))
    ok = False
    try:
      result = tuning.tune(
          graph.uri, tuner=tuner_cfg,
          model=config_base.validate(ModelConfig, exec_properties["model_config"]),
          trainer=TrainerConfig.model_validate_json(exec_properties["trainer_config"]),
          task=config_base.validate(TaskConfig, exec_properties["task_config"]),
          sampling=SamplingConfig.model_validate_json(exec_properties["sampling_config"]),
          tracking=run, experiment=exec_properties["experiment"],
          memory_limit_gb=exec_properties.get("memory_limit_gb"))
      tuning.write_result(result, best.uri)
      for name in (tuning.BEST_YAML_FILE, tuning.TRIALS_FILE):
        run.log_artifact(f"{best.uri}/{name}")
      ok = True
    finally:
      run.finish(ok)
    best.set_float_custom_property("best_value", result.best_value)
    best.set_string_custom_property("objective", result.metric)
    best.set_int_custom_property("best_trial", result.best_trial)
    best.set_int_custom_property("trials", len(result.trials))
    best.set_float_custom_property("wall_seconds", result.wall_seconds)
    best.set_string_custom_property("mlflow_run_id", run.run_id)
