"""Multi-worker vs single-worker training: test accuracy over seeds, and examples/s.

  .venv/bin/python -m benchmarks.multi_worker CONFIG [--seeds 3] [--workers 1 2]
      [--set trainer.epochs=4 ...]

On the subgraphs a `tfx-gnn run CONFIG` already sampled under its `pipeline.root` (the newest
Graph and Examples), trains once per seed (`trainer.seed` = 0..N-1) and per worker count:
1 = the default strategy in this process (what a plain run does); N > 1 =
`trainer.strategy: multi_worker_mirrored, num_workers: N` through the launcher the pipeline
uses (components/gnn_trainer/distributed.py: N local processes, TF_CONFIG on localhost).
Scores each chief export on the test split with the evaluator's own functions, and prints a
JSON line per run and a summary per worker count: accuracy mean ± std (%), training examples/s
(epochs x train examples / wall seconds inside `training.train`, imports excluded; the
slowest worker) and CPU seconds (summed over workers).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from benchmarks import train_seeds


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("config")
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
  args = parser.parse_args(argv)
  config = train_seeds.load(args.config, args.set, fresh_model=False)

  from tfx_gnn.components import graph_io
  from tfx_gnn.components.gnn_evaluator import evaluation
  from tfx_gnn.components.gnn_trainer import distributed, training

  pipeline_dir = os.path.join(config.root, "pipeline")
  graph_dir = train_seeds.newest(os.path.join(pipeline_dir, "GraphIngest", "graph", "*"))
  examples_dir = train_seeds.newest(
      os.path.join(pipeline_dir, "SubgraphSampler", "examples", "*"))
  files = {s: sorted(glob.glob(os.path.join(examples_dir, f"Split-{s}", "*")))
           for s in ("train", "eval", "test")}
  schema = graph_io.read_schema_file(graph_io.subgraph_schema_path(examples_dir))
  label = graph_io.read_label(graph_dir)
  num_train = training.count_examples(files["train"])

  rows = []
  for workers in args.workers:
    for seed in range(args.seeds):
      update = {"seed": seed}
      if workers > 1:
        update.update(strategy="multi_worker_mirrored", num_workers=workers)
      trainer_cfg = config.trainer.model_copy(update=update)
      with tempfile.TemporaryDirectory() as tmp:
        kwargs = dict(train_files=files["train"], eval_files=files["eval"],
                      subgraph_schema=schema, label=label, model_cfg=config.model,
                      trainer_cfg=trainer_cfg, task_cfg=config.task,
                      model_dir=os.path.join(tmp, "run"), export_dir=os.path.join(tmp, "model"))
        start = time.monotonic()
        if workers > 1:
          stats = []
          distributed.launch_local_workers(workers, kwargs, stats=stats)
          train_s = max(s["train_s"] for s in stats)
          cpu_s = sum(s["cpu_s"] for s in stats)
        else:
          cpu_start = time.process_time()
          training.train(**kwargs)
          train_s, cpu_s = time.monotonic() - start, time.process_time() - cpu_start
        total_s = time.monotonic() - start
        labels, logits = evaluation.predict(os.path.join(tmp, "model"), files["test"], schema,
                                            label)
      metrics = evaluation.classification_metrics(labels, logits, label.num_classes)
      row = {"workers": workers, "seed": seed, "accuracy": round(100 * metrics["accuracy"], 2),
             "macro_f1": round(100 * metrics["macro_f1"], 2),
             "train_s": round(train_s, 1), "cpu_s": round(cpu_s, 1),
             "total_s": round(total_s, 1),
             "examples_per_s": round(trainer_cfg.epochs * num_train / train_s, 1)}
      print(json.dumps(row), flush=True)
      rows.append(row)
  for workers in args.workers:
    mine = [r for r in rows if r["workers"] == workers]
    acc = np.array([r["accuracy"] for r in mine])
    eps = np.array([r["examples_per_s"] for r in mine])
    print(json.dumps({"config": args.config, "set": args.set, "workers": workers,
                      "seeds": args.seeds, "accuracy": f"{acc.mean():.2f} ± {acc.std():.2f}",
                      "examples_per_s": f"{eps.mean():.0f} ± {eps.std():.0f}",
                      "cpu_s": round(float(np.mean([r["cpu_s"] for r in mine])), 1),
                      "train_examples": num_train, "examples": examples_dir},
                     ensure_ascii=False), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
