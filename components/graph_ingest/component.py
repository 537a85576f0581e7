"""GraphIngest: node and edge tables (or an existing unigraph) -> a `Graph` artifact.

Usage (`data_config`: a DataConfig, a dict or a JSON string):
  ingest = GraphIngest(data_config=DataConfig(synthetic=SyntheticSource(num_papers=1000)))
  validator = GraphValidator(graph=ingest.outputs["graph"], ...)
"""
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, component_spec

from tfx_gnn.components import config_base, types
from tfx_gnn.components.graph_ingest import driver, executor
from tfx_gnn.components.graph_ingest.config import DataConfig


class GraphIngestSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      # The `data` section of the run config (DataConfig) as JSON.
      "data_config": component_spec.ExecutionParameter(type=str),
      # The most memory the tables may take once read (pipeline.memory_limit_gb).
      "memory_limit_gb": component_spec.ExecutionParameter(type=float, optional=True),
  }
  INPUTS = {}
  OUTPUTS = {"graph": component_spec.ChannelParameter(type=types.Graph)}


class GraphIngest(base_component.BaseComponent):
  """Builds a unigraph directory and its GraphSchema; records counts as artifact properties.

  Its driver fingerprints the input files (and resolves `{SPAN}` table patterns) before the
  cache lookup, so changed data is never served from the cache (see driver.py). The Graph
  artifact carries `input_fingerprint`, `input_files`, `span` and `version`.
  """
  SPEC_CLASS = GraphIngestSpec
  DRIVER_CLASS = driver.Driver
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, data_config, memory_limit_gb: float | None = None):
    super().__init__(spec=GraphIngestSpec(
        data_config=config_base.to_json(DataConfig, data_config),
        memory_limit_gb=memory_limit_gb, graph=channel.Channel(type=types.Graph)))
