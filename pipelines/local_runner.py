"""Runs the pipeline on this machine with TFX's LocalDagRunner (embedded defaults: SQLite ML
Metadata, a local MLflow store, Beam in-process) and summarizes the run from ML Metadata."""
from __future__ import annotations

import datetime
import logging
import os
import time

from tfx.dsl.compiler import compiler, constants
from tfx.dsl.components.base import base_component
from tfx.orchestration.local import local_dag_runner
from tfx.orchestration.portable import runtime_parameter_utils

from tfx_gnn.components import databases, housekeeping, lineage, secrets, tracking
from tfx_gnn.pipelines.config import Config
from tfx_gnn.pipelines.pipeline import create_pipeline

_progress = logging.getLogger(__name__)


class _ComponentProgress(logging.Handler):
  """One line as each component starts, and one as it ends (with its time, or `cached`), from
  the LocalDagRunner's own log records (absl, INFO: the CLI enables them)."""

  def __init__(self, node_ids: list[str]):
    super().__init__(logging.INFO)
    self._position = {node: i + 1 for i, node in enumerate(node_ids)}
    self._started: dict[str, float] = {}
    self._cached = False
    self._current = None

  def _label(self, node: str) -> str:
    return f"[{self._position.get(node, '?')}/{len(self._position)}] {node}"

  def emit(self, record):
    if record.msg == "Component %s is running.":
      self._current, self._cached = record.args[0], False
      self._started[self._current] = time.monotonic()
      _progress.info("%s ...", self._label(self._current))
    elif record.msg == "A cached execution %d is used.":
      self._cached = True
    elif record.msg == "Component %s is finished." and record.args[0] in self._started:
      node = record.args[0]
      _progress.info("%s %s", self._label(node), "cached" if self._cached else
                     f"done in {time.monotonic() - self._started[node]:.1f} s")


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
    pipeline = create_pipeline(config)
    for component in pipeline.components:
      if isinstance(component, base_component.BaseComponent):
        # As TFX's runners do before compiling: a user module file becomes a wheel named by its
        # sources' hash (GnnTrainer's module_file), so an edited module is never a cache hit.
        root = pipeline.pipeline_info.pipeline_root
        component._resolve_pip_dependencies(root)
    ir = compiler.Compiler().compile(pipeline)
    runtime_parameter_utils.substitute_runtime_parameter(
        ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
    progress = _ComponentProgress([n.pipeline_node.node_info.id for n in ir.nodes])
    absl_logger = logging.getLogger("absl")
    absl_logger.addHandler(progress)
    try:
      local_dag_runner.LocalDagRunner().run_with_ir(ir)
    finally:
      absl_logger.removeHandler(progress)
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
  lines.extend(format_evaluation(summary))
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


def _metrics(metrics: dict) -> str:
  return ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in metrics.items())


def format_evaluation(summary: dict) -> list[str]:
  """The evaluator's lines: each split's metrics (saying which decided), the trivial
  baseline's score and the bars the model had to clear, the baseline comparison (or why
  there was none), and the epoch whose weights were exported."""
  ev = summary.get("evaluation") or {}
  decided = ev.get("decided_on")
  lines = []
  for split in ("eval", "test"):
    if summary.get(f"{split}_metrics"):
      role = "decided the blessing" if split == decided else "reported"
      lines.append(f"{split} split ({role}): {_metrics(summary[f'{split}_metrics'])}")
  trivial = (ev.get("trivial") or {}).get(decided)
  thresholds = ev.get("thresholds")
  metric = ev.get("metric")
  if trivial and thresholds and metric in trivial:
    better = "<=" if thresholds.get("lower_is_better") else ">="
    lines.append(
        f"gate on the {decided} split: {metric} {better} "
        f"{thresholds['required_over_trivial']:.4f} to beat the trivial baseline "
        f"({trivial['predictor']}: {metric}={trivial[metric]:.4f}) by "
        f"min_margin_over_trivial={thresholds['min_margin_over_trivial']:g}; "
        + (f"upper_bound={thresholds['upper_bound'] or 'none'}" if better == "<=" else
           f"lower_bound={thresholds['lower_bound']:g}")
        + f"; max_regression={thresholds['max_regression']:g} against the latest blessed model")
  if summary.get("baseline_metrics"):
    lines.append(f"baseline (latest blessed model) on the same split: "
                 f"{_metrics(summary['baseline_metrics'])}")
  elif summary.get("baseline_incompatibility"):
    lines.append(f"baseline (latest blessed model) not scored: "
                 f"{summary['baseline_incompatibility']}")
  if ev.get("exported_epoch"):
    lines.append(f"exported weights: epoch {ev['exported_epoch']} of {ev['epochs_trained']}")
  return lines
