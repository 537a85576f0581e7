"""What `tfx-gnn` prints on stderr: its own lines (progress, warnings, errors), and the
libraries' warnings only with `--verbose`.

Filtered at the source where the libraries allow it: Python loggers and `warnings` filters,
`TF_CPP_MIN_LOG_LEVEL` for TensorFlow's C++ logs, `MLFLOW_LOGGING_LEVEL` for MLflow's own
handler. What no setting reaches is filtered by line: the C++ lines that TensorFlow writes while
it loads, before absl's log is initialized (oneDNN, the CUDA driver probe; known TensorFlow
bug), and the failed `cuInit` of a machine without a GPU. A forked filter process forwards
every other line of the process's stderr (and its children's), so nothing else is lost, not
even the last words of a crash.
"""
from __future__ import annotations

import logging
import os
import re
import signal
import sys
import time
import warnings
from typing import Callable

import tfx_gnn
from tfx_gnn import components as _components
from tfx_gnn import pipelines as _pipelines

# Where our code lives: a record logged from there (through absl or the standard library) is
# one of our own lines.
OWN_DIRS = tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep
                 for m in (tfx_gnn, _components, _pipelines))

# C++ log lines in absl's format (`I0000 00:00:1796314284.713973   11226 port.cc:153] ...`) of
# severity INFO or WARNING, absl's note about them, CPU-feature continuation lines, and the
# probes of a machine without CUDA.
_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.]+:\d+\] .*"
    r"|E\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.]+:\d+\] .*(cuInit|Unable to register cu\w+ factory).*"
    r"|To enable the following instructions: .* with the appropriate compiler flags\.")


def is_noise(line: str) -> bool:
  return _NOISE.fullmatch(line.rstrip("\r\n")) is not None


def is_own(record: logging.LogRecord) -> bool:
  return record.name.startswith("tfx_gnn") or record.pathname.startswith(OWN_DIRS)


class _Lines(logging.Filter):
  """Our records from `own_level` up; the libraries' from WARNING with --verbose, else only
  their errors."""

  def __init__(self, own_level: int, verbose: bool):
    super().__init__()
    self.own_level, self.verbose = own_level, verbose

  def filter(self, record):
    if is_own(record):
      return record.levelno >= self.own_level
    return record.levelno >= (logging.WARNING if self.verbose else logging.ERROR)


class _Format(logging.Formatter):

  def format(self, record):
    if is_own(record):
      prefix = "" if record.levelno < logging.WARNING else record.levelname.lower() + ": "
      return f"tfx-gnn: {prefix}{record.getMessage()}"
    return f"{record.levelname}:{record.name}:{record.getMessage()}"


def setup(*, verbose: bool = False, quiet: bool = False) -> Callable[[], None]:
  """Configures logging, warnings and the stderr filter for one command, before TensorFlow is
  imported; returns what to call at exit (it flushes the filter)."""
  handler = logging.StreamHandler(sys.stderr)
  handler.addFilter(_Lines(logging.WARNING if quiet else logging.INFO, verbose))
  handler.setFormatter(_Format())
  root = logging.getLogger()
  root.handlers = [handler]  # TensorFlow adds its own handler only when the root has none
  root.setLevel(logging.WARNING)
  # Our own INFO lines (progress), and TFX's through absl (which component runs). Through
  # absl's verbosity flag, not its logger's level: TensorFlow silences absl for a moment while
  # it saves a model, then restores the flag's value.
  from absl import logging as absl_logging
  logging.getLogger("tfx_gnn").setLevel(logging.INFO)
  absl_logging.set_verbosity(absl_logging.INFO)
  if verbose:
    return lambda: None
  os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
  os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
  # MLflow's progress bars while the Pusher registers the model.
  os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
  # Libraries warn through ours too (a deprecated call of theirs, attributed to our caller).
  warnings.simplefilter("ignore")
  return _filter_stderr()


def _filter_stderr() -> Callable[[], None]:
  """Sends fd 2 through a forked filter process that drops `is_noise` lines; returns the
  function that restores fd 2 and waits (briefly) for the filter to write everything."""
  sys.stdout.flush()
  sys.stderr.flush()
  read_fd, write_fd = os.pipe()
  pid = os.fork()
  if pid == 0:  # the filter: its fd 2 is the original stderr
    try:
      signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the command; drain on
      os.close(write_fd)
      with os.fdopen(read_fd, "rb") as lines:
        for line in lines:
          if not is_noise(line.decode("utf-8", "replace")):
            os.write(2, line)
    finally:
      os._exit(0)
  os.close(read_fd)
  saved = os.dup(2)
  os.dup2(write_fd, 2)
  os.close(write_fd)

  def restore(timeout_s: float = 2.0) -> None:
    sys.stderr.flush()
    os.dup2(saved, 2)  # our last copy of the pipe's write end goes: the filter sees EOF
    os.close(saved)
    deadline = time.monotonic() + timeout_s  # a child that outlives us may hold the pipe
    while time.monotonic() < deadline:
      if os.waitpid(pid, os.WNOHANG)[0]:
        return
      time.sleep(0.01)

  return restore

