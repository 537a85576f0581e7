"""MLflow tracking through MlflowClient (no global `mlflow.start_run` state, so several
components and runs can share one process)."""
from __future__ import annotations

import contextlib
import fcntl
import os
import urllib.error
import urllib.request
from typing import Iterator, Optional

import mlflow
from mlflow.tracking import MlflowClient

from tfx_gnn.components import databases


class TrackingError(RuntimeError):
  """MLflow could not be reached or refused a write; the run fails rather than lose metrics."""


# Seconds to wait for a tracking server's /health before giving up on it.
PROBE_TIMEOUT_S = 5.0


def check_reachable(tracking_uri: str, timeout: float = PROBE_TIMEOUT_S) -> None:
  """Fails fast, naming the URI, when an http(s) tracking server does not answer.

  MlflowClient's REST calls retry with exponential backoff (minutes) on a refused or
  timed-out connection; one short probe of the server's `/health` endpoint turns that into
  an immediate TrackingError. Any HTTP answer (even 404 behind a proxy) counts as reachable.
  """
  if not tracking_uri.startswith(("http://", "https://")):
    return
  url = tracking_uri.rstrip("/") + "/health"
  try:
    urllib.request.urlopen(url, timeout=timeout).close()
  except urllib.error.HTTPError:
    return
  except (urllib.error.URLError, OSError, ValueError) as e:
    reason = getattr(e, "reason", e)
    raise TrackingError(f"MLflow tracking server {tracking_uri} (mlflow.tracking_uri) is not "
                        f"reachable: GET {url} failed: {reason}") from None


def client(tracking_uri: str) -> MlflowClient:
  check_reachable(tracking_uri)
  if tracking_uri.startswith("sqlite:///"):
    os.makedirs(os.path.dirname(tracking_uri[len("sqlite:///"):]) or ".", exist_ok=True)
  return MlflowClient(tracking_uri=tracking_uri)


def default_artifact_location(tracking_uri: str) -> Optional[str]:
  """Artifacts of a `sqlite:///DIR/mlflow.db` store go to `DIR/mlartifacts/` (MLflow's own
  default is `./mlruns` under whatever the working directory is); a server decides itself."""
  if tracking_uri.startswith("sqlite:///"):
    return os.path.join(os.path.dirname(os.path.abspath(tracking_uri[len("sqlite:///"):])),
                        "mlartifacts")
  return None


def experiment_id(mlflow_client: MlflowClient, name: str,
                  artifact_location: Optional[str] = None) -> str:
  experiment = mlflow_client.get_experiment_by_name(name)
  if experiment is not None:
    return experiment.experiment_id
  try:
    return mlflow_client.create_experiment(name, artifact_location=artifact_location)
  except mlflow.exceptions.MlflowException:
    # Created meanwhile by a concurrent run.
    return mlflow_client.get_experiment_by_name(name).experiment_id


PARAMS_PER_BATCH = 100  # MLflow's limit of params per log_batch request


# On Kubeflow the pipeline run's id, which TFX's container entrypoint does not pass to the
# executor: the compiled file sets it from the pod's `pipeline/runid` label (kubeflow_runner).
KFP_RUN_ID_ENV = "KFP_RUN_ID"


def pipeline_run_id(executor_context) -> Optional[str]:
  """The pipeline run's id: TFX's (LocalDagRunner), else Kubeflow's, else None."""
  return (getattr(executor_context, "pipeline_run_id", None) or
          os.environ.get(KFP_RUN_ID_ENV) or None)


def run_name(executor_context, component: str, pipeline: Optional[str] = None) -> str:
  """`<pipeline>/<pipeline run id>/<component>`: which pipeline and run an MLflow run belongs
  to, from the TFX executor's context (Kubeflow's container entrypoint gives no pipeline:
  then `pipeline`)."""
  info = getattr(executor_context, "pipeline_info", None)
  pipeline = info.id if info is not None and info.id else (pipeline or "no-pipeline")
  return f"{pipeline}/{pipeline_run_id(executor_context) or 'no-run-id'}/{component}"


def pipeline_tags(executor_context) -> dict[str, str]:
  info = getattr(executor_context, "pipeline_info", None)
  tags = {}
  if info is not None and info.id:
    tags["tfx.pipeline"] = info.id
  run_id = pipeline_run_id(executor_context)
  if run_id:
    tags["tfx.pipeline_run_id"] = run_id
  return tags


