"""Beyond memory, shown (issue 19, item 5): the MAG-size synthetic graph through the Beam path
(GraphIngest's Beam ingest, GraphValidator's Beam id checks, then TF-GNN's Beam sampler) in a
process tree held under a memory cap, against the graph's in-memory size.

  nice -n 19 .venv/bin/python -m benchmarks.beyond_memory --dir /tmp/beyondmem \
      --label full_ingest_capped --steps ingest --splits "" --cap-gb 1.75 \
      --out benchmarks/results_beyond_memory.json

Child processes (`--role`), in order:

1. `generate` (not capped: it is the data's producer, not the pipeline): the synthetic graph's
   tables (`synthetic.generate_tables`, 349 classes, 128-d features) rewritten as a directory of
   Parquet part files per table, as a graph beyond memory is stored (GraphIngest's Beam path
   reads file by file: one worker holds one part, not the table). Kept in `--dir`, reused.
2. `inmemory` (not capped): the in-memory ingest of the same tables (`ingest.tables_to_graph`):
   its peak RSS and the decoded graph's size (its arrays and id strings): the graph's
   in-memory size. The default cap is 80% of that peak.
3. `beam` (capped): `ingest.ingest` with `data.beam_threshold_mb: 0` on an FnApiRunner pipeline
   (the components' default `beam_pipeline_args`), then, per `--steps`,
   `beam_validation.validate` and `sampling.prepare_program` + `sampling.add_sampling` (the
   SubgraphSampler's `tfgnn_beam` engine) over mag_scale.yaml's sampling spec, for `--seeds`
   seeds of each of `--splits` (the first of each split's seeds file, through a view of the
   artifact whose seeds files are cut; 0: all), each step timed.
4. `inmemory` again, under the same cap: below the graph's in-memory size it is OOM-killed.

The cap is a memory cgroup made for the run under this process's own (cgroup v1
`memory.limit_in_bytes`, or v2 `memory.max`; this needs write access to the cgroup tree). The
kernel counts every page the run's process tree touches (page cache included, which it reclaims
first) and kills the tree if it cannot stay under. `ulimit -v` (RLIMIT_AS) is no cap for
TensorFlow, which reserves tens of GB of address space it never touches; RLIMIT_DATA is the
same, and Linux does not enforce RLIMIT_RSS. The process tree's RSS is sampled every second
(benchmarks/scale_run.py's sampler); the cgroup's own peak (RSS + page cache) and its OOM-kill
count are reported too. Each run is stored under its `--label` in `--out` (others kept).
Results and what they show: benchmarks/README.md, "beyond memory".
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from benchmarks import common

MAG_PAPERS = 736_389
PARTS_ROWS = {"paper": 50_000}  # rows per part file; edges and other nodes: EDGE_PART_ROWS
EDGE_PART_ROWS = 500_000


# ---------------------------------------------------------------- children
def generate(directory: str, papers: int) -> dict:
  """Writes the tables as Parquet part directories under `directory/tables`; returns the spec."""
  import pyarrow.csv as pacsv
  import pyarrow.parquet as pq
  from tfx_gnn.components.graph_ingest import synthetic
  spec_path = os.path.join(directory, "spec.json")
  if os.path.exists(spec_path):
    with open(spec_path) as f:
      return json.load(f)
  flat = os.path.join(directory, "flat")
  spec = synthetic.generate_tables(flat, num_papers=papers, num_classes=349, feature_dim=128,
                                   seed=0)
  tables_dir = os.path.join(directory, "tables")
  for kind in ("node_sets", "edge_sets"):
    for name, table in spec[kind].items():
      path = os.path.join(flat, table["file"])
      data = pq.read_table(path) if path.endswith(".parquet") else pacsv.read_csv(path)
      rows = PARTS_ROWS.get(name, EDGE_PART_ROWS)
      out = os.path.join(tables_dir, name)
      os.makedirs(out, exist_ok=True)
      for i, start in enumerate(range(0, max(data.num_rows, 1), rows)):
        pq.write_table(data.slice(start, rows), os.path.join(out, f"part-{i:05d}.parquet"))
      table["file"] = name
      table["format"] = "parquet"
      os.remove(path)
  os.replace(os.path.join(flat, spec["splits"]["file"]), os.path.join(tables_dir, "splits.csv"))
  spec["directory"] = tables_dir
  spec["splits"]["file"] = "splits.csv"
  common.write_json(spec, spec_path)
  return spec


def _stored_bytes(path: str) -> int:
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def _graph_bytes(graph) -> int:
  """The decoded graph's memory: its arrays plus the id strings they point to."""
  def array_bytes(a) -> int:
    if a.dtype.kind != "O":
      return a.nbytes
    seen, total = set(), a.nbytes
    for x in a.reshape(-1):
      if id(x) not in seen:
        seen.add(id(x))
        total += sys.getsizeof(x)
    return total
  total = 0
  for node_set in graph.node_sets.values():
    total += array_bytes(node_set.ids) + sum(array_bytes(v) for v in node_set.features.values())
  for edge_set in graph.edge_sets.values():
    if edge_set.reverse_of is None:  # a reverse set shares its forward set's arrays
      total += (array_bytes(edge_set.sources) + array_bytes(edge_set.targets)
                + sum(array_bytes(v) for v in edge_set.features.values()))
  return total


