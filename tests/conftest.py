"""Shared fixtures: one tiny pipeline run against a real MLflow server over HTTP, used by the
attribution, run report and MLflow browser tests (the run costs about a minute; once); a private
PostgreSQL server (`postgres`) for ML Metadata and MLflow on PostgreSQL."""
import ast
import dataclasses
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


@pytest.hookimpl(optionalhook=True)  # an environment without pytest-xdist runs serially
def pytest_xdist_make_scheduler(config, log):
  if config.getvalue("dist") != "loadscope":
    return None
  from xdist.scheduler import LoadScopeScheduling
  shared = _shared_scopes()

  class ModuleScheduling(LoadScopeScheduling):
    def _split_scope(self, nodeid):
      module = nodeid.split("::", 1)[0]
      return shared.get(os.path.basename(module), module)

  return ModuleScheduling(config, log)


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