def sampling_params(sampling: dict) -> dict:
  """The sampling settings as flat `sampling.*` params (engine, mode, hops, fanouts per edge
  set, seed, batch size; the SamplingSpec's text when one was given instead of fanouts)."""
  return flatten("sampling", {k: v for k, v in sampling.items() if v is not None
                              and k != "spec_file"})


@contextlib.contextmanager
def _store_lock(tracking_uri: str) -> Iterator[None]:
  """Serializes the creation of MLflow's tables: two processes running its migrations on one
  empty database at once fail ("Online migration expected to match one row")."""
  if databases.is_postgres(tracking_uri):
    with databases.advisory_lock(tracking_uri, "tfx-gnn mlflow tables"):
      yield
  elif tracking_uri.startswith("sqlite:///"):
    path = tracking_uri[len("sqlite:///"):] + ".lock"
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
      fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes (or the process ends)
      yield
  else:
    yield  # a tracking server makes its own tables


def prepare(tracking_uri: str, experiment: str, artifact_location: Optional[str]) -> str:
  """Before a run: MLflow's tables (created once, by one process at a time) and the experiment
  (its artifacts under `artifact_location` unless a server decides); returns its id."""
  if databases.is_postgres(tracking_uri):
    databases.probe(tracking_uri, "mlflow.tracking_uri")  # fails fast, saying why
  try:
    with _store_lock(tracking_uri):
      mlflow_client = client(tracking_uri)
      return experiment_id(mlflow_client, experiment,
                           default_artifact_location(tracking_uri) or artifact_location)
  except (TrackingError, databases.DatabaseError):
    raise
  except Exception as e:
    raise TrackingError(f"MLflow at {tracking_uri} is not usable: {e}") from e


class Run:
  """One MLflow run: params, step metrics, artifacts, then a final status."""

  def __init__(self, tracking_uri: str, experiment: str, run_name: str,
               tags: Optional[dict[str, str]] = None):
    try:
      self.client = client(tracking_uri)
      run = self.client.create_run(
          experiment_id(self.client, experiment, default_artifact_location(tracking_uri)),
          run_name=run_name, tags=tags or {})
    except TrackingError:
      raise  # already names the URI and the cause
    except Exception as e:
      raise TrackingError(f"MLflow at {tracking_uri} is not usable: {e}") from e
    self.run_id = run.info.run_id
    self.tracking_uri = tracking_uri

  @classmethod
  def attach(cls, tracking_uri: str, run_id: str) -> "Run":
    """An existing run (e.g. the trainer's), to add what later components found about its
    model; MLflow accepts metrics and artifacts on a finished run."""
    self = cls.__new__(cls)
    try:
      self.client = client(tracking_uri)
      self.client.get_run(run_id)
    except TrackingError:
      raise
    except Exception as e:
      raise TrackingError(f"MLflow run {run_id} at {tracking_uri} is not usable: {e}") from e
    self.run_id, self.tracking_uri = run_id, tracking_uri
    return self

  def set_tags(self, tags: dict[str, str]) -> None:
    for key, value in tags.items():
      self.client.set_tag(self.run_id, key, str(value))

  def log_artifact(self, local_file: str, artifact_path: Optional[str] = None) -> None:
    self.client.log_artifact(self.run_id, local_file, artifact_path)

  def log_params(self, params: dict) -> None:
    """One `log_batch` call per PARAMS_PER_BATCH params (not one request per param)."""
    from mlflow.entities import Param
    items = [Param(key, str(value)[:6000]) for key, value in params.items()]
    for start in range(0, len(items), PARAMS_PER_BATCH):
      self.client.log_batch(self.run_id, params=items[start:start + PARAMS_PER_BATCH])

  def log_metrics(self, metrics: dict[str, float], step: Optional[int] = None) -> None:
    for key, value in metrics.items():
      self.client.log_metric(self.run_id, key, float(value), step=step or 0)

  def log_artifacts(self, local_dir: str, artifact_path: Optional[str] = None) -> None:
    self.client.log_artifacts(self.run_id, local_dir, artifact_path)

  def finish(self, ok: bool) -> None:
    self.client.set_terminated(self.run_id, "FINISHED" if ok else "FAILED")


def flatten(prefix: str, value) -> dict:
  """{'model': {'units': 64}} -> {'model.units': 64}: MLflow params are flat."""
  if isinstance(value, dict):
    out = {}
    for k, v in value.items():
      out.update(flatten(f"{prefix}.{k}" if prefix else k, v))
    return out
  return {prefix: value}
