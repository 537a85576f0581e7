"""Which attribution budget (test subgraphs x integrated-gradients steps) is enough?

Issue #21: Attribution should cost <= 15% of training. This study chooses the defaults of
`attribution.num_subgraphs` and `trainer.integrated_gradients.steps` by measurement over
several graph shapes, never by one graph:

  synthetic MAG-shaped graphs (components/graph_ingest/synthetic.py) of several sizes, class
  counts, feature widths and seeds: their planted paper features
  (`synthetic.informative_features`) must be exactly the top-k paper features;
  Cora (/work/shared/data/cora): no planted features, agreement with the reference only.

Per shape, one model is trained with the project's defaults (only data and fanouts given, as
in benchmarks/defaults_study.py; one in-memory-sampling trial of the GnnTuner's machinery)
with the epochs capped at --epochs and the time at --train-seconds (early stopping may end it
sooner; the best validated epoch is exported). Its
integrated-gradients model is exported once per steps value (the steps are baked into the
export), from the same trained model. Then Attribution's own functions
(components/attribution/attribution.py: `attribute` + `summarize`, what
`executor.run_attribution` does before drawing the report) run on the test subgraphs at a
reference budget and at each candidate, in one process, the order alternating between
shapes. Per candidate: wall seconds; whether the planted dims are exactly the top-k; Spearman
correlation of per-feature importance with the reference; top-10 overlap; the largest
difference of a node set's share of importance.

  nice -n 19 .venv/bin/python benchmarks/attribution_study.py \
      --out benchmarks/results_attribution_study.json
  .venv/bin/python benchmarks/attribution_study.py --table   # the table of --out
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# name -> (papers, classes, feature_dim, seed); "cora": the shipped config's tables.
SHAPES = {
    "p1500-c8-d32-s0": (1500, 8, 32, 0),
    "p4000-c8-d32-s1": (4000, 8, 32, 1),
    "p8000-c8-d32-s2": (8000, 8, 32, 2),
    "p4000-c4-d16-s3": (4000, 4, 16, 3),
    "p4000-c16-d32-s4": (4000, 16, 32, 4),
    "p1500-c8-d128-s5": (1500, 8, 128, 5),
    "cora": None,
}
# Cheap shapes first: a study cut short keeps them.
ORDER = ["p1500-c8-d32-s0", "p4000-c4-d16-s3", "p1500-c8-d128-s5", "cora", "p4000-c8-d32-s1",
         "p4000-c16-d32-s4", "p8000-c8-d32-s2"]
# (subgraphs, steps) candidates; steps 32 is today's default, 256 subgraphs too.
CANDIDATES = [(32, 32), (64, 32), (128, 32), (256, 32),
              (64, 16), (128, 16), (256, 16),
              (128, 8), (256, 8)]
REFERENCE = (512, 64)  # or all test subgraphs if fewer
BATCH_SIZE = 32  # attribution.batch_size's default
TOP = 10


def planted_exact(summary, planted: list[int]) -> bool:
  """Are the planted paper dims exactly the top-k of the paper features?"""
  from tfx_gnn.components.attribution import attribution
  ranks = attribution.feature_ranks(summary.features, "paper", "feat")
  return {i for i, r in ranks.items() if r <= len(planted)} == set(planted)


def planted_ranks(summary, planted: list[int]) -> list[int]:
  """The ranks (1 = most important) of the planted dims among the paper features."""
  from tfx_gnn.components.attribution import attribution
  ranks = attribution.feature_ranks(summary.features, "paper", "feat")
  return sorted(ranks[i] for i in planted)


def planted_in_topk(summary, planted: list[int]) -> int:
  """How many of the k planted dims are in the top-k paper features."""
  return sum(r <= len(planted) for r in planted_ranks(summary, planted))


def same_topk(summary, reference, planted) -> bool:
  """Is the set of the top-k features (k: planted dims, else 10) the reference's?"""
  k = len(planted) if planted else TOP
  key = ["node_set", "feature", "index"]
  return (set(map(tuple, summary.features.nlargest(k, "importance")[key].values))
          == set(map(tuple, reference.features.nlargest(k, "importance")[key].values)))


