"""Security: no code execution from user-supplied files, paths that stay inside the pipeline
root, secrets masked wherever they are shown. (The MLflow server's loopback binding and the
absence of secrets in a real run's logs, ML Metadata and MLflow are in test_crash_resume.)"""
import ast
import logging
import os

import pytest

from tfx_gnn.components import secrets
from tfx_gnn.pipelines import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCANNED = ("components", "pipelines", "tfx_gnn", "tests")

# Modules whose loaders run code from the data they read.
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "marshal", "shelve", "cloudpickle",
                  "joblib"}
UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}
UNSAFE_ATTRIBUTES = {  # module alias -> attribute
    ("yaml", "load"), ("yaml", "load_all"), ("yaml", "unsafe_load"), ("yaml", "full_load"),
    ("yaml", "Loader"), ("yaml", "UnsafeLoader"), ("yaml", "FullLoader"),
    ("pd", "read_pickle"), ("pandas", "read_pickle"), ("torch", "load"), ("os", "system"),
    ("os", "popen"),
}
# Documented exceptions: (file, what) -> why it is safe. Empty today.
ALLOWED: dict[tuple[str, str], str] = {}


def _python_files():
  for top in SCANNED:
    for parent, _, files in os.walk(os.path.join(REPO, top)):
      for name in files:
        if name.endswith(".py"):
          yield os.path.join(parent, name)


def unsafe_uses(source: str) -> list[tuple[int, str]]:
  """(line, what) for each construct that could run code from data."""
  found = []
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      found += [(node.lineno, f"import {a.name}") for a in node.names
                if a.name.split(".")[0] in UNSAFE_MODULES]
    elif isinstance(node, ast.ImportFrom) and node.module:
      if node.module.split(".")[0] in UNSAFE_MODULES:
        found.append((node.lineno, f"from {node.module} import"))
      if node.module == "yaml":
        found += [(node.lineno, f"from yaml import {a.name}") for a in node.names
                  if ("yaml", a.name) in UNSAFE_ATTRIBUTES]
    elif isinstance(node, ast.Call):
      if isinstance(node.func, ast.Name) and node.func.id in UNSAFE_CALLS:
        found.append((node.lineno, f"{node.func.id}()"))
      for keyword in node.keywords:
        if keyword.arg == "allow_pickle" and not (
            isinstance(keyword.value, ast.Constant) and keyword.value.value is False):
          found.append((node.lineno, "allow_pickle"))
        if keyword.arg == "shell" and not (
            isinstance(keyword.value, ast.Constant) and keyword.value.value is False):
          found.append((node.lineno, "shell=True"))
    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
      if (node.value.id, node.attr) in UNSAFE_ATTRIBUTES:
        found.append((node.lineno, f"{node.value.id}.{node.attr}"))
  return found


def test_the_scanner_finds_each_unsafe_construct():
  bad = """
import pickle
from dill import loads
import yaml
from yaml import unsafe_load
yaml.load(open("c.yaml"), Loader=yaml.Loader)
eval("1+1")
exec("x = 1")
import numpy as np
np.load("x.npy", allow_pickle=True)
import subprocess
subprocess.run("ls", shell=True)
import os
os.system("ls")
"""
  whats = [what for _, what in unsafe_uses(bad)]
  for expected in ("import pickle", "from dill import", "from yaml import unsafe_load",
                   "yaml.load", "yaml.Loader", "eval()", "exec()", "allow_pickle",
                   "shell=True", "os.system"):
    assert expected in whats, (expected, whats)
  assert unsafe_uses("import yaml\nyaml.safe_load(open('c.yaml'))\n") == []


def test_no_code_runs_from_user_files():
  files = list(_python_files())
  assert len(files) > 20
  problems = []
  for path in files:
    with open(path) as f:
      source = f.read()
    rel = os.path.relpath(path, REPO)
    for line, what in unsafe_uses(source):
      if (rel, what) not in ALLOWED and rel != "tests/test_security.py":
        problems.append(f"{rel}:{line}: {what}")
  assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- paths
