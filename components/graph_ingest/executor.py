"""GraphIngest's executor: reads the config, calls `ingest.ingest`, records counts."""
import json
import os

from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from tfx_gnn.components import publish

from tfx_gnn.components.graph_ingest.config import DataConfig


@publish.atomic_outputs
class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    from tfx_gnn.components.graph_ingest import ingest  # pylint: disable=g-import-not-at-top
    graph_artifact = artifact_utils.get_single_instance(output_dict["graph"])
    data = DataConfig.model_validate_json(exec_properties["data_config"])
    scratch = os.path.join(self._get_tmp_dir(), "tables")
    graph = ingest.ingest(data, out_dir=graph_artifact.uri, scratch_dir=scratch,
                          memory_limit_gb=exec_properties.get("memory_limit_gb"))
    counts = graph.counts()
    for key, value in (("node_counts", counts["node_sets"]), ("edge_counts", counts["edge_sets"]),
                       ("split_counts", counts["splits"])):
      graph_artifact.set_string_custom_property(key, json.dumps(value))
    if graph.label:
      graph_artifact.set_string_custom_property("label_node_set", graph.label.node_set)
      graph_artifact.set_int_custom_property("num_classes", graph.label.num_classes)
