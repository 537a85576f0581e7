"""Where a training epoch's CPU time goes, by TensorFlow op type (issue #21).

Trains `training.train` (the GnnTrainer's trainer, the config's defaults) on input_bench's
prepared demo data, runs TensorFlow's profiler over one epoch after the first (tracing and the
batch cache are done by then: the steady state) and prints each op type's share of the busy
CPU time (the profiler's framework op stats; idle thread time left out).

  .venv/bin/python -m benchmarks.step_profile --out runs/bench/step_profile.json
"""
from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import tempfile

from benchmarks import common, input_bench


def op_type_seconds(xplane: str) -> dict[str, tuple[float, int]]:
  """op type -> (self seconds, occurrences), from a profiler trace (`*.xplane.pb`)."""
  from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin
  data, ok = plugin.xspace_to_tools_data([xplane], "framework_op_stats", {})
  if not ok:
    raise RuntimeError(f"the profiler could not read {xplane}: {data[:200]!r}")
  table = json.loads(data)[0]
  cols = {c["id"]: i for i, c in enumerate(table["cols"])}
  seconds, count = collections.Counter(), collections.Counter()
  for row in table["rows"]:
    cell = [c["v"] if c else None for c in row["c"]]
    seconds[cell[cols["type"]]] += cell[cols["total_self_time"]] / 1e6
    count[cell[cols["type"]]] += int(cell[cols["occurrences"]])
  return {k: (seconds[k], count[k]) for k in seconds}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--epoch", type=int, default=3, help="the epoch profiled (1-based, > 1)")
  parser.add_argument("--workdir", default="/tmp/inbench")
  parser.add_argument("--out", default=None, help="JSON of the shares")
  args = parser.parse_args(argv)
  prep, config, schema, label = input_bench.demo_training_inputs(args.workdir)
  import tensorflow as tf
  from tfx_gnn.components.gnn_trainer import training
  logdir = tempfile.mkdtemp(dir=args.workdir, prefix="profile-")
  epoch_s: list[float] = []

  class ProfileOneEpoch(input_bench.epoch_timer(epoch_s)):
    def on_epoch_begin(self, epoch, logs=None):
      super().on_epoch_begin(epoch, logs)
      if epoch + 1 == args.epoch:
        tf.profiler.experimental.start(logdir)

    def on_epoch_end(self, epoch, logs=None):
      if epoch + 1 == args.epoch:
        tf.profiler.experimental.stop()
      super().on_epoch_end(epoch, logs)

  training.EpochProgress = ProfileOneEpoch  # the trainer's own per-epoch callback, replaced
  trainer = config.trainer.model_copy(update={"epochs": args.epoch,
                                              "early_stopping_patience": None})
  with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
    training.train(train_files=prep["files"]["train"], eval_files=prep["files"]["eval"],
                   subgraph_schema=schema, label=label, model_cfg=config.model,
                   trainer_cfg=trainer, task_cfg=config.task,
                   model_dir=os.path.join(tmp, "run"), export_dir=None)
  [xplane] = glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb"))
  ops = op_type_seconds(xplane)
  ops.pop("IDLE", None)
  busy = sum(s for s, _ in ops.values())
  print(common.describe_machine(common.machine()))
  print(f"epoch seconds {[round(s, 2) for s in epoch_s]}; epoch {args.epoch} profiled: "
        f"{busy:.2f} busy CPU s in {epoch_s[args.epoch - 1]:.2f} s")
  shares = sorted(ops.items(), key=lambda kv: -kv[1][0])
  for name, (seconds, n) in shares[:20]:
    print(f"  {name:28s} {seconds:7.3f} s {100 * seconds / busy:5.1f}%  ({n} ops)")
  if args.out:
    common.write_json({"machine": common.machine(), "epoch_seconds": epoch_s,
                       "busy_seconds": busy,
                       "op_types": {k: {"seconds": s, "ops": n} for k, (s, n) in shares}},
                      args.out)


if __name__ == "__main__":
  main()
