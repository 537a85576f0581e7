"""GnnTuner: TFX's Tuner pattern for GNNs. It runs before the sampler and the trainer and
outputs a `HyperParameters` artifact (TFX's standard type; `best_hyperparameters.txt`, as
TFX's Tuner writes it) that the SubgraphSampler and the GnnTrainer consume: they then sample
and train with the best trial's settings instead of the config's.

The search is a seeded Optuna TPE study (`tuning.py`) over the `tuner.search_space`: model
template and options (MtAlbis's after TF-GNN's Vizier space), units, rounds, learning rate,
dropout, weight decay, sampling hops and fanouts. Each trial trains on subgraphs sampled in
memory from the Graph artifact (the dynamic mode: no Beam pass per trial) and is judged on the
eval split only; the test split is never read. Every trial is an MLflow child run of the
tuning run. Besides the JSON, the artifact holds `best_hyperparameters.yaml` (the sections to
pin in the config) and `trials.json`.

Usage:
  tuner = GnnTuner(graph=ingest.outputs["graph"], anomalies=validator.outputs["anomalies"],
                   tracking_uri=uri, experiment="my-pipeline",
                   tuner_config={"trials": 10}, model_config=config.model, ...)
  trainer = GnnTrainer(..., hyperparameters=tuner.outputs["best_hyperparameters"])
"""
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, component_spec, standard_artifacts

from tfx_gnn.components import config_base, types
from tfx_gnn.components.gnn_trainer.config import ModelConfig, TaskConfig, TrainerConfig
from tfx_gnn.components.gnn_tuner import executor
from tfx_gnn.components.gnn_tuner.config import TunerConfig
from tfx_gnn.components.subgraph_sampler.config import SamplingConfig


class GnnTunerSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      "tuner_config": component_spec.ExecutionParameter(type=str),  # TunerConfig JSON
      "model_config": component_spec.ExecutionParameter(type=str),  # the trials' base sections
      "trainer_config": component_spec.ExecutionParameter(type=str),
      "task_config": component_spec.ExecutionParameter(type=str),
      "sampling_config": component_spec.ExecutionParameter(type=str),
      "memory_limit_gb": component_spec.ExecutionParameter(type=float, optional=True),
      "tracking_uri": component_spec.ExecutionParameter(type=str),
      "experiment": component_spec.ExecutionParameter(type=str),
  }
  INPUTS = {
      "graph": component_spec.ChannelParameter(type=types.Graph),
      # Consumed only to order the search after a successful validation.
      "anomalies": component_spec.ChannelParameter(type=types.GraphAnomalies),
  }
  OUTPUTS = {
      "best_hyperparameters": component_spec.ChannelParameter(
          type=standard_artifacts.HyperParameters),
  }


class GnnTuner(base_component.BaseComponent):
  """A seeded hyperparameter search whose best settings the sampler and trainer use."""
  SPEC_CLASS = GnnTunerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, graph, anomalies, tracking_uri: str, experiment: str, tuner_config=None,
               model_config=None, trainer_config=None, task_config=None, sampling_config=None,
               memory_limit_gb: float | None = None):
    # Config sections as objects, dicts or JSON strings, as every component takes them.
    super().__init__(spec=GnnTunerSpec(
        graph=graph, anomalies=anomalies,
        tuner_config=config_base.to_json(TunerConfig, tuner_config or {}),
        model_config=config_base.to_json(ModelConfig, model_config or {}),
        trainer_config=config_base.to_json(TrainerConfig, trainer_config or {}),
        task_config=config_base.to_json(TaskConfig, task_config or {}),
        sampling_config=config_base.to_json(SamplingConfig, sampling_config or {}),
        tracking_uri=tracking_uri, experiment=experiment,
        memory_limit_gb=memory_limit_gb,
        best_hyperparameters=channel.Channel(type=standard_artifacts.HyperParameters)))
