"""The `tfx-gnn` command line.

  tfx-gnn run CONFIG [--set KEY=VALUE ...]   run the pipeline locally (LocalDagRunner)
  tfx-gnn compile CONFIG [-o FILE]           a Kubeflow Pipelines v2 pipeline file
  tfx-gnn check CONFIG                      validate a config file, print it with defaults
  tfx-gnn runs CONFIG                       list the pipeline's runs recorded in ML Metadata
  tfx-gnn lineage CONFIG [--run RUN_ID]     a run's executions and artifacts (default: latest)
  tfx-gnn summary CONFIG [--run RUN_ID]     a run's outcome as JSON
  tfx-gnn verify CONFIG                     check that every LIVE artifact has its files and
                                            that no killed run left executions RUNNING
  tfx-gnn gc CONFIG                         mark killed runs' RUNNING executions FAILED and
                                            remove their partial outputs
  tfx-gnn mlflow-ui CONFIG [--host H] [--port P]  the MLflow UI of the config's runs (loopback)
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import sys
import time
import traceback

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before anything imports TensorFlow
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's C++ INFO lines are noise here

import yaml  # pylint: disable=g-import-not-at-top,wrong-import-position

from tfx_gnn.components import databases, secrets  # pylint: disable=wrong-import-position
from tfx_gnn.pipelines import config as config_lib  # pylint: disable=wrong-import-position


def parse_overrides(items: list[str]) -> dict:
  """`--set trainer.epochs=3` -> {"trainer": {"epochs": 3}} (values parsed as YAML)."""
  out: dict = {}
  for item in items or []:
    if "=" not in item:
      raise config_lib.ConfigError(f"--set {item!r}: expected KEY=VALUE")
    key, value = item.split("=", 1)
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
      node = node.setdefault(part, {})
    node[parts[-1]] = yaml.safe_load(value)
  return out


def _load(args) -> config_lib.Config:
  config = config_lib.load_config(args.config, parse_overrides(getattr(args, "set", None)))
  if databases.is_postgres(config.pipeline.metadata):
    secrets.export_credentials(config.pipeline.metadata)  # its password, if any: PGPASSWORD
  return config


# A run that lost a race for a database lock to a concurrent run: nothing is corrupted (SQLite
# rolls the write back) and rerunning reuses every component that finished.
RETRYABLE_MARKERS = ("database is locked", "database table is locked", "database is busy")
EXIT_RETRYABLE = 75  # EX_TEMPFAIL


def is_retryable(error: BaseException) -> bool:
  while error is not None:
    if any(m in str(error).lower() for m in RETRYABLE_MARKERS):
      return True
    error = error.__cause__ or error.__context__
  return False


def cmd_run(args) -> int:
  from tfx_gnn.pipelines import local_runner  # pylint: disable=g-import-not-at-top
  config = _load(args)
  start = time.time()
  try:
    summary = local_runner.run(config)
  except Exception as e:  # pylint: disable=broad-except
    if is_retryable(e):
      print(f"tfx-gnn: the run failed on a busy database, most likely a concurrent run of the "
            f"same pipeline: {type(e).__name__}: {secrets.redact(str(e))[:500]}\n"
            f"this is retryable: retry `tfx-gnn run {args.config}`; the components that "
            f"finished are reused from the cache. Nothing was corrupted or half-published.",
            file=sys.stderr)
      return EXIT_RETRYABLE
    if not type(e).__module__.startswith("tfx_gnn."):
      raise  # not one of ours: keep the traceback
    # Our errors (bad tables, anomalies, bad sampling spec, MLflow down) explain themselves.
    print(f"tfx-gnn: the run failed: {type(e).__name__}: {secrets.redact(str(e))}\n"
          f"nothing downstream ran; nothing was pushed. "
          f"`tfx-gnn lineage {args.config}` shows what did.", file=sys.stderr)
    return 1
  summary["wall_time_s"] = round(time.time() - start, 1)
  print(secrets.redact(local_runner.format_summary(config, summary)))
  return 0


def cmd_compile(args) -> int:
  from tfx_gnn.pipelines import kubeflow_runner  # pylint: disable=g-import-not-at-top
  path = kubeflow_runner.compile_pipeline(_load(args), args.output)
  spec = kubeflow_runner.load_pipeline_spec(path)
  print(f"wrote {path}: {len(spec.root.dag.tasks)} tasks "
        f"({', '.join(sorted(spec.root.dag.tasks))})")
  return 0


def cmd_check(args) -> int:
  print(secrets.redact(yaml.safe_dump(config_lib.to_dict(_load(args)), sort_keys=False)))
  return 0


def _store(args):
  from tfx_gnn.components import lineage  # pylint: disable=g-import-not-at-top
  config = _load(args)
  return config, lineage, lineage.open_store(config.metadata_path)


def cmd_runs(args) -> int:
  config, lineage, store = _store(args)
  for run_id in lineage.run_ids(store, config.pipeline.name):
    states = {r.component: r.state for r in lineage.executions(store, run_id)}
    print(run_id, " ".join(f"{c}={s}" for c, s in states.items()))
  return 0


def _run_id(args, lineage, store, config) -> str:
  run_id = args.run or lineage.latest_run_id(store, config.pipeline.name)
  if run_id is None:
    raise SystemExit(f"no runs of pipeline {config.pipeline.name!r} in {config.metadata_path}")
  return run_id


def cmd_lineage(args) -> int:
  config, lineage, store = _store(args)
  run_id = _run_id(args, lineage, store, config)
  print(f"pipeline {config.pipeline.name}, run {run_id}")
  print(lineage.format_lineage(lineage.executions(store, run_id)))
  return 0


def cmd_summary(args) -> int:
  config, lineage, store = _store(args)
  print(json.dumps(lineage.summarize(store, _run_id(args, lineage, store, config)), indent=2))
  return 0


def cmd_verify(args) -> int:
  from tfx_gnn.components import housekeeping  # pylint: disable=g-import-not-at-top
  config, lineage, store = _store(args)
  problems = lineage.check_live_artifacts(store)
  for c in housekeeping.collect(store, config.metadata_path, config.pipeline.name,
                                os.path.join(config.root, "pipeline"), dry_run=True):
    problems.append(f"execution {c.execution_id} ({c.component}) of run {c.run_id} is RUNNING "
                    f"but its process is gone (`tfx-gnn gc {args.config}` marks it FAILED"
                    + (f" and removes {', '.join(c.removed)})" if c.removed else ")"))
  for problem in problems:
    print(problem)
  print(f"{len(problems)} problem(s) in the LIVE artifacts and executions of "
        f"{config.metadata_path}")
  return 1 if problems else 0


def cmd_gc(args) -> int:
  """Cleans up after killed runs; a live run's executions are left alone (see housekeeping)."""
  from tfx_gnn.pipelines import local_runner  # pylint: disable=g-import-not-at-top
  config = _load(args)
  collected = local_runner.collect_killed_runs(config)
  for c in collected:
    print(local_runner.describe_collected(c))
  print(f"{len(collected)} execution(s) of killed runs marked FAILED in {config.metadata_path}")
  return 0


