"""Executions left RUNNING by a killed run: found, marked FAILED in ML Metadata, their partial
outputs removed, without touching a live run's.

Every `tfx-gnn run` holds a lease for its whole life (`RunLease`): an exclusive `flock` on a
file beside a SQLite database, or a PostgreSQL advisory lock on its own connection. The
kernel or the server releases it when the process ends, however it ends (SIGKILL, OOM, a lost
machine), so an execution whose run holds no lease belongs to a process that is gone.
"""
from __future__ import annotations

import dataclasses
import fcntl
import glob
import os
import shutil
import time

from ml_metadata.proto import metadata_store_pb2

from tfx_gnn.components import databases, lineage, publish

_LOCK_PREFIX = "tfx-gnn run "
_UNFINISHED = (metadata_store_pb2.Execution.NEW, metadata_store_pb2.Execution.RUNNING)


def _lease_file(metadata: str, run_id: str) -> str:
  directory = os.path.join(os.path.dirname(metadata), f".{os.path.basename(metadata)}.runs")
  return os.path.join(directory, run_id.replace(os.sep, "_") + ".lock")


class RunLease:
  """Held by a live run (`with RunLease(metadata, run_id):`)."""

  def __init__(self, metadata: str, run_id: str):
    self._metadata, self._run_id = metadata, run_id
    self._file = self._lease = None

  def __enter__(self) -> "RunLease":
    if databases.is_postgres(self._metadata):
      self._lease = databases.Lease(self._metadata, _LOCK_PREFIX + self._run_id)
    else:
      path = _lease_file(self._metadata, self._run_id)
      os.makedirs(os.path.dirname(path), exist_ok=True)
      self._file = open(path, "w")
      fcntl.flock(self._file, fcntl.LOCK_EX)
    return self

  def __exit__(self, *exc) -> None:
    if self._lease is not None:
      self._lease.release()
    if self._file is not None:
      os.remove(self._file.name)
      self._file.close()


def run_is_live(metadata: str, run_id: str) -> bool:
  """Whether the process of pipeline run `run_id` still holds its lease."""
  if databases.is_postgres(metadata):
    return databases.held_elsewhere(metadata, _LOCK_PREFIX + run_id)
  path = _lease_file(metadata, run_id)
  try:
    with open(path) as f:
      try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        return True
      fcntl.flock(f, fcntl.LOCK_UN)
  except FileNotFoundError:
    pass
  return False


@dataclasses.dataclass
class Collected:
  run_id: str
  component: str
  execution_id: int
  removed: list[str]  # partial output directories


def _partial_outputs(pipeline_root: str, component: str, execution_id: int,
                     live_uris: set[str]) -> list[str]:
  """The execution's output directories (`<root>/<Component>/<key>/<id>`, made by TFX before
  the executor ran) and their staging twins (`.<id>.incomplete`), unless LIVE."""
  base = os.path.join(pipeline_root, glob.escape(component), "*")
  found = glob.glob(os.path.join(base, str(execution_id))) + glob.glob(
      os.path.join(base, "." + str(execution_id) + "*" + publish.STAGING_SUFFIX))
  return sorted(p for p in found if os.path.abspath(p) not in live_uris)


def collect(store, metadata: str, pipeline_name: str, pipeline_root: str,
            dry_run: bool = False) -> list[Collected]:
  """Marks every RUNNING execution of `pipeline_name` whose run is no longer live as FAILED
  (its pending output artifacts ABANDONED) and removes its partial output directories.
  Returns what it collected (`dry_run`: what it would)."""
  out = []
  unfinished = [e.id for e in store.get_executions() if e.last_known_state in _UNFINISHED]
  if not unfinished:
    return out  # the usual case: one query
  run_type = store.get_context_type("pipeline_run").id
  runs = {c.id: c for e in unfinished for c in store.get_contexts_by_execution(e)
          if c.type_id == run_type}
  # This pipeline's runs only (TFX makes each run's context a child of its pipeline's).
  run_ids = sorted(c.name for c in runs.values()
                   if any(p.name == pipeline_name
                          for p in store.get_parent_contexts_by_context(c.id)))
  live_uris = {os.path.abspath(a.uri) for a in store.get_artifacts()
               if a.state == metadata_store_pb2.Artifact.LIVE}
  for run_id in run_ids:
    if run_is_live(metadata, run_id):
      continue
    records = [r for r in lineage.executions(store, run_id) if r.id in unfinished]
    for record in records:
      removed = _partial_outputs(pipeline_root, record.component, record.id, live_uris)
      out.append(Collected(run_id, record.component, record.id, removed))
      if dry_run:
        continue
      [execution] = store.get_executions_by_id([record.id])
      execution.last_known_state = metadata_store_pb2.Execution.FAILED
      execution.custom_properties["__tfx_gnn_collected__"].string_value = (
          f"its process was gone; marked FAILED by tfx-gnn gc at "
          f"{time.strftime('%Y-%m-%dT%H:%M:%S')}")
      outputs = [a for a in store.get_artifacts_by_id([ref.id for ref in record.outputs])
                 if a.state in (metadata_store_pb2.Artifact.PENDING,
                                metadata_store_pb2.Artifact.UNKNOWN)]
      for artifact in outputs:
        artifact.state = metadata_store_pb2.Artifact.ABANDONED
      if outputs:
        store.put_artifacts(outputs)
      store.put_executions([execution])
      for path in removed:
        shutil.rmtree(path, ignore_errors=True)
  return out
