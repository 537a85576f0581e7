"""An empty MLflow SQLite store at MLflow's current schema, made once per test process, for
pipeline runs (and servers) on fresh roots whose tests are not about MLflow's first start:
creating a store runs MLflow's migrations (about 50; seconds on 2 cores, 8 s under load), a
copy takes milliseconds. The run then finds the store as any run after a project's first does.
The first run on an empty store keeps its own tests: the CLI's run (test_cli.py), the
concurrent runs from scratch (test_reliability.py) and `tfx-gnn mlflow-ui` on a fresh root
(test_crash_resume.py)."""
import atexit
import functools
import os
import shutil
import tempfile


@functools.cache
def _template() -> str:
  from tfx_gnn.components import tracking
  directory = tempfile.mkdtemp(prefix="tfx-gnn-mlflow-template-")
  atexit.register(shutil.rmtree, directory, True)
  path = os.path.join(directory, "mlflow.db")
  tracking.client(f"sqlite:///{path}").search_experiments()  # creates the tables
  return path


def copy_to(path) -> None:
  """The migrated store at `path` (a SQLite file), unless one is there already."""
  if not os.path.exists(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    shutil.copyfile(_template(), path)


def copy_into(config) -> None:
  """The migrated store where `config` tracks by default (`<root>/mlflow.db`), unless the
  config names another tracking URI."""
  if config.mlflow.tracking_uri is None:
    copy_to(os.path.join(config.root, "mlflow.db"))