def inmemory(spec: dict) -> dict:
  """The in-memory ingest of the tables: the process's peak RSS and the graph's size."""
  from tfx_gnn.components.graph_ingest import ingest
  from tfx_gnn.components.graph_ingest.config import TablesSource
  baseline = common.peak_rss_mb()
  start = time.time()
  graph = ingest.tables_to_graph(TablesSource.model_validate(spec))
  seconds = time.time() - start
  return {"seconds": round(seconds, 1), "peak_rss_gb": round(common.peak_rss_mb() / 1024, 2),
          "rss_before_gb": round(baseline / 1024, 2),
          "decoded_graph_gb": round(_graph_bytes(graph) / 2**30, 2),
          "counts": graph.counts()}


def beam_run(spec: dict, work: str, seeds: int, splits: list[str], steps: list[str],
             beam_args: list[str]) -> dict:
  """Ingest, validation and TF-GNN's Beam sampler, on Beam, each timed."""
  import shutil
  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.graph_ingest import ingest
  from tfx_gnn.components.graph_ingest.config import DataConfig
  from tfx_gnn.components.graph_validator import beam_validation, validation
  from tfx_gnn.components.graph_validator.config import ValidationConfig
  from tfx_gnn.components.subgraph_sampler import sampling
  from tfx_gnn.components.subgraph_sampler.config import SamplingConfig
  from tfx_gnn.pipelines import config as config_lib
  shutil.rmtree(work, ignore_errors=True)
  graph_dir, sampled_dir = os.path.join(work, "graph"), os.path.join(work, "sampled")
  make_pipeline = lambda: beam.Pipeline(options=PipelineOptions(beam_args))
  timings = {}

  def step(name, fn):
    print(f"[beyond_memory] {name} ...", flush=True)
    t, c = time.time(), _cpu()
    result = fn()
    timings[name] = {"wall_s": round(time.time() - t, 1), "cpu_s": round(_cpu() - c, 1),
                     "ended_at": time.time()}
    print(f"[beyond_memory] {name}: {timings[name]['wall_s']} s", flush=True)
    return result

  data = DataConfig(tables=spec, beam_threshold_mb=0)
  graph = step("ingest", lambda: ingest.ingest(data, graph_dir, os.path.join(work, "scratch"),
                                               make_pipeline=make_pipeline))
  counts = graph.counts()
  schema = graph_io.read_schema(graph_dir)
  report = {"steps": timings, "counts": counts, "beam_pipeline_args": beam_args,
            "graph_artifact_mb": round(beam_validation.artifact_megabytes(graph_dir, schema), 1)}
  if "validation" in steps:
    stats, anomalies = step("validation", lambda: beam_validation.validate(
        graph_dir, schema, ValidationConfig(beam_threshold_mb=0), os.path.join(work, "ids"),
        make_pipeline))
    validation.check(anomalies)  # fails the run as the GraphValidator would
    report.update(anomalies=len(anomalies), validation_stats_computed_on=stats["computed_on"])
  if "sampling" not in steps:
    report["peak_rss_self_gb"] = round(common.peak_rss_mb() / 1024, 2)
    return report

  mag = config_lib.load_config(os.path.join(os.path.dirname(__file__), "..", "pipelines",
                                            "configs", "mag_scale.yaml"))
  sampling_config = SamplingConfig.model_validate(mag.sampling.model_dump())
  # The sampler reads each split's seeds from the Graph artifact (`seeds/<split>.csv`): it
  # samples a view of the artifact, its files linked, whose seeds files hold the first `seeds`.
  view_dir = os.path.join(work, "graph_view")
  seed_counts = {}
  for dirpath, _, files in os.walk(graph_dir):
    os.makedirs(os.path.join(view_dir, os.path.relpath(dirpath, graph_dir)), exist_ok=True)
    for name in files:
      path = os.path.join(dirpath, name)
      os.symlink(path, os.path.join(view_dir, os.path.relpath(path, graph_dir)))
  for split in splits:
    view_seeds = graph_io.seeds_file(view_dir, split)
    with open(graph_io.seeds_file(graph_dir, split)) as f:
      header, *lines = f.read().splitlines()  # a header `id`, then one id per line
    chosen = lines if seeds == 0 else lines[:seeds]
    os.remove(view_seeds)
    with open(view_seeds, "w") as f:
      f.write("\n".join([header] + chosen) + "\n")
    seed_counts[split] = {"sampled": len(chosen), "in_split": len(lines)}

  def sample():  # (not run without splits: ingest and validation alone)
    sampling_spec = sampling.spec_from_config(sampling_config, schema, graph.label.node_set)
    program_dir = os.path.join(sampled_dir, "program")
    program, layers_mapping, _ = sampling.prepare_program(schema, sampling_spec, program_dir)
    outputs = {s: os.path.join(sampled_dir, s, "subgraphs") for s in splits}
    with make_pipeline() as pipeline:
      sampling.add_sampling(pipeline, graph_dir=view_dir, program=program,
                            layers_mapping=layers_mapping, artifacts_dir=program_dir,
                            outputs=outputs)
  if splits:
    step("sampling (tfgnn_beam)", sample)
  written = {}
  import tensorflow as tf
  for split in splits:
    files = tf.io.gfile.glob(os.path.join(sampled_dir, split, "subgraphs*"))
    written[split] = sum(1 for f in files for _ in tf.data.TFRecordDataset(f))
  report.update(seeds=seed_counts, subgraphs_written=written,
                peak_rss_self_gb=round(common.peak_rss_mb() / 1024, 2))
  return report