def _config(**sections):
  raw = {"pipeline": {"root": "/tmp/tfx-gnn-root"},
         "data": {"synthetic": {"num_papers": 10}},
         "sampling": {"fanouts": {"cites": 2}}}
  return config_lib.parse_config(config_lib.merge(raw, sections))


@pytest.mark.parametrize("key, section", [
    ("push.destination", {"push": {"destination": "../elsewhere"}}),
    ("push.destination", {"push": {"destination": "serving/../../etc"}}),
    ("pipeline.metadata", {"pipeline": {"root": "/tmp/tfx-gnn-root",
                                        "metadata": "../../metadata.sqlite"}}),
])
def test_paths_cannot_escape_the_pipeline_root(key, section):
  with pytest.raises(config_lib.ConfigError) as info:
    _config(**section)
  assert key in str(info.value) and "escapes pipeline.root" in str(info.value)


def test_paths_inside_the_root_and_absolute_paths_are_kept():
  config = _config(push={"destination": "models/./serving"},
                   pipeline={"root": "/tmp/tfx-gnn-root", "metadata": "meta/m.sqlite"})
  assert config.serving_dir == "/tmp/tfx-gnn-root/models/./serving"
  assert config.metadata_path == "/tmp/tfx-gnn-root/meta/m.sqlite"
  # An absolute path is an explicit choice (e.g. a shared serving volume).
  assert _config(push={"destination": "/srv/models"}).serving_dir == "/srv/models"


# ---------------------------------------------------------------- secrets
def test_tracking_uri_credentials_are_kept_out_of_the_pipeline(monkeypatch):
  monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
  monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
  raw = "https://alice:s3cr%40t@mlflow.example.com:8443/root?token=abc123&x=1"
  config = _config(mlflow={"tracking_uri": raw})
  assert config.tracking_uri == "https://mlflow.example.com:8443/root?x=1"
  secrets.export_credentials(raw)
  assert os.environ["MLFLOW_TRACKING_USERNAME"] == "alice"
  assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "s3cr@t"
  # What the pipeline carries (component parameters, stored in ML Metadata) has no secret.
  from tfx_gnn.pipelines import pipeline
  for component in pipeline.create_components(config, config.root):
    text = repr(component.exec_properties)
    assert "s3cr" not in text and "abc123" not in text, component.id


def test_redact_masks_passwords_tokens_and_secret_env_values(monkeypatch):
  monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-secret-value")
  text = ("server http://bob:hunter2@host:5000/x?access_token=zzz9&page=2 "
          "header Bearer tok-secret-value")
  clean = secrets.redact(text)
  assert "hunter2" not in clean and "zzz9" not in clean and "tok-secret-value" not in clean
  assert "http://bob:***@host:5000/x?access_token=***&page=2" in clean


def test_log_records_are_redacted(monkeypatch, caplog):
  monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-in-a-log-line")
  secrets.install_log_redaction()
  with caplog.at_level(logging.INFO):
    logging.getLogger("some.library").warning("connecting to %s with %s",
                                              "http://u:pw-in-log@h", "tok-in-a-log-line")
  assert "pw-in-log" not in caplog.text and "tok-in-a-log-line" not in caplog.text
  assert "http://u:***@h" in caplog.text


def test_cli_check_never_prints_credentials(tmp_path, capsys):
  from tfx_gnn.pipelines import cli
  path = tmp_path / "c.yaml"
  path.write_text("data: {synthetic: {num_papers: 10}}\nsampling: {fanouts: {cites: 2}}\n"
                  "mlflow: {tracking_uri: 'http://alice:pw-in-config@127.0.0.1:5000'}\n")
  assert cli.main(["check", str(path)]) == 0
  out = capsys.readouterr().out
  assert "pw-in-config" not in out and "http://alice:***@127.0.0.1:5000" in out


def test_mlflow_server_command_binds_loopback_by_default(tmp_path):
  from tfx_gnn.pipelines import cli, mlflow_server
  args = cli.build_parser().parse_args(["mlflow-ui", "c.yaml"])
  assert args.host == "127.0.0.1"
  command = mlflow_server.command(f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path), 5000)
  assert command[command.index("--host") + 1] == "127.0.0.1"
  assert command[command.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path}/mlflow.db"
