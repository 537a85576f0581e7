"""RunReport's executor: collects the run's artifacts, renders, writes, logs to MLflow."""
import os
import tempfile

from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from tfx_gnn.components import graph_io, tracking

MLFLOW_DIR = "report"


def _one(input_dict, key):
  artifacts = input_dict.get(key) or []
  return artifacts[0] if artifacts else None


class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    from tfx_gnn.components.attribution import report as attribution_report
    from tfx_gnn.components.run_report import report
    out = artifact_utils.get_single_instance(output_dict["report"])
    run_id = (self._context.pipeline_run_id if self._context else None) or "unknown"
    data = report.RunData(pipeline_name=exec_properties["pipeline_name"], pipeline_run_id=run_id)

    if (statistics := _one(input_dict, "statistics")) is not None:
      data.statistics = report.read_statistics(statistics.uri)
      data.degree_histograms = report.degree_histograms(data.statistics)
    if (anomalies := _one(input_dict, "anomalies")) is not None:
      data.anomalies = report.read_anomalies(anomalies.uri)
      data.drift = report.read_drift(anomalies.uri)
    if (evaluation := _one(input_dict, "evaluation")) is not None:
      data.evaluation = report.read_json(os.path.join(evaluation.uri, "metrics.json"))
    if (blessing := _one(input_dict, "blessing")) is not None:
      data.blessed = bool(blessing.get_int_custom_property("blessed"))
    if (attributions := _one(input_dict, "attributions")) is not None:
      data.attribution = report.read_json(
          os.path.join(attributions.uri, attribution_report.SUMMARY_FILE))
    if (pushed := _one(input_dict, "pushed_model")) is not None:
      is_pushed = bool(pushed.get_int_custom_property("pushed"))
      data.pushed = {"pushed": is_pushed,
                     "destination": pushed.get_string_custom_property("pushed_destination"),
                     "mlflow_model_version":
                         pushed.get_string_custom_property("mlflow_model_version")}
    run = None
    model = _one(input_dict, "model")
    if model is not None and model.get_string_custom_property("mlflow_run_id"):
      run = tracking.Run.attach(model.get_string_custom_property("mlflow_tracking_uri"),
                                model.get_string_custom_property("mlflow_run_id"))
      data.mlflow = {"tracking_uri": run.tracking_uri, "run_id": run.run_id}
      data.history = report.mlflow_history(run.tracking_uri, run.run_id)

    metadata_path = exec_properties.get("metadata_path") or ""
    if metadata_path and os.path.exists(metadata_path) and run_id != "unknown":
      data.lineage = report.lineage_from_mlmd(metadata_path, run_id)
      data.lineage_source = f"From ML Metadata ({metadata_path}), pipeline run {run_id}."
    else:
      # Kubeflow: ML Metadata is the cluster's service, not reachable from a step's container.
      data.lineage = [{"component": "RunReport", "state": "RUNNING", "outputs": [],
                       "inputs": [{"key": k, "type": a.type_name, "id": a.id, "uri": a.uri}
                                  for k, v in input_dict.items() for a in v]}]
      data.lineage_source = ("ML Metadata is not readable from this step; the lineage shown is "
                             "this step's inputs (the KFP UI shows the whole run's lineage).")

    figures = report.plots(data)
    page = report.render_html(data, figures)
    graph_io.write_text(os.path.join(out.uri, report.DATA_FILE), data.to_json())
    graph_io.write_text(os.path.join(out.uri, report.REPORT_FILE), page)
    out.set_string_custom_property("pipeline_run_id", run_id)
    if run is not None:
      # From a local copy: the artifact's uri may be gs://, MLflow uploads local files.
      with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "plots"))
        for name, png in figures.items():
          with open(os.path.join(tmp, "plots", name), "wb") as f:
            f.write(png)
        with open(os.path.join(tmp, report.REPORT_FILE), "w") as f:
          f.write(page)
        run.log_artifacts(tmp, MLFLOW_DIR)
      if data.evaluation:
        ev = data.evaluation
        for split, metrics in (ev.get("splits") or {"test": ev["candidate"]}).items():
          run.log_metrics({f"{split}_{k}": v for k, v in metrics.items()
                           if isinstance(v, float)})
      if data.statistics:
        run.log_metrics({f"graph.nodes.{k}": v["count"]
                         for k, v in data.statistics["node_sets"].items()})
      run.set_tags({"report.pipeline_run_id": run_id, "report.uri": out.uri,
                    **({"blessed": str(data.blessed).lower()} if data.blessed is not None
                       else {})})
      out.set_string_custom_property("mlflow_run_id", run.run_id)
