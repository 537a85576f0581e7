"""RunReport: the last step of the DAG; one self-contained HTML page per pipeline run.

Graph statistics and degree distributions, the validation result, training curves (the
trainer's MLflow history), evaluation against the baseline, the confusion matrix, the
attribution summary and the run's lineage from ML Metadata. The page, its plots and the test
metrics are logged to the trainer's MLflow run (`report/`). Every input but the graph is
optional, so the component can be used in pipelines without some steps.

Usage:
  report = RunReport(graph=ingest.outputs["graph"], statistics=validator.outputs["statistics"],
                     anomalies=validator.outputs["anomalies"], model=trainer.outputs["model"],
                     evaluation=evaluator.outputs["evaluation"],
                     blessing=evaluator.outputs["blessing"],
                     attributions=attribution.outputs["attributions"],
                     pushed_model=pusher.outputs["pushed_model"],
                     pipeline_name=config.pipeline.name, metadata_path=config.metadata_path)
"""
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, component_spec, standard_artifacts

from tfx_gnn.components import types
from tfx_gnn.components.run_report import executor


def _optional(artifact_type):
  return component_spec.ChannelParameter(type=artifact_type, optional=True)


class RunReportSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      "pipeline_name": component_spec.ExecutionParameter(type=str),
      # The ML Metadata SQLite file the lineage is read from; where it is not reachable from
      # the step (Kubeflow: MLMD is a service of the cluster), the lineage shown is the
      # step's own inputs.
      "metadata_path": component_spec.ExecutionParameter(type=str, optional=True),
  }
  INPUTS = {
      "graph": component_spec.ChannelParameter(type=types.Graph),
      "statistics": _optional(types.GraphStatistics),
      "anomalies": _optional(types.GraphAnomalies),
      "model": _optional(standard_artifacts.Model),
      "evaluation": _optional(standard_artifacts.ModelEvaluation),
      "blessing": _optional(standard_artifacts.ModelBlessing),
      "attributions": _optional(types.Attributions),
      "pushed_model": _optional(standard_artifacts.PushedModel),
  }
  OUTPUTS = {
      "report": component_spec.ChannelParameter(type=types.Report),
  }


class RunReport(base_component.BaseComponent):
  """One HTML report per pipeline run, also logged to MLflow."""
  SPEC_CLASS = RunReportSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, graph, pipeline_name: str, statistics=None, anomalies=None, model=None,
               evaluation=None, blessing=None, attributions=None, pushed_model=None,
               metadata_path: str = ""):
    super().__init__(spec=RunReportSpec(
        graph=graph, statistics=statistics, anomalies=anomalies, model=model,
        evaluation=evaluation, blessing=blessing, attributions=attributions,
        pushed_model=pushed_model, pipeline_name=pipeline_name, metadata_path=metadata_path,
        report=channel.Channel(type=types.Report)))
