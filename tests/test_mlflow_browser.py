"""The review experience in a real browser: the tiny pipeline run against `mlflow server` over
HTTP (tests/conftest.py), its run, report and registered model opened in MLflow's UI, and the
HTML run report opened on its own, in headless Debian Chromium driven by Playwright.

Chromium comes from the Debian packages `chromium` and `chromium-driver` (`make browser`, a
prerequisite of `make test`); Playwright never downloads a browser here.
"""
import os
import re

import pytest

pytestmark = pytest.mark.slow  # runs pipelines, trains models or starts servers

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000  # the MLflow UI's first load on a busy 2-core machine


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
  if not os.path.exists(CHROMIUM):
    pytest.fail(f"{CHROMIUM} is missing: run `make browser` (a prerequisite of `make test`)")
  from playwright.sync_api import sync_playwright
  profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
  with sync_playwright() as p:
    context = p.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS,
        viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    try:
      yield context
    finally:
      context.close()


def _client(run):
  from mlflow.tracking import MlflowClient
  return MlflowClient(tracking_uri=run.server.url)


def test_pipeline_logged_to_the_http_server(served_tiny_run):
  run = served_tiny_run
  assert set(run.summary["components"].values()) == {"COMPLETE"}, run.summary["components"]
  client = _client(run)
  mlflow_run = client.get_run(run.summary["mlflow_run_id"])
  # Artifacts went through the server's proxy into its artifact store, not a local path.
  assert mlflow_run.info.artifact_uri.startswith("mlflow-artifacts:")
  stored = os.path.join(run.root, "mlflow-server", "artifacts")
  found = {f for _, _, files in os.walk(stored) for f in files}
  assert {"saved_model.pb", "report.html"} <= found
  assert "test_accuracy" in mlflow_run.data.metrics


def test_mlflow_ui_shows_metrics_report_and_registered_model(served_tiny_run, browser_context,
                                                            tmp_path):
  run = served_tiny_run
  client = _client(run)
  mlflow_run = client.get_run(run.summary["mlflow_run_id"])
  experiment = mlflow_run.info.experiment_id
  page = browser_context.new_page()
  errors = []
  page.on("pageerror", lambda e: errors.append(str(e)))

  # The run's page: its metrics, logged by the trainer (per epoch) and the run report.
  page.goto(f"{run.server.url}/#/experiments/{experiment}/runs/{mlflow_run.info.run_id}")
  page.get_by_text("test_accuracy", exact=True).first.wait_for()
  page.get_by_text("val_sparse_categorical_accuracy", exact=True).first.wait_for()
  accuracy = f"{mlflow_run.data.metrics['test_accuracy']:.3g}"[:4]
  assert accuracy in page.content()
  page.screenshot(path=str(tmp_path / "mlflow-run.png"), full_page=True)

  # Its artifacts: the run report, and the attribution report.
  page.goto(f"{run.server.url}/#/experiments/{experiment}/runs/{mlflow_run.info.run_id}"
            "/artifacts")
  page.get_by_text("attribution", exact=True).first.wait_for()
  page.get_by_text("report", exact=True).first.click()
  page.get_by_text("report.html", exact=True).first.click()
  # MLflow previews the self-contained page in an iframe: the report itself renders there.
  page.frame_locator("iframe").first.locator("section#overview h2").wait_for()
  page.screenshot(path=str(tmp_path / "mlflow-artifacts.png"), full_page=True)

  # The registered model, its version tagged with the blessing.
  name = run.config.pipeline.name
  version = run.summary["mlflow_model_version"]
  page.goto(f"{run.server.url}/#/models/{name}/versions/{version}")
  page.get_by_text("blessed", exact=True).first.wait_for()
  assert re.search(rf"Version\s*{version}", page.inner_text("body"))
  page.screenshot(path=str(tmp_path / "mlflow-model.png"), full_page=True)
  print(f"screenshots: {tmp_path}")
  assert not errors, errors


def test_run_report_renders_every_section_without_console_errors(served_tiny_run,
                                                                 browser_context, tmp_path):
  from tfx_gnn.components.run_report import report
  page = browser_context.new_page()
  problems = []
  page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
  page.on("pageerror", lambda e: problems.append(str(e)))
  page.goto("file://" + served_tiny_run.summary["report"])
  for section in report.SECTIONS:
    assert page.locator(f"section#{section} h2").is_visible(), section
  images = page.locator("img")
  assert images.count() >= 4  # degrees, training, confusion, attribution
  for i in range(images.count()):
    assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0"), i
  page.screenshot(path=str(tmp_path / "run-report.png"), full_page=True)
  print(f"screenshot: {tmp_path / 'run-report.png'}")
  assert not problems, problems
