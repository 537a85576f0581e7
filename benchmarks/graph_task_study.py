"""Which task defaults work for graph classification and link prediction on graphs nobody
tuned for?

Runs the whole pipeline (`tfx-gnn run`, one fresh process per run) on embedded graphs of
different shapes, with only the data, the task and an epoch budget given (as the shipped
configs do), once per candidate setting, and reports the EVAL metric the blessing is decided
on (the test split is never read):

  graph  graph collections (`data.synthetic_graphs`: classes, feature widths, graph sizes,
         seeds), `graph_multiclass`, 20 epochs, eval accuracy
  link   MAG-shaped graphs (`data.synthetic`: sizes, classes, feature widths, seeds),
         `link_prediction` of `cites`, 4 epochs, eval ROC AUC

  .venv/bin/python -m benchmarks.graph_task_study --task graph \
      --out benchmarks/results_graph_task_study.json
  .venv/bin/python -m benchmarks.graph_task_study --task link \
      --out benchmarks/results_link_task_study.json

Candidates are `--set` overrides of today's defaults; cells already in --out are kept.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Graph collections: (num_classes, feature_dim, min_nodes, max_nodes, num_graphs, seed).
GRAPH_SHAPES = {
    "c4_f8": (4, 8, 8, 20, 1000, 0),
    "c3_f16": (3, 16, 8, 20, 600, 1),
    "c2_f4_big": (2, 4, 20, 40, 600, 2),
    "c4_f32_small": (4, 32, 5, 12, 800, 3),
}
# MAG-shaped graphs: (num_papers, num_classes, feature_dim, seed).
LINK_SHAPES = {
    "p2000_c8_f32": (2000, 8, 32, 1),
    "p1500_c4_f64": (1500, 4, 64, 2),
    "p3000_c16_f16": (3000, 16, 16, 3),
}
LINK_FANOUTS = {"cites": 8, "cited_by": 8, "written": 4, "writes": 4, "has_topic": 4,
                "topic_of": 4}

CANDIDATES = {
    # GraphSAGE's reduce_type pinned: unset, a graph-level task has taken sum since this study.
    "graph": {
        "reduce_mean": ["model.reduce_type=mean"],
        "pool_sum": ["task.pooling=sum", "model.reduce_type=mean"],
        "reduce_sum": ["model.reduce_type=sum"],
        "pool_sum_reduce_sum": ["task.pooling=sum", "model.reduce_type=sum"],
        "pool_sum_no_norm": ["task.pooling=sum", "model.reduce_type=mean",
                             "model.feature_normalization=none"],
        "mt_albis": ["model.template=mt_albis"],
    },
    "link": {  # hadamard has been the default scorer since this study
        "dot_product": ["task.scorer=dot_product"],
        "hadamard": ["task.scorer=hadamard"],
    },
}
METRIC = {"graph": "accuracy", "link": "auc"}


def _config(task: str, shape: str) -> dict:
  if task == "graph":
    classes, dim, lo, hi, graphs, seed = GRAPH_SHAPES[shape]
    return {"data": {"synthetic_graphs": {
                "num_graphs": graphs, "num_classes": classes, "feature_dim": dim,
                "min_nodes": lo, "max_nodes": hi, "seed": seed}},
            "task": {"type": "graph_multiclass"}, "trainer": {"epochs": 20}}
  papers, classes, dim, seed = LINK_SHAPES[shape]
  return {"data": {"synthetic": {"num_papers": papers, "num_classes": classes,
                                 "feature_dim": dim, "seed": seed}},
          "sampling": {"hops": 2, "fanouts": LINK_FANOUTS},
          "task": {"type": "link_prediction", "edge_set": "cites"}, "trainer": {"epochs": 4}}


def run(task: str, shape: str, candidate: str, workdir: str) -> dict:
  config = os.path.join(workdir, f"{shape}.yaml")
  with open(config, "w") as f:  # JSON is YAML
    json.dump({"pipeline": {"name": f"study-{shape}", "root": "unused"},
               **_config(task, shape),
               "evaluation": {"metric": METRIC[task], "lower_bound": 0.0}}, f)
  root = os.path.join(workdir, f"{shape}-{candidate}")
  args = [os.path.join(ROOT, ".venv", "bin", "tfx-gnn"), "run", config, "--quiet",
          "--set", f"pipeline.root={root}"]
  for override in CANDIDATES[task][candidate]:
    args += ["--set", override]
  start = time.monotonic()
  done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
  match = re.search(rf"eval split \(decided the blessing\):.*? {METRIC[task]}=([0-9.]+)",
                    done.stdout)
  if not match:
    raise RuntimeError(f"{shape}/{candidate}: no eval {METRIC[task]} (exit {done.returncode}):"
                       f"\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
  return {"eval": float(match.group(1)), "seconds": round(time.monotonic() - start, 1)}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--task", choices=sorted(CANDIDATES), required=True)
  parser.add_argument("--shapes", help="comma-separated (default: all of the task's)")
  parser.add_argument("--candidates", help="comma-separated (default: all of the task's)")
  parser.add_argument("--out", required=True)
  args = parser.parse_args(argv)
  shapes = (args.shapes or ",".join(GRAPH_SHAPES if args.task == "graph" else LINK_SHAPES)
            ).split(",")
  names = (args.candidates or ",".join(CANDIDATES[args.task])).split(",")
  results = json.load(open(args.out)) if os.path.exists(args.out) else {}
  with tempfile.TemporaryDirectory() as workdir:
    for shape in shapes:
      for candidate in names:
        key = f"{shape}/{candidate}"
        if key in results:
          continue
        results[key] = run(args.task, shape, candidate, workdir)
        print(key, results[key], flush=True)
        with open(args.out + ".tmp", "w") as f:
          json.dump(results, f, indent=1)
        os.replace(args.out + ".tmp", args.out)
  print(f"eval {METRIC[args.task]}", *names, sep="\t")
  for shape in shapes:
    print(shape, *(results.get(f"{shape}/{c}", {}).get("eval", "") for c in names), sep="\t")
  for c in names:
    values = [results[f"{s}/{c}"]["eval"] for s in shapes if f"{s}/{c}" in results]
    print("mean", c, round(sum(values) / max(len(values), 1), 4))
  return 0


if __name__ == "__main__":
  sys.exit(main())