def top_features(summary) -> list[str]:
  rows = summary.features.nlargest(TOP, "importance")
  return [f"{r.node_set}.{r.feature}[{r.index}]" for r in rows.itertuples()]


def agreement(summary, reference) -> dict:
  """Spearman (rank Pearson, so no scipy) of per-feature importance, top-10 overlap and the
  largest node-set share difference against the reference summary."""
  key = ["node_set", "feature", "index"]
  both = reference.features.merge(summary.features, on=key, suffixes=("_ref", ""))
  spearman = float(both["importance_ref"].rank().corr(both["importance"].rank()))
  top_ref = set(map(tuple, reference.features.nlargest(TOP, "importance")[key].values))
  top = set(map(tuple, summary.features.nlargest(TOP, "importance")[key].values))
  shares = reference.node_sets.merge(summary.node_sets, on="node_set", suffixes=("_ref", ""))
  return {"spearman": round(spearman, 4), "top10_overlap": len(top & top_ref) / TOP,
          "max_share_diff": round(float((shares["share"] - shares["share_ref"]).abs().max()), 4)}


def multi_steps_exporter(steps_values: list[int], out_root: str, export_seconds: dict):
  """An IG exporter class that exports the same trained model once per steps value, to
  `<out_root>/steps<N>/integrated_gradients` (a serving-model-dir layout for `attribute`)."""
  from tfx_gnn.components.gnn_trainer import ig_exporter

  class MultiSteps(ig_exporter.IntegratedGradientsExporter):
    def save(self, run_result, export_dir):
      for steps in steps_values:
        self._steps = steps
        start = time.monotonic()
        super().save(run_result, os.path.join(out_root, f"steps{steps}"))
        export_seconds[steps] = round(time.monotonic() - start, 1)

  return MultiSteps


def build_graph(name: str, workdir: str, data_dir: str) -> tuple[str, dict]:
  import common
  import defaults_study
  if name == "cora":
    graph_dir, fanouts, _ = defaults_study.build_graph("cora", workdir, data_dir)
    return graph_dir, fanouts
  papers, classes, dim, seed = SHAPES[name]
  return (common.synthetic_graph(workdir, papers, dim, classes, seed),
          defaults_study.FANOUTS["demo"])


