"""The `tfx-gnn` command's exit: the status, the flushed output and the atexit handlers survive
skipping the interpreter's teardown (`cli.exit_without_teardown`)."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A stand-in for the handlers libraries register (logging, MLflow, temporary directories):
# each must still run, after the command's output.
PROGRAM = """
import atexit, sys
from tfx_gnn.pipelines import cli
marker = sys.argv[1]
def mark():
  with open(marker, "w") as f:
    f.write("atexit ran")
atexit.register(mark)
sys.argv = ["tfx-gnn"] + sys.argv[2:]
cli.entry_point()
"""


def _tfx_gnn(tmp_path, *args):
  marker = tmp_path / "marker"
  proc = subprocess.run([sys.executable, "-c", PROGRAM, str(marker), *args], cwd=REPO,
                        capture_output=True, text=True, timeout=120,
                        env={**os.environ, "TF_USE_LEGACY_KERAS": "1"})
  return proc, marker.read_text() if marker.exists() else ""


def test_success_flushes_piped_stdout_and_runs_atexit(tmp_path):
  proc, marker = _tfx_gnn(tmp_path, "check", os.path.join(REPO, "pipelines/configs/demo.yaml"))
  assert proc.returncode == 0, proc.stderr
  assert "demo" in proc.stdout  # block-buffered (a pipe), so only a flush gets it out
  assert marker == "atexit ran"


def test_config_error_exits_2_with_the_message(tmp_path):
  proc, marker = _tfx_gnn(tmp_path, "check", str(tmp_path / "missing.yaml"))
  assert proc.returncode == 2
  assert "config file not found" in proc.stderr and "missing.yaml" in proc.stderr
  assert marker == "atexit ran"


def test_usage_error_exits_2(tmp_path):
  proc, marker = _tfx_gnn(tmp_path, "no-such-command")
  assert proc.returncode == 2 and "invalid choice" in proc.stderr
  assert marker == "atexit ran"


@pytest.mark.slow  # a child that imports TFX and TensorFlow and builds the demo pipeline
def test_tfx_components_init_is_deferred_but_still_works():
  """The runner no longer loads every TFX component (keras_tuner, Keras 3) nor TensorFlow
  Model Analysis (TFX's standard component specs) at start-up, and code that asks
  `tfx.components` for a component still gets it."""
  program = """
import sys
from tfx_gnn.pipelines import local_runner
from tfx_gnn.pipelines.config import load_config
from tfx_gnn.pipelines.pipeline import create_pipeline
create_pipeline(load_config("pipelines/configs/demo.yaml", {}))
print("keras_tuner" in sys.modules, "keras" in sys.modules,
      "tensorflow_model_analysis" in sys.modules)
import tfx.components
from tfx.components import Evaluator
print(Evaluator.__name__, tfx.components.Pusher.__name__, "keras_tuner" in sys.modules)
"""
  proc = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True,
                        text=True, timeout=300, env={**os.environ, "TF_USE_LEGACY_KERAS": "1"})
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.split("\n")[:2] == ["False False False", "Evaluator Pusher True"]
