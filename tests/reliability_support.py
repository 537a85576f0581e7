"""Helpers for the tests that run `tfx-gnn` as real processes (crash/resume, concurrency):
start a run, wait for a moment in it by watching ML Metadata or the file system, kill it."""
from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time
from typing import Callable, Optional

import yaml

from tfx_gnn.components import lineage

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(REPO, "tests", "configs", "tiny.yaml")


def write_config(path: str, **sections) -> str:
  """tiny.yaml with `sections` merged in, written to `path`."""
  from tfx_gnn.pipelines import config as config_lib
  with open(TINY) as f:
    raw = yaml.safe_load(f)
  with open(path, "w") as f:
    yaml.safe_dump(config_lib.merge(raw, sections), f)
  return path


class Run:
  """`tfx-gnn run CONFIG` in its own process; its output goes to `log`."""

  def __init__(self, config_path: str, log: str, *extra: str, env: Optional[dict] = None):
    self.log = log
    self._out = open(log, "w")
    self.proc = subprocess.Popen(
        [sys.executable, "-m", "tfx_gnn.pipelines.cli", "run", config_path, *extra], cwd=REPO,
        stdout=self._out, stderr=subprocess.STDOUT,
        env={**os.environ, "TF_USE_LEGACY_KERAS": "1", **(env or {})})

  def output(self) -> str:
    if not self._out.closed:
      self._out.flush()
    with open(self.log) as f:
      return f.read()

  def wait(self, timeout: float = 1800) -> int:
    try:
      return self.proc.wait(timeout)
    finally:
      self._out.close()

  def kill_when(self, condition: Callable[[], bool], what: str, timeout: float = 1800) -> None:
    """SIGKILLs the run the moment `condition()` holds (polled); fails if the run ends or
    the timeout passes first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
      if self.proc.poll() is not None:
        raise AssertionError(f"the run ended (rc {self.proc.returncode}) before {what}:\n"
                             + self.output()[-3000:])
      if condition():
        self.proc.send_signal(signal.SIGKILL)
        self.wait()
        return
      time.sleep(0.1)
    self.proc.kill()
    self.wait()
    raise AssertionError(f"timed out waiting for {what}")

  def kill(self) -> None:
    if self.proc.poll() is None:
      self.proc.kill()
    self.wait()


def execution_state(metadata_path: str, pipeline_name: str, component: str) -> Optional[str]:
  """The component's execution state in the latest run, read from ML Metadata (None when the
  database, the run or the execution is not there yet)."""
  if not os.path.exists(metadata_path):
    return None
  try:
    store = lineage.open_store(metadata_path)
    run_id = lineage.latest_run_id(store, pipeline_name)
    if run_id is None:
      return None
    states = {r.component: r.state for r in lineage.executions(store, run_id)}
  except Exception:
    return None  # being created or locked by the writer: look again
  return states.get(component)


def files_under(pattern: str) -> list[str]:
  return [p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)]


def run_states(store, pipeline_name: str) -> list[dict[str, str]]:
  """Per run (oldest first): component -> execution state (the resolver left out)."""
  return [{r.component: r.state for r in lineage.executions(store, run_id)
           if not r.component.endswith("_resolver")}
          for run_id in lineage.run_ids(store, pipeline_name)]


def serving_versions(serving_dir: str) -> list[str]:
  if not os.path.isdir(serving_dir):
    return []
  return sorted(n for n in os.listdir(serving_dir) if not n.startswith("."))
