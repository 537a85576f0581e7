"""GraphValidator: statistics and anomalies of a `Graph`, and its drift from the latest blessed
model's graph; fails the run on anomalies.

Usage (`validation_config`: a ValidationConfig, a dict or a JSON string):
  validator = GraphValidator(graph=ingest.outputs["graph"],
                             validation_config={"allow_self_loops": False},
                             baseline_statistics=baseline.outputs["statistics"])
"""
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, component_spec

from tfx_gnn.components import config_base, types
from tfx_gnn.components.graph_validator import executor
from tfx_gnn.components.graph_validator.config import ValidationConfig


class GraphValidatorSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      # The `validation` section of the run config (ValidationConfig) as JSON.
      "validation_config": component_spec.ExecutionParameter(type=str),
  }
  INPUTS = {
      "graph": component_spec.ChannelParameter(type=types.Graph),
      # The statistics of the graph that the latest blessed model was trained on (a Resolver,
      # see pipelines/resolvers.py): the run fails on drift from it. None on a first run.
      "baseline_statistics": component_spec.ChannelParameter(type=types.GraphStatistics,
                                                             optional=True),
  }
  OUTPUTS = {
      "statistics": component_spec.ChannelParameter(type=types.GraphStatistics),
      "anomalies": component_spec.ChannelParameter(type=types.GraphAnomalies),
  }


class GraphValidator(base_component.BaseComponent):
  """TF-GNN's schema validation, referential integrity, duplicates, NaN/Inf, label range..."""
  SPEC_CLASS = GraphValidatorSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, graph, validation_config=None, baseline_statistics=None):
    super().__init__(spec=GraphValidatorSpec(
        graph=graph,
        validation_config=config_base.to_json(ValidationConfig, validation_config or {}),
        baseline_statistics=baseline_statistics,
        statistics=channel.Channel(type=types.GraphStatistics),
        anomalies=channel.Channel(type=types.GraphAnomalies)))