def study_shape(name: str, index: int, args) -> dict:
  import tensorflow as tf
  from tfx_gnn.components import config_base, graph_io
  from tfx_gnn.components.attribution import attribution
  from tfx_gnn.components.gnn_trainer import ig_exporter, training
  from tfx_gnn.components.gnn_trainer.config import ModelConfig, TaskConfig, TrainerConfig
  from tfx_gnn.components.gnn_tuner import tuning
  from tfx_gnn.components.graph_ingest import synthetic
  from tfx_gnn.components.subgraph_sampler.config import SamplingConfig
  shape_dir = os.path.join(args.workdir, "runs", name)
  os.makedirs(shape_dir, exist_ok=True)
  graph_dir, fanouts = build_graph(name, args.workdir, args.data_dir)
  data = tuning.TrialData(graph_dir, shape_dir)
  sampling = SamplingConfig(fanouts=fanouts)
  sampler, _ = data.sampler(sampling)
  # The test subgraphs, salted with the split's name as the SubgraphSampler writes them.
  test_seeds = graph_io.read_seeds(graph_dir, "test")
  ref_n = min(REFERENCE[0], len(test_seeds))
  test_file = os.path.join(shape_dir, "test.tfrecord")
  with tf.io.TFRecordWriter(test_file) as writer:
    for start in range(0, ref_n, sampling.batch_size):
      for example in sampler.sample(test_seeds[start:start + sampling.batch_size], salt="test"):
        writer.write(example)
  # Training: the defaults, epochs capped; the IG exports of every steps value. Kept in
  # <shape_dir>/train.json with the exports, so a rerun of the study reuses the model.
  steps_values = sorted({s for _, s in CANDIDATES} | {REFERENCE[1]})
  ig_root = os.path.join(shape_dir, "ig")
  train_json = os.path.join(shape_dir, "train.json")
  if os.path.exists(train_json):
    trained = json.load(open(train_json))
  else:
    export_seconds: dict = {}
    original = ig_exporter.IntegratedGradientsExporter
    ig_exporter.IntegratedGradientsExporter = multi_steps_exporter(steps_values, ig_root,
                                                                   export_seconds)
    try:
      configs = tuning.TrialConfigs(config_base.validate(ModelConfig, {}),
                                    TrainerConfig(epochs=args.epochs, seed=0), sampling, {})
      started = time.monotonic()
      result = tuning.run_trial(data, configs, config_base.validate(TaskConfig, {}),
                                os.path.join(shape_dir, "trial"),
                                deadline=started + args.train_seconds)
      train_seconds = time.monotonic() - started
    finally:
      ig_exporter.IntegratedGradientsExporter = original
    value, metric = tuning.objective_value(result.history, "accuracy")
    trained = {"train_seconds": round(train_seconds, 1),
               "epochs": len(result.history.get("loss", [])),
               "eval_metric": metric, "eval_value": round(float(value), 4),
               "ig_export_seconds": export_seconds}
    with open(train_json, "w") as f:
      json.dump(trained, f)
  assert training.IG_SUBDIR == "integrated_gradients"
  planted = synthetic.informative_features(SHAPES[name][2]) if SHAPES[name] else None

  def run(n: int, steps: int):
    start, cpu = time.monotonic(), time.process_time()
    subs = attribution.attribute(os.path.join(ig_root, f"steps{steps}"), [test_file],
                                 data.label.node_set, steps=steps, num_subgraphs=n,
                                 batch_size=BATCH_SIZE)
    summary = attribution.summarize(subs)
    # CPU seconds too: the machine is shared, wall seconds swing with the other load.
    return summary, time.monotonic() - start, time.process_time() - cpu

  # Alternate the order between shapes (cheap first, then expensive first), the reference too.
  order = sorted(CANDIDATES, key=lambda c: c[0] * c[1], reverse=bool(index % 2))
  timed = {}
  if index % 2 == 0:
    reference, ref_seconds, ref_cpu = run(ref_n, REFERENCE[1])
  for n, steps in order:
    timed[(n, steps)] = run(min(n, ref_n), steps)
    print(f"[{name}] {n} subgraphs x {steps} steps: {timed[(n, steps)][1]:.1f} s "
          f"({timed[(n, steps)][2]:.1f} CPU s)", flush=True)
  if index % 2 == 1:
    reference, ref_seconds, ref_cpu = run(ref_n, REFERENCE[1])
  rows = []
  for n, steps in CANDIDATES:
    summary, seconds, cpu = timed[(n, steps)]
    rows.append({"num_subgraphs": n, "attributed": summary.num_subgraphs, "steps": steps,
                 "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
                 "planted_exact": planted_exact(summary, planted) if planted else None,
                 "planted_in_topk": planted_in_topk(summary, planted) if planted else None,
                 "same_topk_as_reference": same_topk(summary, reference, planted),
                 **agreement(summary, reference)})
  shape = ({"papers": SHAPES[name][0], "classes": SHAPES[name][1],
            "feature_dim": SHAPES[name][2], "seed": SHAPES[name][3]} if SHAPES[name] else {})
  return {"shape": name, **shape, "test_seeds": len(test_seeds),
          **trained,
          "reference": {"num_subgraphs": ref_n, "steps": REFERENCE[1],
                        "seconds": round(ref_seconds, 2), "cpu_seconds": round(ref_cpu, 2),
                        "planted_exact": planted_exact(reference, planted) if planted else None,
                        "planted_in_topk": planted_in_topk(reference, planted) if planted else None,
                        "planted_ranks": planted_ranks(reference, planted) if planted else None,
                        "top10": top_features(reference)},
          "candidates": rows}


