"""A real MLflow tracking server on loopback: `mlflow server` with a SQLite backend store and
a local artifact store that it serves (`--artifacts-destination`), for `tfx-gnn mlflow-ui`
and for tests that run the pipeline against MLflow over HTTP.

Clients talk to it only over HTTP (`http://127.0.0.1:PORT`): runs, metrics, the model
registry, and artifacts (uploaded through the server's `mlflow-artifacts:` proxy).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Optional

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
  with socket.socket() as s:
    s.bind((host, 0))
    return s.getsockname()[1]


def command(backend_store_uri: str, artifacts_destination: str, port: int,
            host: str = HOST, workers: int = 1) -> list[str]:
  """The `mlflow server` command line (one worker: this runs beside the pipeline)."""
  mlflow = os.path.join(os.path.dirname(sys.executable), "mlflow")
  return [mlflow, "server", "--backend-store-uri", backend_store_uri,
          "--artifacts-destination", artifacts_destination, "--serve-artifacts",
          "--host", host, "--port", str(port), "--workers", str(workers)]


class Server:
  """`mlflow server` as a child process; `stop()` (or `with`) ends it and its workers."""

  def __init__(self, backend_store_uri: str, artifacts_destination: str,
               port: Optional[int] = None, host: str = HOST, log_file: Optional[str] = None):
    if backend_store_uri.startswith("sqlite:///"):
      os.makedirs(os.path.dirname(backend_store_uri[len("sqlite:///"):]) or ".", exist_ok=True)
    os.makedirs(artifacts_destination, exist_ok=True)
    self.port = port or free_port(host)
    self.url = f"http://{host}:{self.port}"
    self._log = open(log_file, "ab") if log_file else subprocess.DEVNULL
    # A session of its own, so stop() can end the server's worker processes too.
    # MLflow 3's server also starts a job runner and seven task consumers (GenAI features,
    # unused here): off, they would cost more CPU than the tracking server itself.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    self.process = subprocess.Popen(
        command(backend_store_uri, os.path.abspath(artifacts_destination), self.port, host),
        stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, env=env)

  def wait_ready(self, timeout: float = 120.0) -> "Server":
    deadline = time.time() + timeout
    while time.time() < deadline:
      if self.process.poll() is not None:
        raise RuntimeError(f"mlflow server exited with {self.process.returncode} "
                           f"before answering on {self.url}")
      try:
        urllib.request.urlopen(self.url + "/health", timeout=2).close()
        return self
      except (urllib.error.URLError, OSError):
        time.sleep(0.5)
    self.stop()
    raise RuntimeError(f"mlflow server did not answer on {self.url} within {timeout:.0f} s")

  def stop(self) -> None:
    if self.process.poll() is None:
      os.killpg(self.process.pid, signal.SIGTERM)
      try:
        self.process.wait(timeout=15)
      except subprocess.TimeoutExpired:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
    if self._log is not subprocess.DEVNULL:
      self._log.close()

  def __enter__(self) -> "Server":
    return self.wait_ready()

  def __exit__(self, *exc) -> None:
    self.stop()
