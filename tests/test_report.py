"""RunReport: the page's sections, and the report of the tiny pipeline run (tests/conftest.py's
served_tiny_run: a real `mlflow server` over HTTP, ML Metadata in SQLite)."""
import collections
import glob
import json
import os

import pytest

from tfx_gnn.components import graph_io
from tfx_gnn.components.run_report import report


PIPELINE_COMPONENTS = {"GraphIngest", "GraphValidator", "SubgraphSampler", "GnnTrainer",
                       "GnnEvaluator", "Pusher", "Attribution", "RunReport"}


def test_every_section_renders_even_when_artifacts_are_missing():
  html = report.render_html(report.RunData(pipeline_name="p", pipeline_run_id="r1"))
  for section in report.SECTIONS:
    assert f'<section id="{section}">' in html, section
  assert "No evaluation in this run." in html
  assert "data:image/png" not in html  # nothing to plot


def test_a_regression_run_has_its_metrics_and_no_confusion_matrix():
  metrics = {"mse": 0.5, "rmse": 0.71, "mae": 0.6, "num_examples": 60}
  evaluation = {"metric": "mae", "candidate": metrics, "baseline": None, "blessed": True,
                "reasons": []}
  data = report.RunData(pipeline_name="p", pipeline_run_id="r1", evaluation=evaluation)
  html = report.render_html(data)
  for section in report.SECTIONS:  # once each: a duplicate id breaks the page's anchors
    assert html.count(f'<section id="{section}">') == 1, section
  assert "No confusion matrix: not a classification task." in html
  for name in metrics:
    assert f">{name}<" in html, name
  assert "confusion.png" not in report.plots(data)


@pytest.mark.slow  # reads the shared pipeline run
def test_run_report_of_the_pipeline_run(served_tiny_run):
  summary = served_tiny_run.summary
  report_dir = os.path.dirname(summary["report"])
  data = json.load(open(os.path.join(report_dir, report.DATA_FILE)))
  assert data["pipeline_run_id"] == summary["run_id"]

  # Lineage from ML Metadata: every step of this run, the report itself still running.
  assert "ML Metadata" in data["lineage_source"]
  states = {r["component"]: r["state"] for r in data["lineage"]}
  assert PIPELINE_COMPONENTS <= set(states), states
  assert states["RunReport"] == "RUNNING"
  assert states["Pusher"] == "COMPLETE"

  # Degree histograms (the validator's) are those of the graph itself, counted here.
  graph_dir, = glob.glob(os.path.join(served_tiny_run.config.root, "pipeline", "GraphIngest",
                                     "graph", "*"))
  graph = graph_io.read_graph(graph_dir)
  assert set(data["degree_histograms"]) == set(graph.edge_sets)
  for name, edges in graph.edge_sets.items():
    for side, ids, end in (("out", edges.sources, edges.source_set),
                           ("in", edges.targets, edges.target_set)):
      per_node = collections.Counter(ids)
      degrees = collections.Counter(per_node[v] for v in graph.node_sets[end].ids)
      hist = data["degree_histograms"][name][side]
      assert dict(zip(hist["degree"], hist["nodes"])) == degrees, (name, side)

  # Training curves come from the trainer's MLflow run: one point per epoch.
  epochs = served_tiny_run.config.trainer.epochs
  assert len(data["history"]["val_sparse_categorical_accuracy"]) == epochs
  # The eval split decided the blessing; the test split is reported beside it.
  assert data["evaluation"]["split"] == "eval"
  assert data["evaluation"]["candidate"]["accuracy"] == summary["eval_metrics"]["accuracy"]
  assert data["evaluation"]["splits"]["test"]["accuracy"] == summary["test_metrics"]["accuracy"]
  assert data["blessed"] is True
  assert data["pushed"]["mlflow_model_version"] == summary["mlflow_model_version"]
  assert data["attribution"]["num_subgraphs"] > 0

  html = open(summary["report"]).read()
  for section in report.SECTIONS:
    assert f'<section id="{section}">' in html, section
  assert "No " not in html.split('id="overview"')[1].split("</section>")[0]
  assert html.count("data:image/png;base64,") == 4  # degrees, training, confusion, attribution


@pytest.mark.slow  # reads the shared pipeline run
def test_report_plots_metrics_and_blessing_are_in_mlflow(served_tiny_run):
  from mlflow.tracking import MlflowClient
  client = MlflowClient(tracking_uri=served_tiny_run.server.url)
  run_id = served_tiny_run.summary["mlflow_run_id"]
  logged = {a.path for a in client.list_artifacts(run_id, "report")}
  assert {"report/report.html", "report/plots"} <= logged
  plots = {a.path for a in client.list_artifacts(run_id, "report/plots")}
  assert "report/plots/confusion.png" in plots
  run = client.get_run(run_id)
  assert run.data.metrics["test_accuracy"] == served_tiny_run.summary["test_metrics"]["accuracy"]
  assert run.data.tags["report.pipeline_run_id"] == served_tiny_run.summary["run_id"]
  name = served_tiny_run.config.pipeline.name
  version = client.get_model_version(name, served_tiny_run.summary["mlflow_model_version"])
  assert version.tags["blessed"] == "true"
  assert version.run_id == run_id
