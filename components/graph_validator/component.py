"""GraphValidator: statistics and anomalies of a `Graph`; fails the run on anomalies.

Usage:
  validator = GraphValidator(graph=ingest.outputs["graph"],
                             validation=config.validation.model_dump_json())
"""
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, component_spec

from tfx_gnn.components import types
from tfx_gnn.components.graph_validator import executor


class GraphValidatorSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      # The `validation` section of the run config (pipelines.config.ValidationConfig) as JSON.
      "validation": component_spec.ExecutionParameter(type=str),
  }
  INPUTS = {"graph": component_spec.ChannelParameter(type=types.Graph)}
  OUTPUTS = {
      "statistics": component_spec.ChannelParameter(type=types.GraphStatistics),
      "anomalies": component_spec.ChannelParameter(type=types.GraphAnomalies),
  }


class GraphValidator(base_component.BaseComponent):
  """TF-GNN's schema validation, referential integrity, duplicates, NaN/Inf, label range..."""
  SPEC_CLASS = GraphValidatorSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, graph, validation: str):
    super().__init__(spec=GraphValidatorSpec(
        graph=graph, validation=validation,
        statistics=channel.Channel(type=types.GraphStatistics),
        anomalies=channel.Channel(type=types.GraphAnomalies)))