LOOPBACK = "127.0.0.1"


def cmd_mlflow_ui(args) -> int:
  """Serves the config's MLflow store (runs, metrics, reports, registered models) with
  `mlflow server` (loopback unless `--host` says otherwise) until interrupted; for an http(s) tracking URI, that server
  already is the UI."""
  from tfx_gnn.pipelines import mlflow_server  # pylint: disable=g-import-not-at-top
  config = _load(args)
  if args.host not in (LOOPBACK, "localhost", "::1"):
    print(f"tfx-gnn: warning: the MLflow server on {args.host} has no authentication; "
          f"anyone who can reach it can read and change runs", file=sys.stderr)
  uri = config.tracking_uri
  if uri.startswith(("http://", "https://")):
    print(f"the MLflow tracking server of {args.config} is {uri}: open it in a browser")
    return 0
  server = mlflow_server.Server(uri, os.path.join(config.root, "mlartifacts"), port=args.port,
                                 host=args.host)
  # `kill` (SIGTERM) stops the server too, as Ctrl-C does.
  signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
  try:
    server.wait_ready()
    print(f"MLflow UI for {uri}: {server.url} (Ctrl-C stops it)", flush=True)
    server.process.wait()
  except KeyboardInterrupt:
    pass
  finally:
    server.stop()
  return 0


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="tfx-gnn", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest="command", required=True)
  for name, fn, help_text in (("run", cmd_run, "run the pipeline locally"),
                              ("compile", cmd_compile, "compile for Kubeflow Pipelines v2"),
                              ("check", cmd_check, "validate a config file"),
                              ("runs", cmd_runs, "list recorded runs"),
                              ("lineage", cmd_lineage, "show a run's lineage"),
                              ("summary", cmd_summary, "a run's outcome as JSON"),
                              ("verify", cmd_verify, "check the LIVE artifacts' files"),
                              ("gc", cmd_gc, "clean up after killed runs"),
                              ("mlflow-ui", cmd_mlflow_ui, "serve the MLflow UI (loopback)")):
    p = sub.add_parser(name, help=help_text)
    p.add_argument("config", help="the run's YAML config file")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config value, e.g. --set trainer.epochs=3")
    if name == "compile":
      p.add_argument("-o", "--output", help="pipeline file (default: kubeflow.output_file)")
    if name == "mlflow-ui":
      p.add_argument("--host", default=LOOPBACK, help="bind address (default: loopback only)")
      p.add_argument("--port", type=int, default=5000)
    if name in ("lineage", "summary"):
      p.add_argument("--run", help="pipeline run id (default: the latest)")
    p.set_defaults(fn=fn)
  return parser


def main(argv=None) -> int:
  args = build_parser().parse_args(argv)
  try:
    return args.fn(args)
  except config_lib.ConfigError as e:
    print(f"tfx-gnn: {e}", file=sys.stderr)
    return 2
  except (databases.DatabaseError, secrets.CredentialsError) as e:
    print(f"tfx-gnn: {e}", file=sys.stderr)
    return 1


def exit_without_teardown(code) -> None:
  """`sys.exit(code)` less the interpreter's teardown of its modules.

  With TensorFlow, Beam and TFX loaded, freeing every module and object at exit takes 2-5 s
  after the run has finished (measured: 4.6 s after a demo run), and writes nothing. The
  atexit handlers (logging, MLflow, temporary directories, multiprocessing) still run, and
  stdout and stderr are flushed first.
  """
  if code is not None and not isinstance(code, int):
    print(code, file=sys.stderr)  # as sys.exit prints a message
    code = 1
  atexit._run_exitfuncs()  # pylint: disable=protected-access
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code or 0)


def entry_point() -> None:
  """The `tfx-gnn` command."""
  try:
    code = main()
  except SystemExit as e:  # argparse's usage errors and --help
    code = e.code
  except KeyboardInterrupt:
    traceback.print_exc()
    code = 130
  except Exception:  # pylint: disable=broad-except  (not ours: the traceback, as Python would)
    traceback.print_exc()
    code = 1
  exit_without_teardown(code)


if __name__ == "__main__":
  entry_point()
