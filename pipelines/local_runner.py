"""Runs the pipeline on this machine with TFX's LocalDagRunner (embedded defaults: SQLite ML
Metadata, a local MLflow store, Beam in-process) and summarizes the run from ML Metadata."""
from __future__ import annotations

import datetime
import logging
import os

from tfx.dsl.compiler import compiler, constants
from tfx.orchestration.local import local_dag_runner
from tfx.orchestration.portable import runtime_parameter_utils

from tfx_gnn.components import databases, housekeeping, lineage, secrets, tracking
from tfx_gnn.pipelines.config import Config
from tfx_gnn.pipelines.pipeline import create_pipeline


def run(config: Config) -> dict:
  """Runs the whole pipeline; returns the run's summary (see `lineage.summarize`).

  A failing component raises its own error (e.g. the validator's anomaly report); nothing
  downstream of it runs, so nothing is pushed.
  """
  secrets.install_log_redaction()
  for uri in (config.mlflow.tracking_uri, config.pipeline.metadata):
    if uri and "://" in uri:
      secrets.export_credentials(uri)  # PostgreSQL's password: PGPASSWORD, never the IR
  # An unreachable MLflow server would otherwise surface only at the trainer, after sampling.
  tracking.check_reachable(config.tracking_uri)
  os.makedirs(config.root, exist_ok=True)
  if not databases.is_postgres(config.metadata_path):
    os.makedirs(os.path.dirname(config.metadata_path), exist_ok=True)
  # Our own run id (TFX's format plus the process id), so that the summary is this run's even
  # when another run of the pipeline started later ("the latest run" would be that one's).
  run_id = f"{datetime.datetime.now().isoformat()}-{os.getpid()}"
  lineage.open_store(config.metadata_path, readonly=False)  # created on the first run
  # The lease tells `tfx-gnn gc` (and the next run's housekeeping) that this run is alive.
  with housekeeping.RunLease(config.metadata_path, run_id):
    for c in collect_killed_runs(config):
      logging.warning("%s", describe_collected(c))
    tracking.prepare(config.tracking_uri, config.experiment,
                     None if config.tracking_uri.startswith(("http://", "https://"))
                     else os.path.join(config.root, "mlartifacts"))
    ir = compiler.Compiler().compile(create_pipeline(config))
    runtime_parameter_utils.substitute_runtime_parameter(
        ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
    local_dag_runner.LocalDagRunner().run_with_ir(ir)
    return lineage.summarize(lineage.open_store(config.metadata_path), run_id)


def collect_killed_runs(config: Config) -> list:
  """Executions of this pipeline left RUNNING by a run whose process is gone: marked FAILED
  in ML Metadata, their partial outputs removed (`housekeeping.collect`)."""
  metadata = config.metadata_path
  if not databases.is_postgres(metadata) and not os.path.exists(metadata):
    return []  # no run yet
  return housekeeping.collect(lineage.open_store(metadata, readonly=False), metadata,
                              config.pipeline.name, os.path.join(config.root, "pipeline"))


def describe_collected(c: housekeeping.Collected) -> str:
  return (f"execution {c.execution_id} ({c.component}) of run {c.run_id} was left RUNNING by a "
          f"process that is gone: marked FAILED; removed {', '.join(c.removed) or 'no files'}")


def format_summary(config: Config, summary: dict) -> str:
  lines = [f"pipeline {config.pipeline.name}: run {summary['run_id']}"]
  for component, state in summary["components"].items():
    lines.append(f"  {component:32s} {state:9s} {summary['seconds'][component]:7.1f} s")
  metrics = summary.get("test_metrics")
  if metrics:
    lines.append("test split: " + ", ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
  if summary.get("baseline_metrics"):
    lines.append("baseline (latest blessed model) on the same split: " + ", ".join(
        f"{k}={v:.4f}" for k, v in summary["baseline_metrics"].items()))
  lines.append(f"blessed: {summary.get('blessed')}"
               + (f" ({summary['blessing_reasons']})" if summary.get("blessing_reasons") else ""))
  lines.append(f"pushed model: {summary.get('pushed_to') or 'not pushed'}")
  if summary.get("mlflow_model_version"):
    lines.append(f"MLflow registered model: {config.pipeline.name} "
                 f"version {summary['mlflow_model_version']}")
  lines.append(f"MLflow run: {summary.get('mlflow_run_id')} at {config.tracking_uri} "
               f"(experiment {config.experiment})")
  if summary.get("report"):
    lines.append(f"run report: {summary['report']} (also in the MLflow run, under report/)")
  lines.append(f"ML Metadata: {config.metadata_path} "
               f"(tfx-gnn lineage CONFIG shows the lineage)")
  if "wall_time_s" in summary:
    lines.append(f"wall time: {summary['wall_time_s']} s")
  return "\n".join(lines)
