"""The `tfx-gnn` command line.

  tfx-gnn run CONFIG [--set KEY=VALUE ...]   run the pipeline locally (LocalDagRunner)
  tfx-gnn compile CONFIG [-o FILE] [--format kfp|vertex]  a Kubeflow Pipelines v2 pipeline file
  tfx-gnn check CONFIG                      validate a config and its data files, print it
  tfx-gnn runs CONFIG                       list the pipeline's runs recorded in ML Metadata
  tfx-gnn lineage CONFIG [--run RUN_ID]     a run's executions and artifacts (default: latest)
  tfx-gnn summary CONFIG [--run RUN_ID]     a run's outcome as JSON
  tfx-gnn verify CONFIG                     check that every LIVE artifact has its files and
                                            that no killed run left executions RUNNING
  tfx-gnn gc CONFIG                         mark killed runs' RUNNING executions FAILED and
                                            remove their partial outputs
  tfx-gnn mlflow-ui CONFIG [--host H] [--port P]  the MLflow UI of the config's runs (loopback)
  tfx-gnn predict CONFIG (--ids ID... | --ids-file F | --split S | --all) [-o out.parquet]
                                            score nodes with the latest pushed model

Exit codes: 0 success; 1 a failed run or command; 2 a bad config or usage; 3 (`run`) the run
completed but the model was not blessed (nothing pushed); 75 (`run`) a concurrent run held
the database: retry.
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

import yaml

# Only light modules here (the environment comes from `tfx_gnn/__init__.py`): a config error
# must be reported before TensorFlow, TFX or Beam is imported.
from tfx_gnn.components import databases, secrets
from tfx_gnn.pipelines import config as config_lib
from tfx_gnn.pipelines import console


# Progress goes to stderr (`--quiet` silences it), the libraries' warnings only with `--verbose`
# (console.py). Config errors exit with 2 before anything heavy is imported; routine failures
# (no runs yet, an unknown run, a missing file) with 1 and one message, no traceback.
class CliError(Exception):
  """A routine failure that its message explains: printed without a traceback, exit status 1."""


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
# `tfx-gnn run`: the pipeline ran to the end, but the evaluator did not bless the model.
EXIT_NOT_BLESSED = 3


def is_retryable(error: BaseException) -> bool:
  while error is not None:
    if any(m in str(error).lower() for m in RETRYABLE_MARKERS):
      return True
    error = error.__cause__ or error.__context__
  return False


def cmd_run(args) -> int:
  config = _load(args)  # before the heavy imports: a typo is reported at once
  from tfx_gnn.pipelines import local_runner
  start = time.time()
  try:
    summary = local_runner.run(config)
  except Exception as e:
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
  if summary.get("blessed") is False:
    # The run worked; its model did not pass the gate: a distinct status for scripts and CI.
    print(f"tfx-gnn: the run completed but the model was NOT blessed: "
          f"{secrets.redact(summary.get('blessing_reasons') or 'see the evaluation above')}\n"
          f"nothing was pushed; the MLflow registry is unchanged (exit code {EXIT_NOT_BLESSED}).",
          file=sys.stderr)
    return EXIT_NOT_BLESSED
  return 0


def cmd_compile(args) -> int:
  config = _load(args)
  from tfx_gnn.pipelines import kubeflow_runner
  try:  # before the pipeline is built: these need only the config
    output = kubeflow_runner.output_path(config, args.output, args.format)
    kubeflow_runner.check_pipeline_root(config)
  except ValueError as e:
    raise CliError(str(e)) from None
  path = kubeflow_runner.compile_pipeline(config, output, args.format)
  spec = kubeflow_runner.load_pipeline_spec(path)
  print(f"wrote {path} ({kubeflow_runner.FORMATS[args.format]}): {len(spec.root.dag.tasks)} "
        f"tasks ({', '.join(sorted(spec.root.dag.tasks))})")
  return 0


def cmd_check(args) -> int:
  """The config with every default, then its data files: there, readable, with the columns
  the config names (headers only; ingest validates every row)."""
  config = _load(args)
  print(secrets.redact(yaml.safe_dump(config_lib.to_dict(config), sort_keys=False)))
  from tfx_gnn.components.graph_ingest import preflight
  checked, problems = preflight.check_sources(config.data)
  for path in checked:
    print(f"ok: {path}", file=sys.stderr)
  for problem in problems:
    print(f"tfx-gnn: data: {problem}", file=sys.stderr)
  if problems:
    return 1
  if config.data.synthetic is not None or config.data.synthetic_graphs is not None:
    print("data: generated by the embedded generator (no files)", file=sys.stderr)
  return 0


def _store(args):
  config = _load(args)
  if not databases.is_postgres(config.metadata_path) and not os.path.exists(config.metadata_path):
    raise CliError(
        f"no ML Metadata database at {config.metadata_path}: pipeline {config.pipeline.name!r} "
        f"has not run there yet. pipeline.root ({config.pipeline.root}) is relative to the "
        f"directory you run tfx-gnn in (now {os.getcwd()}): run from where `tfx-gnn run` ran, "
        f"or --set pipeline.root=...")
  from tfx_gnn.components import lineage
  return config, lineage, lineage.open_store(config.metadata_path)


def cmd_runs(args) -> int:
  config, lineage, store = _store(args)
  run_ids = lineage.run_ids(store, config.pipeline.name)
  if not run_ids:
    print(f"no runs of pipeline {config.pipeline.name!r} in {config.metadata_path}",
          file=sys.stderr)
  for run_id in run_ids:
    states = {r.component: r.state for r in lineage.executions(store, run_id)}
    print(run_id, " ".join(f"{c}={s}" for c, s in states.items()))
  return 0


def _run_id(args, lineage, store, config) -> str:
  run_ids = lineage.run_ids(store, config.pipeline.name)
  if not run_ids:
    raise CliError(f"no runs of pipeline {config.pipeline.name!r} in {config.metadata_path} "
                   "yet")
  if args.run is None:
    return lineage.latest_run_id(store, config.pipeline.name)
  if args.run not in run_ids:
    raise CliError(f"no run {args.run!r} of pipeline {config.pipeline.name!r} in "
                   f"{config.metadata_path}; the latest runs are: {', '.join(run_ids[-5:])} "
                   f"(`tfx-gnn runs {args.config}` lists them all)")
  return args.run


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
  config, lineage, store = _store(args)  # a missing database is an error before any import
  from tfx_gnn.components import housekeeping
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
  from tfx_gnn.pipelines import local_runner
  config = _load(args)
  collected = local_runner.collect_killed_runs(config)
  for c in collected:
    print(local_runner.describe_collected(c))
  print(f"{len(collected)} execution(s) of killed runs marked FAILED in {config.metadata_path}")
  return 0


LOOPBACK = "127.0.0.1"


def cmd_mlflow_ui(args) -> int:
  """Serves the config's MLflow store (runs, metrics, reports, registered models) with
  `mlflow server` (loopback unless `--host` says otherwise) until interrupted; for an http(s)
  tracking URI, that server already is the UI."""
  config = _load(args)
  from tfx_gnn.pipelines import mlflow_server
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


def latest_pushed_model(config) -> dict:
  """The pipeline's latest LIVE PushedModel that was pushed and records a serving spec
  (ML Metadata): its properties plus `uri`."""
  from ml_metadata.proto import metadata_store_pb2
  from tfx_gnn.components import lineage, node_scoring
  try:
    store = lineage.open_store(config.metadata_path)
  except FileNotFoundError as e:
    raise node_scoring.ScoringError(str(e)) from None
  candidates = []
  for artifact in store.get_artifacts_by_type("PushedModel"):
    props = {k: v.int_value or v.string_value for k, v in artifact.custom_properties.items()}
    if (artifact.state == metadata_store_pb2.Artifact.LIVE and props.get("pushed") == 1
        and props.get("serving_spec") and any(
            c.name == config.pipeline.name for c in store.get_contexts_by_artifact(artifact.id))):
      candidates.append({**props, "uri": artifact.uri, "id": artifact.id})
  if not candidates:
    raise node_scoring.ScoringError(
        f"no pushed model of pipeline {config.pipeline.name!r} that scores node ids in "
        f"{config.metadata_path}: run the pipeline until a model is blessed and pushed")
  return max(candidates, key=lambda c: c["id"])


def _predict_ids(args, spec) -> list[str]:
  from tfx_gnn.components import graph_io, node_scoring
  if args.ids:
    return args.ids
  if args.ids_file:
    try:
      with open(args.ids_file) as f:
        lines = [line.strip() for line in f if line.strip()]
    except OSError as e:
      raise node_scoring.ScoringError(f"--ids-file {args.ids_file}: {e.strerror}") from None
    return lines[1:] if lines[:1] == ["id"] else lines  # one id a line; an `id` header is fine
  node_scoring.check_graph(spec)
  if args.split:
    if not os.path.exists(graph_io.seeds_file(spec.graph_dir, args.split)):
      raise node_scoring.ScoringError(f"--split {args.split}: graph {spec.graph_dir} has no "
                                      f"{args.split!r} split")
    return graph_io.read_seeds(spec.graph_dir, args.split)
  return node_scoring.node_ids(spec.graph_dir, spec.node_set)


PREDICT_ROWS_SHOWN = 10


def cmd_predict(args) -> int:
  """Scores nodes with the latest pushed model, sampling each node's subgraph as
  GnnBulkInferrer and the registered MLflow model do (same spec, seed and salt)."""
  from tfx_gnn.components import node_scoring
  config = _load(args)
  try:
    pushed = latest_pushed_model(config)
    spec = node_scoring.ServingSpec.from_property(pushed["serving_spec"])
    ids = _predict_ids(args, spec)
    if args.output and not os.path.isdir(os.path.dirname(os.path.abspath(args.output))):
      raise node_scoring.ScoringError(f"-o {args.output}: no such directory")
    model_dir = pushed.get("pushed_destination") or pushed["uri"]
    columns = node_scoring.NodeScorer(model_dir, spec).score(ids)
    if args.output:
      node_scoring.write_parquet(columns, spec.task, args.output,
                                 {"model": model_dir, "graph": spec.graph_dir})
  except node_scoring.ScoringError as e:
    print(f"tfx-gnn predict: {e}\nnothing was written.", file=sys.stderr)
    return 1
  rows = [("id", "prediction", "probability")]
  for i in range(min(PREDICT_ROWS_SHOWN, len(ids))):
    probabilities = columns["probabilities"][i]
    rows.append((columns["id"][i], str(columns["prediction"][i]),
                 f"{max(probabilities):.4f}" if probabilities else ""))
  widths = [max(len(r[k]) for r in rows) for k in range(3)]
  print(f"{len(ids)} node(s) of {spec.node_set!r} scored with model version "
        f"{pushed.get('pushed_version')} ({model_dir})")
  for row in rows:
    print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
  if len(ids) > PREDICT_ROWS_SHOWN:
    print(f"... {len(ids) - PREDICT_ROWS_SHOWN} more" + ("" if args.output else
                                                         " (-o FILE writes them all)"))
  if args.output:
    print(f"written: {args.output}")
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
                              ("mlflow-ui", cmd_mlflow_ui, "serve the MLflow UI (loopback)"),
                              ("predict", cmd_predict, "score nodes with the pushed model")):
    p = sub.add_parser(name, help=help_text)
    p.add_argument("config", help="the run's YAML config file")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config value, e.g. --set trainer.epochs=3")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also the libraries' warnings and logs (TensorFlow, TFX, Beam, MLflow)")
    if name == "compile":
      p.add_argument("-o", "--output",
                     help="pipeline file (default: kubeflow.output_file, else pipeline.yaml "
                          "for kfp, pipeline.json for vertex)")
      p.add_argument("--format", choices=("kfp", "vertex"), default="kfp",
                     help="kfp: the pipeline spec YAML that the KFP client and UI upload as "
                          "it is (default); vertex: a Vertex AI PipelineJob JSON")
    if name == "mlflow-ui":
      p.add_argument("--host", default=LOOPBACK, help="bind address (default: loopback only)")
      p.add_argument("--port", type=int, default=5000)
    if name == "predict":
      which = p.add_mutually_exclusive_group(required=True)
      which.add_argument("--ids", nargs="+", metavar="ID", help="node ids of the target set")
      which.add_argument("--ids-file", metavar="F", help="a file of node ids, one a line")
      which.add_argument("--split", choices=("train", "eval", "test"), help="a split's nodes")
      which.add_argument("--all", action="store_true", help="every node of the target set")
      p.add_argument("-o", "--output", metavar="out.parquet",
                     help="write every prediction (id, prediction, probabilities, embedding)")
    if name in ("lineage", "summary"):
      p.add_argument("--run", help="pipeline run id (default: the latest)")
    p.set_defaults(fn=fn)
  return parser


# What exit_without_teardown calls last: the stderr filter's flush (console.setup).
_restore_stderr = None


def main(argv=None, configure_output: bool = False) -> int:
  """Runs one command; `configure_output` (the `tfx-gnn` command): set up what it prints
  (console.setup: process-wide, so not for callers that run commands in their own process)."""
  global _restore_stderr
  args = build_parser().parse_args(argv)
  # mlflow-ui: the server's own log is for its terminal, as it is.
  if configure_output and args.fn is not cmd_mlflow_ui:
    _restore_stderr = console.setup(verbose=args.verbose, quiet=args.quiet)
  try:
    return args.fn(args)
  except config_lib.ConfigError as e:
    print(f"tfx-gnn: {e}", file=sys.stderr)
    return 2
  except (CliError, databases.DatabaseError, secrets.CredentialsError) as e:
    print(f"tfx-gnn: {secrets.redact(str(e))}", file=sys.stderr)
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
  atexit._run_exitfuncs()
  sys.stdout.flush()
  sys.stderr.flush()
  if _restore_stderr is not None:
    _restore_stderr()
  os._exit(code or 0)


def entry_point() -> None:
  """The `tfx-gnn` command."""
  try:
    code = main(configure_output=True)
  except SystemExit as e:  # argparse's usage errors and --help
    code = e.code
  except KeyboardInterrupt:
    traceback.print_exc()
    code = 130
  except Exception:  # not ours: the traceback, as Python would
    traceback.print_exc()
    code = 1
  exit_without_teardown(code)


if __name__ == "__main__":
  entry_point()
