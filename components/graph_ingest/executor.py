"""GraphIngest's executor: reads the config, calls `ingest.ingest`, records counts."""
import json
import os

from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from pipelines.config import DataConfig


class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    from components.graph_ingest import ingest  # pylint: disable=g-import-not-at-top
    graph_artifact = artifact_utils.get_single_instance(output_dict["graph"])
    data = DataConfig.model_validate_json(exec_properties["data"])
    scratch = os.path.join(self._get_tmp_dir(), "tables")
    graph = ingest.ingest(data, out_dir=graph_artifact.uri, scratch_dir=scratch)
    counts = graph.counts()
    graph_artifact.node_counts = json.dumps(counts["node_sets"])
    graph_artifact.edge_counts = json.dumps(counts["edge_sets"])
    graph_artifact.split_counts = json.dumps(counts["splits"])
    if graph.label:
      graph_artifact.label_node_set = graph.label.node_set
      graph_artifact.num_classes = graph.label.num_classes
