"""Per-epoch fit rate of `training.train` on the demo's data (input_bench's prepared graph),
trainer variants (`trainer.cache_batches`, `trainer.lazy_embedding_updates`) alternating in one
process; train examples/s over the epochs after the first (issue #21).

  .venv/bin/python -m benchmarks.fit_speed_probe --variants base,both,lazy --reps 2 --epochs 6
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile

from benchmarks import input_bench

VARIANTS = {
    "base": {"cache_batches": False, "lazy_embedding_updates": False},
    "cache": {"cache_batches": True, "lazy_embedding_updates": False},
    "lazy": {"cache_batches": False, "lazy_embedding_updates": True},
    "both": {"cache_batches": True, "lazy_embedding_updates": True},
}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--variants", default="base,both", help=",".join(VARIANTS))
  parser.add_argument("--reps", type=int, default=2)
  parser.add_argument("--epochs", type=int, default=6)
  parser.add_argument("--no-eval", action="store_true", help="train without validation")
  parser.add_argument("--workdir", default="/tmp/inbench")
  args = parser.parse_args(argv)
  prep, config, schema, label = input_bench.demo_training_inputs(args.workdir)
  from tfx_gnn.components.gnn_trainer import training
  times: list[float] = []
  # The trainer's own per-epoch callback, replaced.
  training.EpochProgress = input_bench.epoch_timer(times)
  chosen = args.variants.split(",")
  rates: dict[str, list[float]] = {v: [] for v in chosen}
  n = prep["train_examples"]
  for rep in range(args.reps):
    for v in chosen if rep % 2 == 0 else chosen[::-1]:
      times.clear()
      trainer = config.trainer.model_copy(update={
          "epochs": args.epochs, "early_stopping_patience": None, **VARIANTS[v]})
      with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        training.train(train_files=prep["files"]["train"],
                       eval_files=[] if args.no_eval else prep["files"]["eval"],
                       subgraph_schema=schema, label=label, model_cfg=config.model,
                       trainer_cfg=trainer, task_cfg=config.task,
                       model_dir=os.path.join(tmp, "run"), export_dir=os.path.join(tmp, "model"))
      rates[v].append(n * (len(times) - 1) / sum(times[1:]))
      print(f"{v} rep {rep}: epoch seconds {[round(t, 2) for t in times]}, later epochs "
            f"{rates[v][-1]:.0f} train examples/s", flush=True)
  base = statistics.median(rates[chosen[0]])
  for v in chosen:
    print(f"{v}: median {statistics.median(rates[v]):.0f} examples/s, "
          f"{statistics.median(rates[v]) / base:.2f}x {chosen[0]}")


if __name__ == "__main__":
  main()
