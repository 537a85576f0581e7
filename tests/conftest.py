"""Shared fixtures: one tiny pipeline run against a real MLflow server over HTTP, used by the
attribution, run report and MLflow browser tests (the run costs about a minute; once); a private
PostgreSQL server (`postgres`) for ML Metadata and MLflow on PostgreSQL."""
import ast
import dataclasses
import functools
import json
import os

import pytest

import tfx_gnn  # noqa: F401  (first: sets the environment TensorFlow needs, for every test)

HERE = os.path.dirname(__file__)
TINY = os.path.join(HERE, "configs", "tiny.yaml")
# Session fixtures that cost a pipeline run or a server. `make test` runs the suite on every
# core (pytest-xdist, `-n auto --dist loadscope`): a module's tests stay on one worker, so its
# module-scoped runs are made once, and the modules that use one of these share a worker, so
# that each is made once too. (xdist's own `loadgroup` marks are lost on pytest 9:
# pytest-dev/pytest-xdist#1386.)
SHARED_SESSION_FIXTURES = ("served_tiny_run", "postgres")


@functools.cache
def _shared_scopes() -> dict[str, str]:
  """Test module file name -> the first shared session fixture that a test or fixture in it
  takes as a parameter."""
  scopes = {}
  for name in sorted(os.listdir(HERE)):
    if name.startswith("test_") and name.endswith(".py"):
      with open(os.path.join(HERE, name)) as f:
        tree = ast.parse(f.read())
      used = {a.arg for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
              for a in node.args.args}
      shared = [f for f in SHARED_SESSION_FIXTURES if f in used]
      if shared:
        scopes[name] = shared[0]
  return scopes


def _scope_of(nodeid: str) -> str:
  """The scheduling unit of a test: its module, or the shared session fixture it uses."""
  module = nodeid.split("::", 1)[0]
  return _shared_scopes().get(os.path.basename(module), module)


# Each scope's seconds in the last recorded full run (setup + call + teardown of its tests),
# committed as pytest-split commits its `.test_durations`: the scheduler hands out the longest
# scopes first, so that no long module starts last while the other workers sit idle. A scope
# not in the file (a new module) goes first with the longest.
# `make test-durations` records them again.
SCOPE_SECONDS = os.path.join(HERE, "scope_seconds.json")
RECORD_ENV = "TFX_GNN_RECORD_SCOPE_SECONDS"


def _recorded_seconds() -> dict[str, float]:
  try:
    with open(SCOPE_SECONDS) as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}


@pytest.hookimpl(optionalhook=True)  # an environment without pytest-xdist runs serially
def pytest_xdist_make_scheduler(config, log):
  if config.getvalue("dist") != "loadscope":
    return None
  from xdist.scheduler import LoadScopeScheduling
  recorded = _recorded_seconds()
  unknown = max(recorded.values(), default=0.0)

  class LongestScopeFirst(LoadScopeScheduling):
    def _split_scope(self, nodeid):
      return _scope_of(nodeid)

    def _assign_work_unit(self, node):
      # Without recorded seconds: the scope with the most tests (xdist's own order).
      scopes = self.workqueue
      longest = max(scopes, key=lambda s: (recorded.get(s, unknown), len(scopes[s])))
      scopes.move_to_end(longest, last=False)
      super()._assign_work_unit(node)

  return LongestScopeFirst(config, log)


_seconds_by_scope: dict[str, float] = {}


def pytest_runtest_logreport(report):
  if os.environ.get(RECORD_ENV):
    scope = _scope_of(report.nodeid)
    _seconds_by_scope[scope] = _seconds_by_scope.get(scope, 0.0) + report.duration


def pytest_sessionfinish(session, exitstatus):
  # On the controller (or a serial run), and only for a whole, passing run.
  if (os.environ.get(RECORD_ENV) and not hasattr(session.config, "workerinput")
      and exitstatus == 0 and _seconds_by_scope):
    with open(SCOPE_SECONDS + ".tmp", "w") as f:
      json.dump({k: round(v, 1) for k, v in sorted(_seconds_by_scope.items())}, f, indent=1)
      f.write("\n")
    os.replace(SCOPE_SECONDS + ".tmp", SCOPE_SECONDS)


@dataclasses.dataclass
class ServedRun:
  config: object  # pipelines.config.Config
  summary: dict  # tfx_gnn.components.lineage.summarize of the run
  server: object  # pipelines.mlflow_server.Server
  root: str


@pytest.fixture(scope="session")
def served_tiny_run(tmp_path_factory):
  """`mlflow server` on a free loopback port (SQLite backend, served artifact store), and the
  tiny pipeline run once against it over HTTP. The server is stopped at the end."""
  from tfx_gnn.pipelines import config as config_lib
  import mlflow_template
  from tfx_gnn.pipelines import local_runner, mlflow_server
  root = tmp_path_factory.mktemp("served")
  mlflow_template.copy_to(root / "mlflow-server" / "mlflow.db")  # MLflow's tables made once
  server = mlflow_server.Server(f"sqlite:///{root}/mlflow-server/mlflow.db",
                                str(root / "mlflow-server" / "artifacts"),
                                log_file=str(root / "mlflow-server.log"))
  try:
    server.wait_ready()
    config = config_lib.load_config(TINY, {"pipeline": {"root": str(root / "run")},
                                           "mlflow": {"tracking_uri": server.url}})
    summary = local_runner.run(config)
    yield ServedRun(config, summary, server, str(root))
  finally:
    server.stop()


@pytest.fixture(scope="session")
def postgres():
  """A private PostgreSQL server on a free loopback port, with password authentication
  (tests/postgres_server.py); stopped and removed at the end of the session."""
  import postgres_server
  server = postgres_server.Server().start()
  try:
    yield server
  finally:
    server.stop()
