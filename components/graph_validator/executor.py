"""GraphValidator's executor: writes statistics, anomalies and (with a baseline) drift, then
fails on anomalies."""
import json
import logging
import os

from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils

from tfx_gnn.components import graph_io, publish
from tfx_gnn.components.graph_validator.config import ValidationConfig

STATISTICS_FILE = "statistics.json"
ANOMALIES_FILE = "anomalies.json"
REPORT_FILE = "report.txt"
DRIFT_FILE = "drift.json"  # in the anomalies artifact, when there was a baseline


@publish.atomic_outputs
class Executor(base_beam_executor.BaseBeamExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    from tfx_gnn.components.graph_validator import validation
    graph_dir = artifact_utils.get_single_uri(input_dict["graph"])
    statistics = artifact_utils.get_single_instance(output_dict["statistics"])
    anomalies_artifact = artifact_utils.get_single_instance(output_dict["anomalies"])
    config = ValidationConfig.model_validate_json(exec_properties["validation_config"])

    schema = graph_io.read_schema(graph_dir)
    from tfx_gnn.components.graph_validator import beam_validation
    on_beam = beam_validation.artifact_megabytes(graph_dir, schema) > config.beam_threshold_mb
    if on_beam:  # beyond memory: the id checks on the component's Beam pipeline
      stats, anomalies = beam_validation.validate(
          graph_dir, schema, config, os.path.join(self._get_tmp_dir(), "id_checks"),
          self._make_beam_pipeline)
    else:
      stats, anomalies = validation.validate(graph_io.read_graph(graph_dir), schema, config)
    graph_io.write_text(os.path.join(statistics.uri, STATISTICS_FILE), json.dumps(stats, indent=2))
    baseline = (input_dict.get("baseline_statistics") or [None])[0]
    if on_beam and baseline is not None:
      logging.warning("GraphValidator: no drift check on the Beam path (its statistics have "
                      "no feature histograms or degree summaries)")
    elif baseline is not None and config.drift.enabled:
      # The statistics of the latest blessed model's graph (pipelines/resolvers.py).
      import tensorflow as tf  # local or gs://
      from tfx_gnn.components.graph_validator import drift
      with tf.io.gfile.GFile(os.path.join(baseline.uri, STATISTICS_FILE)) as f:
        comparisons = drift.compare(stats, json.load(f), config.drift)
      anomalies += drift.anomalies(comparisons, config.drift)
      graph_io.write_text(os.path.join(anomalies_artifact.uri, DRIFT_FILE),
                          json.dumps(drift.report(comparisons, baseline.uri), indent=2))
      anomalies_artifact.set_string_custom_property("drift_baseline", baseline.uri)
    report = validation.format_report(anomalies)
    graph_io.write_text(os.path.join(anomalies_artifact.uri, ANOMALIES_FILE),
           json.dumps([a.to_dict() for a in anomalies], indent=2, default=str))
    graph_io.write_text(os.path.join(anomalies_artifact.uri, REPORT_FILE), report)
    anomalies_artifact.set_int_custom_property("num_anomalies", len(anomalies))
    # Anomalies fail the run here, before anything is sampled, trained or pushed.
    validation.check(anomalies)