def _cpu() -> float:
  r = resource.getrusage(resource.RUSAGE_SELF)
  return r.ru_utime + r.ru_stime


# ---------------------------------------------------------------- the cap
class MemoryCap:
  """A memory cgroup below this process's own, limited to `limit_bytes`; children join it."""

  def __init__(self, limit_bytes: int, name: str):
    self.limit = limit_bytes
    self.version, parent = self._own_memory_cgroup()
    self.path = os.path.join(parent, name)
    os.makedirs(self.path, exist_ok=True)
    limit_file = "memory.limit_in_bytes" if self.version == 1 else "memory.max"
    with open(os.path.join(self.path, limit_file), "w") as f:
      f.write(str(limit_bytes))

  @staticmethod
  def _own_memory_cgroup() -> tuple[int, str]:
    with open("/proc/self/cgroup") as f:
      lines = [line.rstrip("\n").split(":", 2) for line in f]
    for _, controllers, path in lines:
      if "memory" in controllers.split(","):
        return 1, "/sys/fs/cgroup/memory" + path
    for _, controllers, path in lines:
      if controllers == "" and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return 2, "/sys/fs/cgroup" + path
    raise SystemExit("no memory cgroup found for this process (/proc/self/cgroup)")

  def join(self) -> None:  # preexec_fn: the child enters the cgroup before it execs
    with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
      f.write(str(os.getpid()))

  def figures(self) -> dict:
    def read(name):
      try:
        with open(os.path.join(self.path, name)) as f:
          return f.read()
      except OSError:
        return None
    if self.version == 1:
      oom = dict(line.split() for line in (read("memory.oom_control") or "").splitlines())
      return {"cgroup_peak_gb": round(int(read("memory.max_usage_in_bytes")) / 2**30, 2),
              "limit_hits": int(read("memory.failcnt")), "oom_kills": int(oom.get("oom_kill", 0))}
    events = dict(line.split() for line in (read("memory.events") or "").splitlines())
    peak = read("memory.peak")
    return {"cgroup_peak_gb": round(int(peak) / 2**30, 2) if peak else None,
            "limit_hits": int(events.get("max", 0)), "oom_kills": int(events.get("oom_kill", 0))}

  def remove(self) -> None:
    os.rmdir(self.path)


