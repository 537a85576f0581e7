"""Dynamic sampling vs batch sampling: test accuracy over seeds, and training throughput.

  .venv/bin/python benchmarks/dynamic_vs_batch.py pipelines/configs/demo.yaml [--seeds 3]
      [--first-seed 0] [--split test] [--modes batch,dynamic] [--set trainer.epochs=8 ...]

Needs a batch-mode run of the config first (`tfx-gnn run CONFIG`): it reads the newest Graph
and Examples under `pipeline.root`. Per seed (`trainer.seed` = 0..N-1) it trains the config's
model twice with `components.gnn_trainer.training.train`: on the Examples' fixed train split
(batch mode), and on fresh subgraphs sampled every epoch from the Graph (dynamic mode,
`components.gnn_trainer.dynamic`); both validate on the same fixed eval split and are scored
with the evaluator's own functions on `--split`. Throughput is train examples per second of
wall and of process CPU time between the end of the first and of the last epoch (validation
included, tracing excluded). Prints one JSON line per run, then the summary.
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

from benchmarks.train_seeds import load, newest


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("config")
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--first-seed", type=int, default=0, help="seeds first..first+N-1")
  parser.add_argument("--split", choices=["eval", "test"], default="test")
  parser.add_argument("--modes", default="batch,dynamic")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
  args = parser.parse_args(argv)
  config = load(args.config, args.set, fresh_model=False)

  import tensorflow as tf
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.gnn_evaluator import evaluation
  from tfx_gnn.components.gnn_trainer import dynamic, training

  pipeline_dir = os.path.join(config.root, "pipeline")
  graph_dir = newest(os.path.join(pipeline_dir, "GraphIngest", "graph", "*"))
  examples_dir = newest(os.path.join(pipeline_dir, "SubgraphSampler", "examples", "*"))
  files = {s: sorted(glob.glob(os.path.join(examples_dir, f"Split-{s}", "*")))
           for s in ("train", "eval", "test")}
  if not files["train"]:
    raise SystemExit(f"{examples_dir} has no train split: run the config in batch mode first")
  schema = graph_io.read_schema_file(graph_io.subgraph_schema_path(examples_dir))
  label = graph_io.read_label(graph_dir)
  train_ids = graph_io.read_seeds(graph_dir, "train")
  num_train = len(train_ids)

  # The dynamic dataset alone: one pass, sampled and serialized, no training.
  provider = dynamic.train_subgraphs(graph_dir, config.sampling, train_ids, shuffle_seed=0)
  start, cpu = time.time(), time.process_time()
  count = sum(1 for _ in provider.get_dataset(tf.distribute.InputContext()))
  sampling = {"what": "dynamic dataset alone (one pass)", "subgraphs": count,
              "per_s": round(count / (time.time() - start)),
              "per_cpu_s": round(count / (time.process_time() - cpu))}
  print(json.dumps(sampling), flush=True)

  results = []
  for seed in range(args.first_seed, args.first_seed + args.seeds):
    for mode in args.modes.split(","):
      trainer_cfg = config.trainer.model_copy(update={"seed": seed})
      marks = []

      def on_epoch(epoch, logs, marks=marks):
        del epoch, logs
        marks.append((time.time(), time.process_time()))

      with tempfile.TemporaryDirectory() as tmp:
        subgraphs = (dynamic.train_subgraphs(graph_dir, config.sampling, train_ids,
                                             shuffle_seed=seed) if mode == "dynamic" else None)
        start = time.time()
        training.train(train_files=files["train"] if mode == "batch" else [],
                       eval_files=files["eval"], subgraph_schema=schema, label=label,
                       model_cfg=config.model, trainer_cfg=trainer_cfg, task_cfg=config.task,
                       model_dir=os.path.join(tmp, "run"), export_dir=os.path.join(tmp, "model"),
                       on_epoch=on_epoch, train_subgraphs=subgraphs)
        train_s = time.time() - start
        labels, logits = evaluation.predict(os.path.join(tmp, "model"), files[args.split],
                                            schema, label)
      metrics = evaluation.classification_metrics(labels, logits, label.num_classes)
      epochs = len(marks) - 1
      row = {"mode": mode, "seed": seed, "split": args.split, "train_s": round(train_s, 1),
             **{k: round(100 * metrics[k], 2) for k in ("accuracy", "macro_f1")}}
      if epochs > 0:
        row["examples_per_s"] = round(epochs * num_train / (marks[-1][0] - marks[0][0]))
        row["examples_per_cpu_s"] = round(epochs * num_train / (marks[-1][1] - marks[0][1]))
      print(json.dumps(row), flush=True)
      results.append(row)

  summary = {"config": args.config, "set": args.set, "split": args.split, "seeds": args.seeds,
             "num_train": num_train, "examples": examples_dir}
  for mode in args.modes.split(","):
    rows = [r for r in results if r["mode"] == mode]
    for key in ("accuracy", "macro_f1", "examples_per_s", "examples_per_cpu_s"):
      values = np.array([r[key] for r in rows if key in r], dtype=float)
      if len(values):
        summary[f"{mode}_{key}"] = f"{values.mean():.2f} ± {values.std():.2f}"
  print(json.dumps(summary, ensure_ascii=False), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