def choose(results: list[dict], min_spearman: float) -> dict:
  """The cheapest candidate (subgraphs x steps) that keeps, on every shape, as many planted
  dims in the top-k as the reference has (so an exact planted ranking stays exact) and
  Spearman >= min_spearman against the reference."""
  ok = []
  for n, steps in CANDIDATES:
    cells = [(c, r["reference"]) for r in results for c in r["candidates"]
             if (c["num_subgraphs"], c["steps"]) == (n, steps)]
    if cells and all((c["planted_in_topk"] or 0) >= (ref["planted_in_topk"] or 0)
                     and c["spearman"] >= min_spearman for c, ref in cells):
      ok.append((n * steps, n, steps))
  if not ok:
    return {"num_subgraphs": None, "steps": None}
  _, n, steps = min(ok)
  return {"num_subgraphs": n, "steps": steps, "min_spearman": min_spearman,
          "passing": [{"num_subgraphs": c[1], "steps": c[2]} for c in sorted(ok)]}


def table(results: list[dict]) -> str:
  """Markdown: per shape and candidate, seconds / planted dims in the top-k / Spearman /
  top-10 overlap."""
  head = "| shape | " + " | ".join(f"{n}x{s}" for n, s in CANDIDATES) + " | reference |"
  lines = [head, "|---" * (len(CANDIDATES) + 2) + "|"]
  for r in results:
    cells = []
    for c in r["candidates"]:
      planted = "-" if c["planted_exact"] is None else (
          f"{c['planted_in_topk']}/{len(r['reference']['planted_ranks'])}")
      cells.append(f"{c['seconds']:.1f} s ({c['cpu_seconds']:.1f} CPU), {planted}, "
                   f"{c['spearman']:.3f}, {c['top10_overlap']:.1f}")
    ref = r["reference"]
    planted = "-" if ref["planted_exact"] is None else (
        f"{ref['planted_in_topk']}/{len(ref['planted_ranks'])}")
    cells.append(f"{ref['num_subgraphs']}x{ref['steps']}: {ref['seconds']:.1f} s, {planted}")
    lines.append(f"| {r['shape']} | " + " | ".join(cells) + " |")
  cpu = [sum(c["cpu_seconds"] for r in results for c in r["candidates"]
             if (c["num_subgraphs"], c["steps"]) == cand) / len(results) for cand in CANDIDATES]
  lines.append("| mean CPU s | " + " | ".join(f"{x:.1f}" for x in cpu) + " | |")
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--shapes", default=",".join(ORDER))
  parser.add_argument("--epochs", type=int, default=20,
                      help="cap on the default epochs (early stopping may end sooner)")
  parser.add_argument("--train-seconds", type=float, default=240,
                      help="training stops (best epoch exported) after this many seconds")
  parser.add_argument("--min-spearman", type=float, default=0.9)
  parser.add_argument("--workdir", default="/tmp/attribution_study")
  parser.add_argument("--data-dir", default="/work/shared/data")
  parser.add_argument("--out", default=os.path.join(HERE, "results_attribution_study.json"))
  parser.add_argument("--table", action="store_true", help="only print the table of --out")
  args = parser.parse_args(argv)
  import common
  report = (json.load(open(args.out)) if os.path.exists(args.out)
            else {"machine": common.machine(), "results": []})
  if not args.table:
    # Resumable: shapes already in --out are kept and not rerun.
    done = {r["shape"] for r in report["results"]}
    names = args.shapes.split(",")
    for i, name in enumerate(names):
      if name in done:
        continue
      report["results"].append(study_shape(name, i, args))
      report["settings"] = {"candidates": CANDIDATES, "reference": REFERENCE,
                            "batch_size": BATCH_SIZE, "epochs_cap": args.epochs}
      report["choice"] = choose(report["results"], args.min_spearman)
      report["machine"]["load_average_at_end"] = os.getloadavg()
      common.write_json(report, args.out)
  print(table(report["results"]))
  print(json.dumps(report.get("choice")))


if __name__ == "__main__":
  sys.path.insert(0, ROOT)
  sys.path.insert(0, HERE)
  main()
