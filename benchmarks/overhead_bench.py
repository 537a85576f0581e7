"""Orchestration overhead: `tfx-gnn run`'s wall time against its components' own work.

  make bench BENCH=overhead                       # the demo config (4,000 papers)
  .venv/bin/python -m benchmarks.overhead_bench --config pipelines/configs/demo.yaml \
      --set data.synthetic.num_papers=2000

The driver starts one child process that is `tfx-gnn run CONFIG` (the CLI's own `main`, under a
fresh `pipeline.root`, so nothing is cached) with timers around: the CLI's imports, the
pipeline's compilation, `LocalDagRunner.run_with_ir`, each executor's `Do` (TFX's
`python_executor_operator.run_with_executor`, which every Python and Beam executor goes
through), and the run summary. The driver times the child from before `exec` to its exit,
so the pipeline's wall time includes interpreter start-up, every import and the exit.

  work      = the sum of the executors' Do (wall; CPU seconds beside it)
  overhead  = pipeline wall time - work, broken down into start-up, the CLI's imports, config
              and MLflow check, compile, the LocalDagRunner outside the executors (drivers,
              input resolution, ML Metadata, cache checks, publishing), summary, and exit.
Imports that an executor makes inside its Do (e.g. the trainer's TF-GNN runner) count as its
work; imports made before the first component runs count as overhead.

The components compute with TensorFlow and Beam, which TFX's own modules import before the
first component runs; any runner of these components, a plain script included, pays for that
once. So the same run also times a reference child, a bare interpreter that imports just those
of the libraries (`--role bare`, exec to exit), and reports

  orchestration overhead = pipeline wall time - work - the reference child's wall time

(what TFX, the LocalDagRunner, ML Metadata, MLflow and our CLI add), beside the total overhead.
The 5% target is checked on the orchestration overhead.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from benchmarks import common

MODULE = "benchmarks.overhead_bench"
TARGET = 0.05  # orchestration overhead <= 5% of the pipeline's wall time on the demo graph
# The libraries the components compute with; those loaded before the first component are the
# reference child's imports.
WORK_LIBRARIES = ("tensorflow", "apache_beam", "tensorflow_gnn")


# ------------------------------------------------------------------ child
def instrumented_run(args) -> dict:
  """`tfx-gnn run` in this process, with timers; returns the timings."""
  t_main = time.time()
  marks = {"main": t_main}
  cpu0 = time.process_time()
  from tfx_gnn.pipelines import cli
  marks["cli_imported"] = time.time()
  from tfx_gnn.pipelines import local_runner  # as cmd_run does
  marks["runner_imported"] = time.time()
  imported_cpu = time.process_time() - cpu0
  heavy_libraries = ("tensorflow", "tensorflow_gnn", "apache_beam", "mlflow",
                     "tensorflow_model_analysis", "keras_tuner", "keras")
  heavy = []  # those in sys.modules when the first component starts
  from tfx.dsl.compiler import compiler
  from tfx.orchestration.local import local_dag_runner
  from tfx.orchestration.portable import python_executor_operator as peo
  from tfx_gnn.components import lineage

  spans: dict[str, list] = {"compile": [], "run_with_ir": [], "summarize": [],
                            "local_runner.run": []}
  executors: list[dict] = []

  def timed(owner, name, key):
    original = getattr(owner, name)

    def wrapper(*a, **kw):
      start, cpu = time.time(), time.process_time()
      try:
        return original(*a, **kw)
      finally:
        spans[key].append({"start": start, "seconds": time.time() - start,
                           "cpu_seconds": time.process_time() - cpu})
    setattr(owner, name, wrapper)

  timed(compiler.Compiler, "compile", "compile")
  timed(local_dag_runner.LocalDagRunner, "run_with_ir", "run_with_ir")
  timed(local_runner, "run", "local_runner.run")
  summaries = []
  summarize_fn = lineage.summarize

  def keep_summary(*a, **kw):
    summaries.append(summarize_fn(*a, **kw))
    return summaries[-1]
  lineage.summarize = keep_summary
  timed(lineage, "summarize", "summarize")
  run_with_executor = peo.run_with_executor

  def executor_timer(execution_info, executor):
    if not executors:
      heavy.extend(m for m in heavy_libraries if m in sys.modules)
    start, cpu = time.time(), time.process_time()
    try:
      return run_with_executor(execution_info, executor)
    finally:
      executors.append({"component": execution_info.pipeline_node.node_info.id,
                        "start": start, "seconds": time.time() - start,
                        "cpu_seconds": time.process_time() - cpu})
  peo.run_with_executor = executor_timer

  argv = ["run", args.config, "--set", f"pipeline.root={args.root}"]
  for item in args.set:
    argv += ["--set", item]
  code = cli.main(argv)
  if code:
    raise SystemExit(f"tfx-gnn run failed (exit {code})")
  marks["main_returned"] = time.time()
  sys.stdout.flush()
  summary = summaries[0]
  return {"marks": marks, "spans": spans, "executors": executors,
          "imports_cpu_seconds": imported_cpu, "imported_before_first_component": heavy,
          "mlmd_execution_seconds": summary["seconds"],
          "component_states": summary["components"], "cpu_seconds": time.process_time()}


def bare_imports(modules: list[str]) -> dict:
  """The reference: import `modules` in a fresh interpreter (the driver times exec to exit)."""
  import importlib
  for name in modules:
    importlib.import_module(name)
  return {"imported": modules}


# ------------------------------------------------------------------ driver
def analyse(child: dict, bare: dict) -> dict:
  """Breaks the child's wall time down into the executors' work and the overhead's parts."""
  marks, spans, proc = child["marks"], child["spans"], child["_process"]
  wall = proc["seconds"]
  t0 = proc["started_at"]
  executors = child["executors"]
  work = sum(e["seconds"] for e in executors)
  work_cpu = sum(e["cpu_seconds"] for e in executors)
  run_with_ir = spans["run_with_ir"][0]["seconds"]
  runner_run = spans["local_runner.run"][0]
  compile_s = spans["compile"][0]["seconds"]
  summarize_s = sum(s["seconds"] for s in spans["summarize"]
                    if s["start"] < runner_run["start"] + runner_run["seconds"])
  parts = {
      "interpreter start-up (exec to main)": marks["main"] - t0,
      "imports of the CLI and runner (tfx, TensorFlow, Beam, MLflow)":
          marks["runner_imported"] - marks["main"],
      "config load, MLflow check, pipeline construction":
          runner_run["seconds"] - compile_s - run_with_ir - summarize_s,
      "compile to IR": compile_s,
      "LocalDagRunner outside the executors (drivers, ML Metadata, resolution, publish)":
          run_with_ir - work,
      "run summary (ML Metadata queries) and printing":
          marks["main_returned"] - (runner_run["start"] + runner_run["seconds"]) + summarize_s,
  }
  parts["other (CLI set-up, process exit)"] = wall - work - sum(parts.values())
  overhead = wall - work
  reference = bare["_process"]["seconds"]
  orchestration = overhead - reference
  return {"pipeline_wall_s": wall, "pipeline_cpu_s": proc["cpu_seconds"],
          "work_s": work, "work_cpu_s": work_cpu,
          "overhead_s": overhead, "overhead_fraction": overhead / wall,
          "overhead_cpu_s": proc["cpu_seconds"] - work_cpu,
          "overhead_cpu_fraction": (proc["cpu_seconds"] - work_cpu) / proc["cpu_seconds"],
          "overhead_parts_s": parts,
          "per_component": [{"component": e["component"], "do_s": e["seconds"],
                             "do_cpu_s": e["cpu_seconds"],
                             "mlmd_execution_s": child["mlmd_execution_seconds"].get(
                                 e["component"])} for e in executors],
          "imports_cpu_s": child["imports_cpu_seconds"],
          "imported_before_first_component": child["imported_before_first_component"],
          "reference_child": {"imports": bare["imported"], "wall_s": reference,
                              "cpu_s": bare["_process"]["cpu_seconds"]},
          "orchestration_overhead_s": orchestration,
          "orchestration_overhead_fraction": orchestration / wall,
          "target_orchestration_overhead_at_most_5_percent": orchestration / wall <= TARGET}