# ---------------------------------------------------------------- driver
def _child(role: str, args, cap: MemoryCap | None = None,
           may_fail: bool = False) -> tuple[dict, list]:
  """Runs `--role role` (in `cap`'s cgroup if given); its JSON and the tree's RSS samples.
  With `may_fail`, a failed child gives {"returncode": rc} and the cgroup's figures."""
  from benchmarks.scale_run import Sampler
  cmd = [sys.executable, "-m", "benchmarks.beyond_memory", "--role", role, "--dir", args.dir,
         "--papers", str(args.papers), "--seeds", str(args.seeds), "--splits", args.splits,
         "--steps", args.steps, f"--label={args.label}"]
  for a in args.beam_arg:
    cmd.append(f"--beam-arg={a}")
  print(f"[bench] {role}{' (capped at %.2f GB)' % (cap.limit / 2**30) if cap else ''} ...",
        flush=True)
  out_file = os.path.join(args.dir, f"{role}-{args.label}.json")
  if os.path.exists(out_file):
    os.remove(out_file)
  proc = subprocess.Popen(cmd + ["--role-out", out_file], env=dict(os.environ, **common.CHILD_ENV),
                          preexec_fn=cap.join if cap else None)
  sampler = Sampler(proc.pid, 1.0)
  sampler.start()
  rc = proc.wait()
  sampler.stop()
  if rc != 0:
    figures = cap.figures() if cap else {}
    if may_fail:
      return {"returncode": rc, **figures}, sampler.samples
    raise SystemExit(f"benchmark child {role!r} failed (exit {rc}; {figures})")
  with open(out_file) as f:
    return json.load(f), sampler.samples


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--dir", default="/tmp/beyondmem", help="tables and run outputs")
  parser.add_argument("--papers", type=int, default=MAG_PAPERS)
  parser.add_argument("--seeds", type=int, default=2000,
                      help="seeds sampled per split (the first of each; 0: all)")
  parser.add_argument("--splits", default="train,eval,test",
                      help="the splits sampled (TF-GNN's Beam sampler groups every edge set "
                      "once per split and sampling op, whatever the number of seeds)")
  parser.add_argument("--steps", default="ingest,validation,sampling",
                      help="the capped run's steps (ingest always runs)")
  parser.add_argument("--label", default="run", help="this run's key in the --out file "
                      "(other runs there are kept)")
  parser.add_argument("--cap-gb", type=float, help="the memory cap (GB, 2**30 bytes); "
                      "default: 80%% of the in-memory ingest's peak RSS")
  parser.add_argument("--beam-arg", action="append", default=None,
                      help="a Beam pipeline arg (default: the components' FnApiRunner args)")
  parser.add_argument("--out", default="benchmarks/results_beyond_memory.json")
  parser.add_argument("--role", help=argparse.SUPPRESS)
  parser.add_argument("--role-out", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.beam_arg is None:
    args.beam_arg = ["--runner=FnApiRunner", "--direct_num_workers=1",
                     "--sdk_container_image=unused"]
  os.makedirs(args.dir, exist_ok=True)

  if args.role:
    if args.role == "generate":
      result = generate(args.dir, args.papers)
    else:
      with open(os.path.join(args.dir, "spec.json")) as f:
        spec = json.load(f)
      result = (inmemory(spec) if args.role == "inmemory"
                else beam_run(spec, os.path.join(args.dir, f"run-{args.label}"), args.seeds,
                              [s for s in args.splits.split(",") if s], args.steps.split(","),
                              args.beam_arg))
    common.write_json(result, args.role_out)
    return 0

  report = {"machine": common.machine(), "papers": args.papers,
            "command": " ".join(["python -m benchmarks.beyond_memory"] + (argv or sys.argv[1:]))}
  print(common.describe_machine(report["machine"]), flush=True)
  start = time.time()
  spec, _ = _child("generate", args)
  report["generate_s"] = round(time.time() - start, 1)
  report["tables_stored_gb"] = round(_stored_bytes(spec["directory"]) / 2**30, 2)
  in_memory, samples = _child("inmemory", args)
  in_memory["peak_rss_tree_gb"] = round(max(s[1] for s in samples) / 2**30, 2)
  report["in_memory"] = in_memory
  cap_gb = args.cap_gb or round(0.8 * in_memory["peak_rss_gb"], 2)
  cap = MemoryCap(int(cap_gb * 2**30), f"beyond_memory_{os.getpid()}")
  try:
    start = time.time()
    beam, beam_samples = _child("beam", args, cap, may_fail=True)
    report["beam"] = beam
    report["beam"]["wall_s"] = round(time.time() - start, 1)
    report["beam"]["completed"] = "returncode" not in beam
    report["cap"] = {"gb": cap_gb, "how": f"cgroup v{cap.version} memory controller "
                     f"({'memory.limit_in_bytes' if cap.version == 1 else 'memory.max'}), a child "
                     "of this process's own cgroup", **cap.figures()}
  finally:
    cap.remove()
  # The same cap on the in-memory ingest of the same tables: it must not fit.
  cap = MemoryCap(int(cap_gb * 2**30), f"beyond_memory_{os.getpid()}_in_memory")
  try:
    capped, samples = _child("inmemory", args, cap, may_fail=True)
    capped.setdefault("returncode", 0)
    capped["peak_rss_tree_gb"] = round(max(s[1] for s in samples) / 2**30, 2)
    report["in_memory_under_cap"] = capped
  finally:
    cap.remove()
  report["beam"]["peak_rss_tree_gb"] = round(max(s[1] for s in beam_samples) / 2**30, 2)
  steps = beam.get("steps", {})
  ends = [("start", beam_samples[0][0])] + [(k, v["ended_at"]) for k, v in steps.items()]
  for (_, begin), (name, end) in zip(ends, ends[1:]):
    inside = [s[1] for s in beam_samples if begin <= s[0] <= end]
    steps[name]["peak_rss_tree_gb"] = round(max(inside) / 2**30, 2) if inside else None
    del steps[name]["ended_at"]
  report["machine"]["load_average_at_end"] = os.getloadavg()
  print(json.dumps({k: report[k] for k in ("in_memory", "cap")}, indent=1))
  print(json.dumps(steps, indent=1))
  runs = {}
  if os.path.exists(args.out):
    with open(args.out) as f:
      runs = json.load(f).get("runs", {})
  runs[args.label] = report
  common.write_json({"runs": runs}, args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
