"""A pipeline run in a fresh process, with TF-GNN and our package traced without autograph (the
default: `models.skip_autograph`), with only TF-GNN skipped (our code converted, as at
2026-12-04 (9)), and with both converted (as before that); variants alternate, one process
each, and the CPU and wall seconds of the run are reported
(issue #21: what a `tfx-gnn run`, a Kubeflow step or a training worker pays before any work).

  .venv/bin/python -m benchmarks.autograph_probe --reps 2 --config tests/configs/tiny.yaml
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

from benchmarks import common

VARIANTS = ("skip_both", "convert_ours", "convert_both")


def run_once(variant: str, config_path: str, root: str) -> dict:
  """One pipeline run in this (fresh) process; the CPU seconds of the run, after imports."""
  import tfx_gnn  # noqa: F401  (the environment TensorFlow needs)
  from tensorflow.python.autograph.core import config as autograph_config
  from tfx_gnn.components.gnn_trainer import models  # noqa: F401  (adds the rule)
  from tfx_gnn.pipelines import config as config_lib
  from tfx_gnn.pipelines import local_runner
  converted = {"skip_both": (), "convert_ours": ("tfx_gnn",),
               "convert_both": ("tfx_gnn", "tensorflow_gnn")}[variant]
  autograph_config.CONVERSION_RULES = tuple(
      r for r in autograph_config.CONVERSION_RULES
      if str(r) not in {f"DoNotConvert rule for {p}" for p in converted})
  shutil.rmtree(root, ignore_errors=True)
  config = config_lib.load_config(config_path, {"pipeline": {"root": root}})
  start, cpu = time.monotonic(), time.process_time()
  summary = local_runner.run(config)
  return {"variant": variant, "seconds": time.monotonic() - start,
          "cpu_seconds": time.process_time() - cpu,
          "component_seconds": summary.get("seconds"),
          "metrics": {k: v for k, v in summary.items() if k.startswith(("test_", "eval_"))}}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--role", default="parent")
  parser.add_argument("--variant", choices=VARIANTS)
  parser.add_argument("--config", default="tests/configs/tiny.yaml")
  parser.add_argument("--root")
  parser.add_argument("--reps", type=int, default=2)
  parser.add_argument("--out", default="runs/bench/autograph_probe.json")
  args = parser.parse_args(argv)
  if args.role == "child":
    print(json.dumps(run_once(args.variant, args.config, args.root)))
    return
  machine = common.machine()
  rows = []
  with tempfile.TemporaryDirectory(prefix="autograph-probe-") as workdir:
    for rep in range(args.reps):
      for variant in VARIANTS if rep % 2 == 0 else VARIANTS[::-1]:
        result = common.child("benchmarks.autograph_probe", "child", [
            "--variant", variant, "--config", args.config,
            "--root", os.path.join(workdir, f"{variant}-{rep}")])
        rows.append({**result, "rep": rep})
  machine["load_average_at_end"] = os.getloadavg()
  summary = {}
  for variant in VARIANTS:
    mine = [r for r in rows if r["variant"] == variant]
    summary[variant] = {k: statistics.median(r[k] for r in mine)
                        for k in ("seconds", "cpu_seconds")}
  ratios = {v: summary[v]["cpu_seconds"] / summary["skip_both"]["cpu_seconds"]
            for v in VARIANTS[1:]}
  print(common.describe_machine(machine))
  print(common.table([("variant", "run s (median)", "run CPU s (median)", "per rep CPU s")] + [
      (v, common.fmt(summary[v]["seconds"]), common.fmt(summary[v]["cpu_seconds"]),
       ", ".join(common.fmt(r["cpu_seconds"]) for r in rows if r["variant"] == v))
      for v in VARIANTS]))
  for v, ratio in ratios.items():
    print(f"CPU of the run, {v} / skip_both: {common.fmt_ratio(ratio)}")
  common.write_json({"machine": machine, "config": args.config, "runs": rows,
                     "median": summary, "cpu_ratio_over_skip_both": ratios}, args.out)


if __name__ == "__main__":
  sys.exit(main())
