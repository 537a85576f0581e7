"""GnnTrainer: trains a GNN with TF-GNN's Runner on sampled subgraphs.

Batch mode (default): the train split of `examples`. Dynamic mode (`sampling_config` with
`mode: dynamic`): fresh train subgraphs sampled in memory from `graph` every epoch
(`dynamic.py`); `examples` then supply the fixed eval split and the subgraph schema.

Outputs a `Model` (`Format-Serving/`: a SavedModel whose `serving_default` takes serialized
GraphTensor tf.Examples and returns `logits`, or `embeddings` for task dgi, whose Model also
holds `embeddings.parquet`: the root embedding of every sampled subgraph, per split) and a `ModelRun` (checkpoints and TensorBoard
summaries). Parameters, per-epoch metrics and the model are logged to MLflow; the run id is
the Model's `mlflow_run_id` custom property.

Usage:
  trainer = GnnTrainer(examples=sampler.outputs["examples"], graph=ingest.outputs["graph"],
                       model_config=config.model.model_dump_json(),
                       trainer_config=config.trainer.model_dump_json(),
                       tracking_uri=config.tracking_uri, experiment=config.experiment)
"""
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, component_spec, standard_artifacts

from tfx_gnn.components import types
from tfx_gnn.components.gnn_trainer import executor


class GnnTrainerSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      "model_config": component_spec.ExecutionParameter(type=str),  # ModelConfig JSON
      "trainer_config": component_spec.ExecutionParameter(type=str),  # TrainerConfig JSON
      "task_config": component_spec.ExecutionParameter(type=str, optional=True),  # TaskConfig
      # SamplingConfig JSON: with `mode: dynamic` the trainer samples its train subgraphs from
      # the Graph artifact every epoch (the Examples then hold only eval and test).
      "sampling_config": component_spec.ExecutionParameter(type=str, optional=True),
      "memory_limit_gb": component_spec.ExecutionParameter(type=float, optional=True),
      "tracking_uri": component_spec.ExecutionParameter(type=str),
      "experiment": component_spec.ExecutionParameter(type=str),
  }
  INPUTS = {
      "examples": component_spec.ChannelParameter(type=standard_artifacts.Examples),
      "graph": component_spec.ChannelParameter(type=types.Graph),
      # GnnTuner's best settings: override the model, trainer and sampling configs.
      "hyperparameters": component_spec.ChannelParameter(
          type=standard_artifacts.HyperParameters, optional=True),
  }
  OUTPUTS = {
      "model": component_spec.ChannelParameter(type=standard_artifacts.Model),
      "model_run": component_spec.ChannelParameter(type=standard_artifacts.ModelRun),
  }


class GnnTrainer(base_component.BaseComponent):
  """`tensorflow_gnn.runner.run` with the configured task(s) and model-zoo template."""
  SPEC_CLASS = GnnTrainerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, examples, graph, model_config: str, trainer_config: str,
               tracking_uri: str, experiment: str, task_config: str | None = None,
               sampling_config: str | None = None, memory_limit_gb: float | None = None,
               hyperparameters=None):
    super().__init__(spec=GnnTrainerSpec(
        examples=examples, graph=graph, model_config=model_config,
        trainer_config=trainer_config, tracking_uri=tracking_uri, experiment=experiment,
        task_config=task_config, sampling_config=sampling_config,
        memory_limit_gb=memory_limit_gb, hyperparameters=hyperparameters,
        model=channel.Channel(type=standard_artifacts.Model),
        model_run=channel.Channel(type=standard_artifacts.ModelRun)))
