"""GraphIngest's executor: reads the config, calls `ingest.ingest`, records counts and the
inputs' fingerprint, span and version."""
import json
import os

from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils

from tfx_gnn.components import publish

from tfx_gnn.components.graph_ingest import inputs
from tfx_gnn.components.graph_ingest.config import DataConfig


@publish.atomic_outputs
class Executor(base_beam_executor.BaseBeamExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    from tfx_gnn.components.graph_ingest import ingest
    graph_artifact = artifact_utils.get_single_instance(output_dict["graph"])
    # The driver has resolved the spans (LocalDagRunner); on Kubeflow, where no driver runs,
    # this finds them.
    data, span, version = inputs.resolve_spans(
        DataConfig.model_validate_json(exec_properties["data_config"]))
    span = exec_properties.get(inputs.SPAN_PROPERTY, span)
    version = exec_properties.get(inputs.VERSION_PROPERTY, version)
    fingerprint = inputs.fingerprint(data)
    keyed = exec_properties.get(inputs.FINGERPRINT_PROPERTY)
    if keyed is not None and keyed != fingerprint.text:
      # The cache key was computed from other bytes than those about to be read.
      raise inputs.InputError(
          "the input files changed while the pipeline was starting (after the cache check): "
          f"{'; '.join(inputs.changed_files(keyed, fingerprint.text)) or 'files removed'}; "
          "run again")
    scratch = os.path.join(self._get_tmp_dir(), "tables")
    graph = ingest.ingest(data, out_dir=graph_artifact.uri, scratch_dir=scratch,
                          memory_limit_gb=exec_properties.get("memory_limit_gb"),
                          make_pipeline=self._make_beam_pipeline)
    counts = graph.counts()
    for key, value in (("node_counts", counts["node_sets"]), ("edge_counts", counts["edge_sets"]),
                       ("split_counts", counts["splits"])):
      graph_artifact.set_string_custom_property(key, json.dumps(value))
    if graph.label:
      graph_artifact.set_string_custom_property("label_node_set", graph.label.node_set)
      graph_artifact.set_int_custom_property("num_classes", graph.label.num_classes)
    # As TFX's ExampleGen records them on its Examples (and here also each file's mtime).
    graph_artifact.set_string_custom_property(inputs.FINGERPRINT_PROPERTY, fingerprint.text)
    graph_artifact.set_string_custom_property(inputs.FILES_PROPERTY, fingerprint.files_json())
    graph_artifact.set_int_custom_property(inputs.SPAN_PROPERTY, int(span))
    if version is not None:
      graph_artifact.set_int_custom_property(inputs.VERSION_PROPERTY, int(version))
