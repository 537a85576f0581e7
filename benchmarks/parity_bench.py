"""Engine accuracy parity: a model trained on the fast engine's subgraphs against one trained
on TF-GNN's Beam sampler's (`sampling.engine: tfgnn_beam`), same graph, spec and model.

  make bench BENCH=parity                         # 1,000 papers, 3 seeds per engine
  .venv/bin/python -m benchmarks.parity_bench --papers 2000 --seeds 5

One child process per engine, both at once. For each seed i it samples the graph's train, eval
and test splits on Beam (FnApiRunner, one worker) as the SubgraphSampler executor does (the fast
engine with `sampling.seed` i; TF-GNN's sampler has no seed: each run draws anew), trains with
`components.gnn_trainer.training.train` (the config's model, task and trainer sections,
`trainer.seed` i) and scores the test split with the evaluator's own functions. The table
gives each engine's mean ± std (population std over seeds) and Welch's t-test of the
difference. TF-GNN's Beam sampler is slow (tens of subgraphs/s): keep the graph small.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import time

from benchmarks import common

MODULE = "benchmarks.parity_bench"
ENGINES = ("fast", "tfgnn_beam")
METRICS = ("accuracy", "macro_f1")


def _config(args):
  from tfx_gnn.pipelines import config as config_lib
  overrides = {"data": {"synthetic": {"num_papers": args.papers}}}
  if args.epochs:
    overrides["trainer"] = {"epochs": args.epochs}
  return config_lib.load_config(args.config, overrides)


# ------------------------------------------------------------------ children
def prepare(args) -> dict:
  config = _config(args)
  graph_dir = common.synthetic_graph(args.workdir, args.papers, config.data.synthetic.feature_dim,
                                     config.data.synthetic.num_classes)
  from tfx_gnn.components import graph_io
  return {"graph_dir": graph_dir, "counts": graph_io.read_graph(graph_dir).counts()}


def _sample(engine: str, graph_dir: str, spec, seed: int, out_dir: str, program_state: dict):
  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.subgraph_sampler import fast_beam, fast_sampler, sampling
  outputs = {s: os.path.join(out_dir, f"Split-{s}", "subgraphs") for s in graph_io.SPLITS}
  options = PipelineOptions(["--runner=FnApiRunner", "--direct_num_workers=1",
                             f"--temp_location={out_dir}"])
  schema = graph_io.read_schema(graph_dir)
  if engine == "fast":
    with beam.Pipeline(options=options) as pipeline:
      fast_beam.add_fast_sampling(pipeline, graph_dir=graph_dir, spec=spec, seed=seed,
                                  batch_size=256, outputs=outputs)
    return fast_sampler.subgraph_schema(schema, spec)
  if not program_state:  # the program does not depend on the seed: build it once
    program_dir = os.path.join(os.path.dirname(out_dir), "tfgnn-program")
    shutil.rmtree(program_dir, ignore_errors=True)
    program, layers_mapping, subgraph_schema = sampling.prepare_program(schema, spec,
                                                                        program_dir)
    program_state.update(program=program, layers_mapping=layers_mapping,
                         schema=subgraph_schema, dir=program_dir)
  with beam.Pipeline(options=options) as pipeline:
    sampling.add_sampling(pipeline, graph_dir=graph_dir, program=program_state["program"],
                          layers_mapping=program_state["layers_mapping"],
                          artifacts_dir=program_state["dir"], outputs=outputs)
  return program_state["schema"]


def run_engine(args) -> dict:
  import glob
  import tempfile
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.gnn_evaluator import evaluation
  from tfx_gnn.components.gnn_trainer import training
  from tfx_gnn.components.subgraph_sampler import sampling
  config = _config(args)
  engine = args.role.split(":", 1)[1]
  schema = graph_io.read_schema(args.graph_dir)
  label = graph_io.read_label(args.graph_dir)
  spec = sampling.build_sampling_spec(schema, label.node_set, config.sampling.fanouts,
                                      config.sampling.hops)
  base = os.path.join(args.workdir, f"parity-{engine}")
  os.makedirs(base, exist_ok=True)
  program_state: dict = {}
  results = []
  for seed in range(args.seeds):
    out_dir = os.path.join(base, f"seed{seed}")
    shutil.rmtree(out_dir, ignore_errors=True)
    start, cpu = time.time(), time.process_time()
    subgraph_schema = _sample(engine, args.graph_dir, spec, seed, out_dir, program_state)
    sample_s, sample_cpu = time.time() - start, time.process_time() - cpu
    files = {s: sorted(glob.glob(os.path.join(out_dir, f"Split-{s}", "*")))
             for s in graph_io.SPLITS}
    trainer_cfg = config.trainer.model_copy(update={"seed": seed})
    start = time.time()
    with tempfile.TemporaryDirectory(dir=base) as tmp:
      training.train(train_files=files["train"], eval_files=files["eval"],
                     subgraph_schema=subgraph_schema, label=label, model_cfg=config.model,
                     trainer_cfg=trainer_cfg, task_cfg=config.task,
                     model_dir=os.path.join(tmp, "run"), export_dir=os.path.join(tmp, "model"))
      labels, logits = evaluation.predict(os.path.join(tmp, "model"), files["test"],
                                          subgraph_schema, label)
    metrics = evaluation.classification_metrics(labels, logits, label.num_classes)
    row = {"seed": seed, "sample_s": sample_s, "sample_cpu_s": sample_cpu,
           "train_s": time.time() - start, "test_examples": metrics["num_examples"],
           **{k: metrics[k] for k in METRICS}}
    print(f"[parity_bench] {engine} seed {seed}: {json.dumps(row)}", flush=True)
    results.append(row)
    shutil.rmtree(out_dir, ignore_errors=True)
  return {"engine": engine, "runs": results, "peak_rss_mb": common.peak_rss_mb()}


# ------------------------------------------------------------------ driver
def summarize(report: dict) -> None:
  """Adds means, stds and Welch's t-tests to `report` and prints the table."""
  import numpy as np
  from scipy import stats
  values = {e: {m: np.array([r[m] for r in report["engines"][e]["runs"]]) for m in METRICS}
            for e in ENGINES}
  report["stats"] = {}
  for m in METRICS:
    a, b = values["fast"][m], values["tfgnn_beam"][m]
    test = stats.ttest_ind(a, b, equal_var=False)
    report["stats"][m] = {
        **{f"{e}_mean": float(values[e][m].mean()) for e in ENGINES},
        **{f"{e}_std": float(values[e][m].std()) for e in ENGINES},
        "difference": float(a.mean() - b.mean()), "welch_p": float(test.pvalue)}
  report["same_within_noise"] = bool(report["stats"]["accuracy"]["welch_p"] > 0.05)
  p = report["params"]
  print(f"\ngraph: {p['papers']:,} papers, nodes {report['graph']['counts']['node_sets']}; "
        f"config {p['config']}; {p['seeds']} seeds per engine; test split "
        f"{report['engines']['fast']['runs'][0]['test_examples']} papers")
  print(common.describe_machine(report["machine"]) + "\n")
  rows = [("engine", "test accuracy %", "test macro-F1 %", "sampling s (CPU s) per seed",
           "training s per seed")]
  names = {"fast": "fast engine", "tfgnn_beam": "TF-GNN Beam sampler"}
  for e in ENGINES:
    runs = report["engines"][e]["runs"]
    s = report["stats"]
    rows.append((names[e], f"{100 * s['accuracy'][e + '_mean']:.2f} ± "
                           f"{100 * s['accuracy'][e + '_std']:.2f}",
                 f"{100 * s['macro_f1'][e + '_mean']:.2f} ± {100 * s['macro_f1'][e + '_std']:.2f}",
                 f"{np.mean([r['sample_s'] for r in runs]):.1f} "
                 f"({np.mean([r['sample_cpu_s'] for r in runs]):.1f})",
                 f"{np.mean([r['train_s'] for r in runs]):.1f}"))
  rows.append(("difference (Welch p)",
               f"{100 * s['accuracy']['difference']:+.2f} (p={s['accuracy']['welch_p']:.2f})",
               f"{100 * s['macro_f1']['difference']:+.2f} (p={s['macro_f1']['welch_p']:.2f})",
               "", ""))
  print(common.table(rows))
  print(f"\nsame accuracy within noise (Welch p > 0.05): {report['same_within_noise']}")


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--papers", type=int, default=1000, help="synthetic graph size")
  parser.add_argument("--config", default="pipelines/configs/demo.yaml",
                      help="sampling, model, task and trainer sections")
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--epochs", type=int, default=0, help="override trainer.epochs")
  parser.add_argument("--workdir", default="runs/bench")
  parser.add_argument("--out", default="runs/bench/parity_bench.json")
  parser.add_argument("--summarize", default="", help="reprint an earlier run's JSON and exit")
  parser.add_argument("--role", default="driver", help=argparse.SUPPRESS)
  parser.add_argument("--graph-dir", default="", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  args.workdir = os.path.abspath(args.workdir)
  if args.summarize:
    with open(args.summarize) as f:
      summarize(json.load(f))
    return
  if args.role == "prepare":
    print(json.dumps(prepare(args)))
    return
  if args.role.startswith("engine:"):
    print(json.dumps(run_engine(args)))
    return
  os.makedirs(args.workdir, exist_ok=True)
  report = {"machine": common.machine(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "params": {"papers": args.papers, "config": args.config, "seeds": args.seeds,
                       "epochs": args.epochs}}
  base = ["--papers", str(args.papers), "--config", args.config, "--seeds", str(args.seeds),
          "--epochs", str(args.epochs), "--workdir", args.workdir]
  report["graph"] = common.child(MODULE, "prepare", base)
  # The two engines' children run at the same time (accuracy, not speed, is measured here).
  with concurrent.futures.ThreadPoolExecutor(len(ENGINES)) as pool:
    futures = {e: pool.submit(common.child, MODULE, f"engine:{e}",
                              base + ["--graph-dir", report["graph"]["graph_dir"]])
               for e in ENGINES}
    report["engines"] = {e: f.result() for e, f in futures.items()}
  report["machine"]["load_average_at_end"] = os.getloadavg()
  summarize(report)
  common.write_json(report, args.out)


if __name__ == "__main__":
  main()
