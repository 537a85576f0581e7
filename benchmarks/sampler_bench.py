"""Sampler benchmark: the fast engine against TF-GNN's samplers, side by side, same graph and spec.

  make bench                                   # the 20k-paper synthetic MAG graph
  .venv/bin/python -m benchmarks.sampler_bench --papers 4000 --beam-seeds 200

One driver process starts one child process per measurement (so each child's peak RSS is its
own) and prints a table; the JSON (absolute figures, ratios, the machine) goes to `--out`.

(a) on Beam (FnApiRunner, in-process, one worker): the fast engine's Beam transform (as the
    SubgraphSampler runs it) vs TF-GNN's Beam sampler (`tfgnn_sampler`'s library calls, as the
    `tfgnn_beam` engine runs them). Each is run twice in its child, on a few seeds and on many:
    the end-to-end rate of the big run includes the fixed cost (building the program, loading
    the graph, starting Beam); the marginal rate, (n_big - n_small) / (t_big - t_small),
    excludes it. TF-GNN's is capped at `--beam-seeds` seeds to keep the bench to minutes.
(b) in memory, one process: the fast engine's `sample()` (serialized tf.Examples) vs TF-GNN's
    in-memory sampler (`InMemUniformEdgesSampler` in a `tf.function` with a fixed signature)
    plus `tfgnn.write_example` on each subgraph. Per core = subgraphs / process CPU seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import time

from benchmarks import common

DEFAULT_FANOUTS = {"cites": 8, "cited_by": 8, "written": 4, "writes": 4, "has_topic": 4,
                   "topic_of": 4}  # pipelines/configs/demo.yaml's


# ------------------------------------------------------------------ children
_peak_rss_mb = common.peak_rss_mb


def build_graph(args) -> dict:
  """The synthetic graph as a Graph artifact directory (reused when it exists)."""
  from tfx_gnn.components import graph_io
  graph_dir = os.path.join(args.workdir, f"graph-{args.papers}", "graph")
  start = time.time()
  if not os.path.exists(os.path.join(graph_dir, graph_io.SCHEMA_FILE)):
    from tfx_gnn.components.graph_ingest import ingest
    from tfx_gnn.pipelines import config as config_lib
    from tfx_gnn.components.graph_ingest import synthetic
    spec = synthetic.generate_tables(os.path.join(args.workdir, f"graph-{args.papers}", "tables"),
                                     num_papers=args.papers, num_classes=8, feature_dim=128,
                                     seed=0)
    graph_io.write_graph(ingest.tables_to_graph(config_lib.TablesSource.model_validate(spec)),
                         graph_dir)
  graph = graph_io.read_graph(graph_dir)
  ids = list(graph.node_sets["paper"].ids)
  for n in {args.small, args.beam_seeds, args.fast_seeds}:
    # Seed files the samplers read as splits named `bench<n>` (the first n papers, cycled).
    rows = "id\n" + "".join(f"{ids[i % len(ids)]}\n" for i in range(n))
    graph_io.write_text(graph_io.seeds_file(graph_dir, f"bench{n}"), rows)
  return {"graph_dir": graph_dir, "seconds": time.time() - start,
          "counts": graph.counts(), "feature_dim": 128}


def _spec(graph_dir: str, fanouts: dict, hops: int):
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.subgraph_sampler import sampling
  return sampling.build_sampling_spec(graph_io.read_schema(graph_dir), "paper", fanouts, hops)


def _beam_pipeline(workdir: str):
  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions
  return beam.Pipeline(options=PipelineOptions(
      ["--runner=FnApiRunner", "--direct_num_workers=1", f"--temp_location={workdir}"]))


def _count_records(prefix: str) -> int:
  import glob
  import tensorflow as tf
  return sum(1 for f in glob.glob(prefix + "*")
             for _ in tf.data.TFRecordDataset(f).as_numpy_iterator())


def beam_run(args, engine: str) -> dict:
  """Two runs (a few seeds, many seeds) of one engine on Beam; times and counts."""
  import shutil
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.subgraph_sampler import fast_beam
  from tfx_gnn.components.subgraph_sampler import sampling
  spec = _spec(args.graph_dir, args.fanouts, args.hops)
  big = args.beam_seeds if engine == "tfgnn_beam" else args.fast_seeds
  runs = []
  for n in (args.small, big):
    out_dir = os.path.join(args.workdir, f"out-{engine}-{n}")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    split, prefix = f"bench{n}", os.path.join(out_dir, "subgraphs")
    fast_beam._CACHE.clear()  # each run loads the graph
    start, cpu = time.time(), time.process_time()
    if engine == "fast":
      with _beam_pipeline(out_dir) as pipeline:
        fast_beam.add_fast_sampling(pipeline, graph_dir=args.graph_dir, spec=spec, seed=0,
                                    batch_size=256, outputs={split: prefix})
    else:
      program_dir = os.path.join(out_dir, "program")
      program, layers_mapping, _ = sampling.prepare_program(
          graph_io.read_schema(args.graph_dir), spec, program_dir)
      with _beam_pipeline(out_dir) as pipeline:
        sampling.add_sampling(pipeline, graph_dir=args.graph_dir, program=program,
                              layers_mapping=layers_mapping, artifacts_dir=program_dir,
                              outputs={split: prefix})
    seconds, cpu_seconds = time.time() - start, time.process_time() - cpu
    written = _count_records(prefix)
    if written != n:
      raise RuntimeError(f"{engine}: {written} subgraphs written for {n} seeds")
    runs.append({"seeds": n, "seconds": seconds, "cpu_seconds": cpu_seconds})
    shutil.rmtree(out_dir, ignore_errors=True)
  small, large = runs
  return {"engine": engine, "runs": runs, "peak_rss_mb": _peak_rss_mb(),
          **_rates(small, large)}


def _rates(small: dict, large: dict) -> dict:
  """End-to-end rates of the big run, and marginal rates (big minus small run: the fixed cost
  cancels), by wall time and by process CPU time (robust to other load on the machine). A
  marginal rate is None when the difference is within noise (not positive)."""
  out = {}
  for clock, suffix in (("seconds", "per_s"), ("cpu_seconds", "per_cpu_s")):
    out[f"end_to_end_{suffix}"] = large["seeds"] / large[clock]
    extra = large[clock] - small[clock]
    out[f"marginal_{suffix}"] = ((large["seeds"] - small["seeds"]) / extra if extra > 0
                                 else None)
  per_seed = (large["seconds"] - small["seconds"]) / max(large["seeds"] - small["seeds"], 1)
  out["fixed_cost_s"] = small["seconds"] - small["seeds"] * max(per_seed, 0.0)
  return out


def in_memory(args) -> dict:
  """The fast engine's `sample()` vs TF-GNN's in-memory sampler + write_example."""
  import numpy as np
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.subgraph_sampler import fast_sampler
  from tfx_gnn.components.subgraph_sampler import tfgnn_reference
  spec = _spec(args.graph_dir, args.fanouts, args.hops)
  graph = graph_io.read_graph(args.graph_dir)
  schema = graph_io.read_schema(args.graph_dir)
  ids = graph.node_sets["paper"].ids
  seeds = ids[np.arange(args.fast_seeds) % len(ids)]
  batch = 512
  result = {}

  start = time.time()
  engine = fast_sampler.FastSampler(graph, spec, seed=0, schema=schema)
  result["fast_setup_s"] = time.time() - start
  engine.sample(seeds[:batch])  # warm-up
  start, cpu = time.time(), time.process_time()
  num_bytes = 0
  for i in range(0, len(seeds), batch):
    num_bytes += sum(len(e) for e in engine.sample(seeds[i:i + batch]))
  seconds, cpu_seconds = time.time() - start, time.process_time() - cpu
  result["fast"] = {"subgraphs": len(seeds), "seconds": seconds, "cpu_seconds": cpu_seconds,
                    "per_s": len(seeds) / seconds, "per_cpu_s": len(seeds) / cpu_seconds,
                    "mean_example_bytes": num_bytes / len(seeds)}

  # TF-GNN's in-memory sampler, as DESIGN.md measured it: a tf.function with a fixed signature.
  pipeline = tfgnn_reference.sampling_pipeline(graph, schema, spec, edge_features=False)
  sample_fn = tf.function(lambda roots: pipeline(tf.RaggedTensor.from_tensor(roots[:, None])),
                          input_signature=[tf.TensorSpec([batch], tf.int64)])
  roots = np.arange(args.fast_seeds) % len(ids)
  usable = len(roots) // batch * batch
  sample_fn(tf.constant(roots[:batch]))  # tracing
  start, cpu = time.time(), time.process_time()
  graphs = [sample_fn(tf.constant(roots[i:i + batch])) for i in range(0, usable, batch)]
  seconds, cpu_seconds = time.time() - start, time.process_time() - cpu
  result["tfgnn_sampling_only"] = {"subgraphs": usable, "seconds": seconds,
                                   "cpu_seconds": cpu_seconds, "per_s": usable / seconds,
                                   "per_cpu_s": usable / cpu_seconds}
  # ... plus tfgnn.write_example on each subgraph (capped: it is the slow part).
  n_write = min(args.write_cap, usable)
  start, cpu = time.time(), time.process_time()
  written = 0
  for graph_tensor in graphs:
    for one in tf.data.Dataset.from_tensors(graph_tensor).unbatch():
      tfgnn.write_example(one).SerializeToString()
      written += 1
      if written == n_write:
        break
    if written == n_write:
      break
  write_seconds, write_cpu = time.time() - start, time.process_time() - cpu
  per_sub = seconds / usable + write_seconds / written
  per_sub_cpu = cpu_seconds / usable + write_cpu / written
  result["tfgnn_with_write_example"] = {"subgraphs_serialized": written,
                                        "serialize_seconds": write_seconds,
                                        "per_s": 1.0 / per_sub, "per_cpu_s": 1.0 / per_sub_cpu}
  result["peak_rss_mb"] = _peak_rss_mb()
  return result


# ------------------------------------------------------------------ driver
machine = common.machine


def _child(role: str, args, extra: list[str]) -> dict:
  return common.child("benchmarks.sampler_bench", role, [
      "--papers", str(args.papers), "--beam-seeds", str(args.beam_seeds),
      "--fast-seeds", str(args.fast_seeds), "--small", str(args.small), "--hops", str(args.hops),
      "--fanouts", json.dumps(args.fanouts), "--write-cap", str(args.write_cap),
      "--workdir", args.workdir] + extra)


def _ratio(a, b):
  return None if a is None or b is None else a / b


def summarize(report: dict) -> None:
  """Adds ratios and targets to `report` and prints the tables."""
  fast, tfgnn = report["beam"]["fast"], report["beam"]["tfgnn_beam"]
  for r in (fast, tfgnn):  # reports written before CPU rates existed
    r.update(_rates(*r["runs"]))
  memory = report["in_memory"]
  report["ratios"] = {
      "beam_end_to_end_fast_over_tfgnn": _ratio(fast["end_to_end_per_s"],
                                                tfgnn["end_to_end_per_s"]),
      "beam_end_to_end_per_cpu_fast_over_tfgnn": _ratio(fast["end_to_end_per_cpu_s"],
                                                        tfgnn["end_to_end_per_cpu_s"]),
      "beam_marginal_fast_over_tfgnn": _ratio(fast["marginal_per_s"], tfgnn["marginal_per_s"]),
      "beam_marginal_per_cpu_fast_over_tfgnn": _ratio(fast["marginal_per_cpu_s"],
                                                      tfgnn["marginal_per_cpu_s"]),
      "beam_peak_rss_fast_over_tfgnn": fast["peak_rss_mb"] / tfgnn["peak_rss_mb"],
      "in_memory_per_core_fast_over_tfgnn_with_write_example":
          memory["fast"]["per_cpu_s"] / memory["tfgnn_with_write_example"]["per_cpu_s"],
      "in_memory_per_core_fast_over_tfgnn_sampling_only":
          memory["fast"]["per_cpu_s"] / memory["tfgnn_sampling_only"]["per_cpu_s"],
  }
  ratios = report["ratios"]
  report["targets"] = {
      "fast_beam_at_least_100x_tfgnn_beam_end_to_end":
          ratios["beam_end_to_end_fast_over_tfgnn"] >= 100,
      "fast_at_least_3000_per_core_with_serialization": memory["fast"]["per_cpu_s"] >= 3000,
  }
  f = lambda x: "n/a" if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:,.1f}")
  fx = lambda x: "n/a" if x is None else f(x) + "x"
  params, counts, m = report["params"], report["graph"]["counts"], report["machine"]
  print(f"\ngraph: {params['papers']:,} papers, nodes {counts['node_sets']}, edges "
        f"{sum(counts['edge_sets'].values()):,}; fanouts {params['fanouts']}, "
        f"hops {params['hops']}")
  print(common.describe_machine(m) + "\n")
  rows = [("(a) Beam, FnApiRunner 1 worker", "seeds", "end-to-end /s", "per CPU s",
           "marginal /s", "marginal per CPU s", "fixed cost s", "peak RSS MB")]
  for name, r in (("fast engine", fast), ("TF-GNN Beam sampler", tfgnn)):
    rows.append((name, r["runs"][1]["seeds"], f(r["end_to_end_per_s"]),
                 f(r["end_to_end_per_cpu_s"]), f(r["marginal_per_s"]),
                 f(r["marginal_per_cpu_s"]), f"{r['fixed_cost_s']:.1f}", f(r["peak_rss_mb"])))
  rows.append(("ratio fast / TF-GNN", "", fx(ratios["beam_end_to_end_fast_over_tfgnn"]),
               fx(ratios["beam_end_to_end_per_cpu_fast_over_tfgnn"]),
               fx(ratios["beam_marginal_fast_over_tfgnn"]),
               fx(ratios["beam_marginal_per_cpu_fast_over_tfgnn"]), "",
               f"{ratios['beam_peak_rss_fast_over_tfgnn']:.2f}x"))
  print(_table(rows) + "\n")
  rows = [("(b) in memory, incl. serialization", "subgraphs/s", "subgraphs/s per core")]
  for name, key in (("fast engine sample() -> tf.Example bytes", "fast"),
                    ("TF-GNN in-memory sampler (sampling only)", "tfgnn_sampling_only"),
                    ("TF-GNN in-memory sampler + write_example", "tfgnn_with_write_example")):
    rows.append((name, f(memory[key]["per_s"]), f(memory[key]["per_cpu_s"])))
  rows.append(("ratio fast / TF-GNN + write_example", "",
               fx(ratios["in_memory_per_core_fast_over_tfgnn_with_write_example"])))
  print(_table(rows))
  print(f"\ntargets: {report['targets']}")


_table = common.table


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--papers", type=int, default=20000, help="synthetic graph size")
  parser.add_argument("--beam-seeds", type=int, default=300,
                      help="seeds for TF-GNN's Beam sampler's big run (it is slow)")
  parser.add_argument("--fast-seeds", type=int, default=20000,
                      help="seeds for the fast engine's big run and the in-memory runs")
  parser.add_argument("--small", type=int, default=20, help="seeds of the small (fixed cost) runs")
  parser.add_argument("--hops", type=int, default=2)
  parser.add_argument("--fanouts", type=json.loads, default=DEFAULT_FANOUTS)
  parser.add_argument("--write-cap", type=int, default=500,
                      help="subgraphs serialized with tfgnn.write_example")
  parser.add_argument("--workdir", default="runs/bench")
  parser.add_argument("--out", default="runs/bench/sampler_bench.json")
  parser.add_argument("--summarize", default="",
                      help="print the tables of an earlier run's JSON and exit")
  parser.add_argument("--role", default="driver", help=argparse.SUPPRESS)
  parser.add_argument("--graph-dir", default="", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  args.workdir = os.path.abspath(args.workdir)

  if args.summarize:
    with open(args.summarize) as f:
      summarize(json.load(f))
    return
  if args.role != "driver":
    role = {"build": build_graph, "fast_beam": lambda a: beam_run(a, "fast"),
            "tfgnn_beam": lambda a: beam_run(a, "tfgnn_beam"), "in_memory": in_memory}
    print(json.dumps(role[args.role](args)))
    return

  os.makedirs(args.workdir, exist_ok=True)
  report = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "params": {"papers": args.papers, "hops": args.hops, "fanouts": args.fanouts,
                       "beam_seeds": args.beam_seeds, "fast_seeds": args.fast_seeds,
                       "small": args.small, "write_cap": args.write_cap}}
  built = _child("build", args, [])
  report["graph"] = built
  graph_args = ["--graph-dir", built["graph_dir"]]
  fast_beam = _child("fast_beam", args, graph_args)
  tfgnn_beam = _child("tfgnn_beam", args, graph_args)
  memory = _child("in_memory", args, graph_args)
  report["beam"] = {"fast": fast_beam, "tfgnn_beam": tfgnn_beam}
  report["in_memory"] = memory
  report["machine"]["load_average_at_end"] = os.getloadavg()
  summarize(report)
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  tmp = args.out + ".tmp"
  with open(tmp, "w") as out:
    json.dump(report, out, indent=2)
  os.replace(tmp, args.out)
  print(f"written: {args.out}")


if __name__ == "__main__":
  main()
