"""Shared fixtures: one tiny pipeline run against a real MLflow server over HTTP, used by the
attribution, run report and MLflow browser tests (the run costs about a minute; once); a private
PostgreSQL server (`postgres`) for ML Metadata and MLflow on PostgreSQL."""
import dataclasses
import os

import pytest

import tfx_gnn  # noqa: F401  (first: sets the environment TensorFlow needs, for every test)

HERE = os.path.dirname(__file__)
TINY = os.path.join(HERE, "configs", "tiny.yaml")


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
