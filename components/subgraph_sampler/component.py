"""SubgraphSampler: subgraph sampling as a TFX Beam component.

One Beam pipeline samples a subgraph around every seed of each split (train, eval, test) and
writes `Examples` of serialized GraphTensors (`Split-<split>/*.tfrecord`, uncompressed, as
`runner.TFRecordDatasetProvider` reads them), plus the subgraphs' GraphSchema (`schema.pbtxt`).
The pipeline's `beam_pipeline_args` choose the runner (DirectRunner, Dataflow, Flink, Spark).
`sampling.engine` chooses the sampler: `fast` (the project's engine, `fast_sampler`, in Beam
DoFns; reproducible from `sampling.seed`) or `tfgnn_beam` (TF-GNN's Beam sampler); both write
the same GraphTensor encoding, parsed with the same schema.

Usage (`sampling_config`: a SamplingConfig, a dict or a JSON string; `task_config` likewise a
task config, whose `seeds()` tell what to sample around: nodes by default):
  sampler = SubgraphSampler(graph=ingest.outputs["graph"],
                            anomalies=validator.outputs["anomalies"],
                            sampling_config={"hops": 2, "fanouts": {"cites": 8}},
                            task_config=config.task)
"""
import json

from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import channel, component_spec, standard_artifacts

from tfx_gnn.components import config_base, types
from tfx_gnn.components.gnn_trainer.config import TaskConfig
from tfx_gnn.components.subgraph_sampler import executor
from tfx_gnn.components.subgraph_sampler.config import SamplingConfig


class SubgraphSamplerSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      # The `sampling` section of the run config (SamplingConfig) as JSON.
      "sampling_config": component_spec.ExecutionParameter(type=str),
      # The most memory the fast engine's in-memory graph may take (pipeline.memory_limit_gb).
      "memory_limit_gb": component_spec.ExecutionParameter(type=float, optional=True),
      # What to sample around (the task config's seeds(), JSON): nodes (default),
      # labelled links (link prediction) or whole graphs (graph-level tasks).
      "seeds": component_spec.ExecutionParameter(type=str, optional=True),
  }
  INPUTS = {
      "graph": component_spec.ChannelParameter(type=types.Graph),
      # Consumed only to order sampling after a successful validation.
      "anomalies": component_spec.ChannelParameter(type=types.GraphAnomalies),
      # GnnTuner's best settings: its tuned hops and fanouts replace the config's.
      "hyperparameters": component_spec.ChannelParameter(
          type=standard_artifacts.HyperParameters, optional=True),
  }
  OUTPUTS = {"examples": component_spec.ChannelParameter(type=standard_artifacts.Examples)}


class SubgraphSampler(base_beam_component.BaseBeamComponent):
  """Samples subgraphs rooted at the labelled node set's seeds, per split."""
  SPEC_CLASS = SubgraphSamplerSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, graph, anomalies, sampling_config, task_config=None,
               memory_limit_gb: float | None = None, hyperparameters=None):
    seeds = config_base.validate(TaskConfig, task_config or {}).seeds()
    super().__init__(spec=SubgraphSamplerSpec(
        graph=graph, anomalies=anomalies,
        sampling_config=config_base.to_json(SamplingConfig, sampling_config),
        memory_limit_gb=memory_limit_gb, seeds=json.dumps(seeds, sort_keys=True),
        hyperparameters=hyperparameters,
        examples=channel.Channel(type=standard_artifacts.Examples)))