def summarize(report: dict) -> None:
  """Adds the analysis to `report` and prints the tables."""
  report["analysis"] = a = analyse(report["child"], report["bare"])
  f, pct = common.fmt, lambda x: f"{100 * x:.1f}%"
  print(f"\nconfig {report['params']['config']} {report['params']['set']}")
  print(common.describe_machine(report["machine"]) + "\n")
  rows = [("component", "Do wall s", "Do CPU s", "ML Metadata execution s")]
  for c in a["per_component"]:
    rows.append((c["component"], f(c["do_s"]), f(c["do_cpu_s"]), f(c["mlmd_execution_s"])))
  rows.append(("sum: the components' own work", f(a["work_s"]), f(a["work_cpu_s"]), ""))
  print(common.table(rows) + "\n")
  rows = [("overhead", "wall s", "of pipeline wall")]
  for name, seconds in a["overhead_parts_s"].items():
    rows.append((name, f(seconds), pct(seconds / a["pipeline_wall_s"])))
  rows.append(("total overhead", f(a["overhead_s"]), pct(a["overhead_fraction"])))
  ref = a["reference_child"]
  rows.append((f"  less the reference: a bare interpreter importing {', '.join(ref['imports'])}",
               f(-ref["wall_s"]), pct(-ref["wall_s"] / a["pipeline_wall_s"])))
  rows.append(("orchestration overhead (TFX, LocalDagRunner, ML Metadata, MLflow, CLI)",
               f(a["orchestration_overhead_s"]), pct(a["orchestration_overhead_fraction"])))
  rows.append(("pipeline wall time (tfx-gnn run, exec to exit)", f(a["pipeline_wall_s"]), ""))
  print(common.table(rows))
  print(f"\nCPU: pipeline {f(a['pipeline_cpu_s'])} s, components' work {f(a['work_cpu_s'])} s, "
        f"overhead {f(a['overhead_cpu_s'])} s ({pct(a['overhead_cpu_fraction'])}); the imports "
        f"before the first component: {f(a['imports_cpu_s'])} CPU s "
        f"({', '.join(a['imported_before_first_component'])})")
  print(f"target orchestration overhead <= {pct(TARGET)} of wall time: "
        f"{a['target_orchestration_overhead_at_most_5_percent']}")


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--config", default="pipelines/configs/demo.yaml")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="config overrides, as `tfx-gnn run --set` (e.g. the graph size: "
                           "data.synthetic.num_papers=2000)")
  parser.add_argument("--workdir", default="runs/bench")
  parser.add_argument("--out", default="runs/bench/overhead_bench.json")
  parser.add_argument("--summarize", default="", help="reprint an earlier run's JSON and exit")
  parser.add_argument("--role", default="driver", help=argparse.SUPPRESS)
  parser.add_argument("--root", default="", help=argparse.SUPPRESS)
  parser.add_argument("--modules", default="", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.summarize:
    with open(args.summarize) as f:
      summarize(json.load(f))
    return
  if args.role == "run":
    result = instrumented_run(args)
    print(json.dumps(result))
    from tfx_gnn.pipelines import cli
    cli.exit_without_teardown(0)  # as the `tfx-gnn` command exits
  if args.role == "bare":
    print(json.dumps(bare_imports([m for m in args.modules.split(",") if m])))
    from tfx_gnn.pipelines import cli
    cli.exit_without_teardown(0)  # as the pipeline's child exits
  report = {"machine": common.machine(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "params": {"config": args.config, "set": args.set}}
  root = os.path.abspath(os.path.join(args.workdir, f"overhead-{int(time.time())}"))
  child = common.child(MODULE, "run", ["--config", args.config, "--root", root]
                       + [x for item in args.set for x in ("--set", item)])
  report["child"] = child
  loaded = [m for m in WORK_LIBRARIES if m in child["imported_before_first_component"]]
  report["bare"] = common.child(MODULE, "bare", ["--modules", ",".join(loaded)])
  report["machine"]["load_average_at_end"] = os.getloadavg()
  common.write_json(report, args.out)  # the raw timings first
  summarize(report)
  common.write_json(report, args.out)


if __name__ == "__main__":
  main()
