"""Peak RSS and time of one `training.train` of the demo config on input_bench's data (4,000
papers), in a fresh process, for this checkout or any other (`--root`: an older commit's
worktree with its own `make install`), so that the trainer of two commits is compared on the
same examples (issue #21: "peak RSS of training no higher than today's").

  git worktree add /tmp/old b5cbbbd && (cd /tmp/old && make install)
  for rep in 1 2; do
    /tmp/old/.venv/bin/python benchmarks/train_peak_rss.py --root /tmp/old --workdir /tmp/rss/old
    .venv/bin/python benchmarks/train_peak_rss.py --workdir /tmp/rss/new
  done

Each call prepares the data first (in a child process, so that sampling is not in the
measured peak; reused when present) and prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _peak_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--root", default=os.path.dirname(HERE), help="the checkout to measure")
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--epochs", type=int, default=8)
  parser.add_argument("--role", default="train", choices=("train", "prepare"))
  parser.add_argument("--config", default="pipelines/configs/demo.yaml",
                      help="whose model and trainer sections train (relative to --root)")
  args = parser.parse_args(argv)
  root = os.path.abspath(args.root)
  if args.role == "train":  # the data first, in a process of its own
    subprocess.run([sys.executable, os.path.abspath(__file__), "--root", root, "--workdir",
                    args.workdir, "--epochs", str(args.epochs), "--role", "prepare",
                    "--config", args.config],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  sys.path.insert(0, root)
  os.chdir(root)
  try:  # the package layout since 2026-12-03 (issue #20); before, top-level `components`
    import tfx_gnn  # noqa: F401
    from tfx_gnn.components import graph_io
    from tfx_gnn.components.gnn_trainer import training
    schema_path = graph_io.subgraph_schema_path
  except ImportError:
    from components import graph_io
    from components.gnn_trainer import training
    from components.subgraph_sampler.executor import subgraph_schema_path as schema_path
  from benchmarks import input_bench
  bench_args = argparse.Namespace(papers=4000, config=args.config,
                                  epochs=args.epochs, shards=4, workdir=args.workdir)
  prepared = input_bench.prepare(bench_args)
  if args.role == "prepare":
    return
  config = input_bench._config(bench_args)
  schema = graph_io.read_schema_file(schema_path(prepared["examples"]))
  label = graph_io.read_label(prepared["graph_dir"])
  before, start = _peak_mb(), time.time()
  with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
    training.train(train_files=prepared["files"]["train"], eval_files=prepared["files"]["eval"],
                   subgraph_schema=schema, label=label, model_cfg=config.model,
                   trainer_cfg=config.trainer, task_cfg=config.task,
                   model_dir=os.path.join(tmp, "run"), export_dir=os.path.join(tmp, "model"))
  commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
  print(json.dumps({"commit": commit, "config": args.config, "epochs": args.epochs,
                    "peak_rss_mb_before_training": round(before, 1),
                    "peak_rss_mb": round(_peak_mb(), 1),
                    "train_seconds": round(time.time() - start, 1)}))


if __name__ == "__main__":
  main()
