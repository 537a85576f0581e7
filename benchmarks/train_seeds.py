"""Model quality over several seeds, on subgraphs a pipeline run already sampled.

  .venv/bin/python benchmarks/train_seeds.py CONFIG [--seeds 5] [--split eval|test]
      [--set model.units=32 ...]

Finds the newest Graph and sampled Examples under the config's `pipeline.root` (run the
pipeline once first: `tfx-gnn run CONFIG`), trains with the config's model/trainer sections
once per seed (`trainer.seed` = 0..N-1) with `components.gnn_trainer.training.train`, scores
each exported model with the evaluator's own functions on `--split`, and prints every run and
the mean ± std of the task's metrics (fractions in %: e.g. accuracy, micro-F1 and macro-F1,
or a link task's ROC AUC) as JSON lines. Supervised tasks only (DGI: benchmarks/dgi_probe.py).

With a `tuner:` section in the config (or `--hyperparameters DIR`), the model and trainer
settings are the GnnTuner's best (the newest HyperParameters artifact under `pipeline.root`,
as the pipeline's GnnTrainer applies it; its tuned sampling is in the sampled Examples);
`--no-tuned` keeps the config's own.

Choose hyperparameters with `--split eval`; read `--split test` once per final configuration.
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

from tfx_gnn.pipelines import cli
from tfx_gnn.pipelines import config as config_lib


PERCENT = ("accuracy", "micro_f1", "macro_f1", "auc")


def newest(pattern: str) -> str:
  found = sorted(glob.glob(pattern), key=lambda p: int(os.path.basename(p)))
  if not found:
    raise SystemExit(f"nothing matches {pattern}: run `tfx-gnn run CONFIG` first")
  return found[-1]


def load(path: str, sets: list[str], fresh_model: bool) -> config_lib.Config:
  """The config with `--set` overrides; `fresh_model` drops the file's model section first."""
  overrides = cli.parse_overrides(sets)
  if not fresh_model:
    return config_lib.load_config(path, overrides)
  import yaml
  with open(path) as f:
    raw = yaml.safe_load(f)
  raw["model"] = {}
  return config_lib.parse_config(config_lib.merge(raw, overrides), path,
                                 os.path.dirname(os.path.abspath(path)))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("config")
  parser.add_argument("--seeds", type=int, default=5)
  parser.add_argument("--split", choices=["eval", "test"], default="eval")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
  parser.add_argument("--fresh-model", action="store_true",
                      help="ignore the config's model section: only --set model.* keys")
  parser.add_argument("--examples", help="an Examples artifact dir (default: the newest)")
  parser.add_argument("--hyperparameters", help="a GnnTuner HyperParameters artifact dir "
                      "(default with a `tuner:` section: the newest under pipeline.root)")
  parser.add_argument("--no-tuned", action="store_true",
                      help="train the config's own settings even with a `tuner:` section")
  args = parser.parse_args(argv)
  config = load(args.config, args.set, args.fresh_model)

  from tfx_gnn.components import config_base, graph_io, hyperparameters
  from tfx_gnn.components.gnn_trainer.config import ModelConfig
  from tfx_gnn.components.gnn_evaluator import evaluation
  from tfx_gnn.components.gnn_trainer import training

  pipeline_dir = os.path.join(config.root, "pipeline")
  graph_dir = newest(os.path.join(pipeline_dir, "GraphIngest", "graph", "*"))
  examples_dir = args.examples or newest(
      os.path.join(pipeline_dir, "SubgraphSampler", "examples", "*"))
  files = {s: sorted(glob.glob(os.path.join(examples_dir, f"Split-{s}", "*")))
           for s in ("train", "eval", "test")}
  schema = graph_io.read_schema_file(graph_io.subgraph_schema_path(examples_dir))
  label = graph_io.read_label(graph_dir)
  model_cfg, trainer_cfg, tuned_dir = config.model, config.trainer, None
  if not args.no_tuned and (args.hyperparameters or config.tuner is not None):
    tuned_dir = args.hyperparameters or newest(
        os.path.join(pipeline_dir, "GnnTuner", "best_hyperparameters", "*"))
    overrides = hyperparameters.read_overrides(tuned_dir)
    # As the GnnTrainer applies them; `--set` model/trainer keys then override the tuned.
    model_cfg = hyperparameters.apply(model_cfg, overrides, "model", ModelConfig)
    trainer_cfg = hyperparameters.apply(trainer_cfg, overrides, "trainer")
    sets = cli.parse_overrides(args.set)
    if sets.get("model"):
      model_cfg = config_base.validate(
          ModelConfig, {**model_cfg.model_dump(), **sets["model"]})
    if sets.get("trainer"):
      trainer_cfg = trainer_cfg.model_validate({**trainer_cfg.model_dump(), **sets["trainer"]})
    print(json.dumps({"hyperparameters": tuned_dir, "model": model_cfg.model_dump(mode="json"),
                      "trainer": overrides.get("trainer", {})}), flush=True)

  results = []
  for seed in range(args.seeds):
    seeded = trainer_cfg.model_copy(update={"seed": seed})
    with tempfile.TemporaryDirectory() as tmp:
      start = time.time()
      result = training.train(
          train_files=files["train"], eval_files=files["eval"], subgraph_schema=schema,
          label=label, model_cfg=model_cfg, trainer_cfg=seeded, task_cfg=config.task,
          model_dir=os.path.join(tmp, "run"), export_dir=os.path.join(tmp, "model"))
      labels, outputs = evaluation.predict(os.path.join(tmp, "model"), files[args.split],
                                           schema, label, target=result.target)
    # The evaluator's metrics of the task; fractions in %.
    metrics = evaluation.task_metrics(config.task.type, labels, outputs,
                                      label.num_classes if label else 2)
    metrics = {k: round(100 * v, 2) if k in PERCENT else round(v, 4)
               for k, v in metrics.items() if isinstance(v, float)}
    row = {"seed": seed, "split": args.split, "train_s": round(time.time() - start, 1),
           **metrics}
    print(json.dumps(row), flush=True)
    results.append(row)
  summary = {"config": args.config, "set": args.set, "split": args.split,
             "seeds": args.seeds, "examples": examples_dir, "hyperparameters": tuned_dir}
  for k in metrics:
    values = np.array([r[k] for r in results])
    summary[k] = f"{values.mean():.2f} ± {values.std():.2f}"
  print(json.dumps(summary, ensure_ascii=False), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
