"""Which default model, trainer and sampling settings work on graphs nobody tuned for?

Trains a few candidate default settings on graphs of different shapes, with only the data and
fanouts given (as a new user would), and reports the EVAL accuracy (the test split is never
read) at the validated epoch with the lowest eval loss (the weights the trainer exports):

  demo60   the embedded MAG-shaped graph (2,000 papers, 8 classes), 60% of papers labelled
  demo2    the same with 2% labelled (40 train papers)
  cora     Cora (/work/shared/data/cora, pipelines/configs/cora.yaml's data section)
  acm      ACM, labels on papers, 60 train papers (pipelines/configs/acm.yaml's data section)
  av2      synthetic: labels on authors, signal on venues (author -> paper -> venue: 2 hops)
  av4      synthetic: labels on authors, signal on the venue's other papers (3-4 hops)
           (components/graph_ingest/synthetic.py: generate_author_venue_tables; its generating
           rule's accuracy is reported beside)

Each training is one GnnTuner trial (components/gnn_tuner/tuning.py: in-memory sampling every
epoch with the fast engine, TF-GNN's Runner, eval on fixed eval subgraphs).

  nice -n 10 .venv/bin/python benchmarks/defaults_study.py --seeds 1 \
      --out benchmarks/results_defaults.json
  # more seeds of two candidates (cells already in --out are kept):
  nice -n 19 .venv/bin/python benchmarks/defaults_study.py --candidates sage,es \
      --first-seed 1 --seeds 2 --out benchmarks/results_defaults.json
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

# Fanouts as a user would give them (the only sampling setting besides the data).
FANOUTS = {
    "demo": {"cites": 8, "cited_by": 8, "written": 4, "writes": 4, "has_topic": 4,
             "topic_of": 4},
    "cora": {"cites": 10},
    "acm": {"written_by": 10, "writes": 10, "has_subject": 1, "subject_of": 10},
    "av": {"writes": 10, "written_by": 1, "published_in": 1, "publishes": 10},
}

# Candidate defaults: (model, trainer, sampling) overrides of today's defaults. Each pins
# what it measures (the defaults have changed since, see `final`).
EARLY_STOPPING = {"epochs": 300, "early_stopping_patience": 15, "validation_freq": 1}
# The model defaults before GraphSAGE became the default template (2026-12-03 (2)).
MT_ALBIS = {"template": "mt_albis", "feature_normalization": "none", "input_dropout_rate": 0.0}
# The defaults before this study.
OLD_DEFAULTS = ({**MT_ALBIS, "state_dropout_rate": 0.0},
                {"epochs": 5, "learning_rate": 1e-3, "weight_decay": 0.0,
                 "early_stopping_patience": None}, {"hops": 2})
# GraphSAGE with sum-normalized features and dropout 0.5 / 0.2 (the defaults since
# 2026-12-03 (2)), the trainer of the `es` candidates, and the tuner's 128-unit start point.
SAGE = {"template": "graph_sage", "feature_normalization": "sum", "state_dropout_rate": 0.5,
        "input_dropout_rate": 0.2}
ES_TRAINER = {**EARLY_STOPPING, "learning_rate": 0.005, "weight_decay": 5e-4}
SAGE_MEAN_128 = {**SAGE, "units": 128, "reduce_type": "mean", "id_embeddings": False,
                 "input_dropout_rate": 0.5}
CANDIDATES = {
    # The old defaults: 5 epochs at lr 1e-3, id embeddings, 2 hops.
    "current": OLD_DEFAULTS,
    # The defaults as they are now (components/gnn_trainer/config.py): `sage` below since
    # 2026-12-03 (2), `es` before.
    "final": ({}, {}, {}),
    # `es` for a fixed number of epochs, no early stopping (what training does without an
    # eval split): the eval accuracy of every epoch is kept (`eval_by_epoch`), so the fixed
    # epoch count for graphs without an eval split is read off it.
    "fixed60": ({**MT_ALBIS, "state_dropout_rate": 0.2},
                {"epochs": 60, "early_stopping_patience": None, "validation_freq": 1,
                 "learning_rate": 0.005, "weight_decay": 5e-4}, {}),
    # `es` with the template and input settings the tuner picked on Cora and av4 and acm.yaml
    # uses: GraphSAGE, sum-normalized features, stronger dropout (the defaults since
    # 2026-12-03 (2)).
    "sage": (SAGE, ES_TRAINER, {}),
    # `sage` with 3 rounds (av4's relation paths sample 4 hops; the venue's other papers are
    # 3 away), with and without id embeddings.
    "sage_r3": ({**SAGE, "num_rounds": 3}, ES_TRAINER, {}),
    "sage_r3_noid": ({**SAGE, "num_rounds": 3, "id_embeddings": False}, ES_TRAINER, {}),
    # The GnnTuner's `graph_sage_mean_128` start point with 3 and 4 rounds.
    "sage128_r3": ({**SAGE_MEAN_128, "num_rounds": 3}, ES_TRAINER, {}),
    "sage128_r4": ({**SAGE_MEAN_128, "num_rounds": 4}, ES_TRAINER, {}),
    # Early stopping on eval loss (best weights exported), lr 5e-3, dropout, weight decay,
    # hops from the relation paths, MtAlbis (the defaults from the first study until
    # 2026-12-03 (2)).
    "es": ({**MT_ALBIS, "state_dropout_rate": 0.2},
           {**EARLY_STOPPING, "learning_rate": 0.005, "weight_decay": 5e-4}, {}),
    # ... and featureless node sets relay messages instead of learning id embeddings.
    "es_noid": ({**MT_ALBIS, "state_dropout_rate": 0.2, "id_embeddings": False},
                {**EARLY_STOPPING, "learning_rate": 0.005, "weight_decay": 5e-4}, {}),
    # es_noid with 2 hops instead of the relation-path hops (4 on the author graphs).
    "es_noid_h2": ({**MT_ALBIS, "state_dropout_rate": 0.2, "id_embeddings": False},
                   {**EARLY_STOPPING, "learning_rate": 0.005, "weight_decay": 5e-4},
                   {"hops": 2}),
    # ... and L2-normalized input features, stronger dropout.
    "es_noid_l2": ({**MT_ALBIS, "state_dropout_rate": 0.5, "input_dropout_rate": 0.2,
                    "id_embeddings": False, "feature_normalization": "l2"},
                   {**EARLY_STOPPING, "learning_rate": 0.005, "weight_decay": 5e-4}, {}),
}


def build_graph(name: str, workdir: str,
                data_dir: str = "/work/shared/data") -> tuple[str, dict, dict]:
  """(graph dir, fanouts, info) of a study graph, ingested once into `workdir`."""
  from tfx_gnn.components.graph_ingest import ingest, synthetic
  from tfx_gnn.pipelines import config as config_lib
  base = "demo" if name.startswith("demo") else "av" if name.startswith("av") else name
  graph_dir = os.path.join(workdir, base, "graph")
  info = {}
  if base == "av":
    graph_dir = os.path.join(workdir, name, "graph")
    spec, info["rule_accuracy"], _ = synthetic.generate_author_venue_tables(
        os.path.join(workdir, name, "tables"), signal_hops=int(name[2:]), seed=0)
    data = {"tables": spec}
  elif base == "demo":
    data = {"synthetic": {"num_papers": 2000, "num_classes": 8, "feature_dim": 32, "seed": 0}}
  else:  # the shipped config's tables, from --data-dir (its relative path assumes /work/main)
    data = config_lib.load_config(
        os.path.join(ROOT, "pipelines", "configs", f"{base}.yaml")).data.model_dump()
    data["tables"]["directory"] = os.path.join(data_dir, base)
  if not os.path.exists(os.path.join(graph_dir, "graph_info.json")):
    ingest.ingest(data, graph_dir, os.path.join(workdir, name, "scratch"))
  if name == "demo2":
    graph_dir = few_labels_copy(graph_dir, os.path.join(workdir, name, "graph"), 40)
  return graph_dir, FANOUTS[base], info


def few_labels_copy(graph_dir: str, out_dir: str, num_train: int) -> str:
  """A copy of a Graph artifact whose train split is a seeded subset of `num_train` of its
  train seeds (the rest of the graph, eval and test unchanged), so that trials and the tuner
  see the same few labels."""
  import shutil
  import numpy as np
  from tfx_gnn.components import graph_io
  if os.path.exists(os.path.join(out_dir, "graph_info.json")):
    return out_dir
  train = graph_io.read_seeds(graph_dir, "train")
  subset = np.random.default_rng(0).choice(train, num_train, replace=False)
  shutil.copytree(graph_dir, out_dir + ".tmp", dirs_exist_ok=True)
  with open(graph_io.seeds_file(out_dir + ".tmp", "train"), "w") as f:
    f.write("id\n" + "".join(f"{i}\n" for i in subset))
  info_path = os.path.join(out_dir + ".tmp", "graph_info.json")
  info = json.load(open(info_path))
  info.setdefault("splits", {})["train"] = num_train
  with open(info_path, "w") as f:
    json.dump(info, f, indent=1)
  os.replace(out_dir + ".tmp", out_dir)
  return out_dir


def run(args) -> list[dict]:
  from tfx_gnn.components import config_base
  from tfx_gnn.components.gnn_trainer.config import ModelConfig, TaskConfig, TrainerConfig
  from tfx_gnn.components.gnn_tuner import tuning
  from tfx_gnn.components.subgraph_sampler import relation_paths
  from tfx_gnn.components.subgraph_sampler.config import SamplingConfig
  # Resumable: runs already in --out are kept and not repeated.
  rows = json.load(open(args.out)) if args.out and os.path.exists(args.out) else []
  done = {(r["graph"], r["candidate"], r["seed"]) for r in rows}
  seeds = range(args.first_seed, args.first_seed + args.seeds)
  for name in args.graphs.split(","):
    if all((name, c, s) in done for c in args.candidates.split(",") for s in seeds):
      continue
    graph_dir, fanouts, info = build_graph(name, args.workdir, args.data_dir)
    os.makedirs(os.path.join(args.workdir, name), exist_ok=True)
    data = tuning.TrialData(graph_dir, os.path.join(args.workdir, name))
    if args.eval_limit and len(data.eval_seeds) > args.eval_limit:
      data.eval_seeds = data.eval_seeds[:args.eval_limit]
    for cand in args.candidates.split(","):
      model_over, trainer_over, sampling_over = CANDIDATES[cand]
      for seed in seeds:
        if (name, cand, seed) in done:
          continue
        configs = tuning.trial_configs(
            {}, config_base.validate(ModelConfig, model_over),
            TrainerConfig(**trainer_over, seed=seed),
            SamplingConfig(fanouts=fanouts, **sampling_over))
        started = time.monotonic()
        result = tuning.run_trial(data, configs, config_base.validate(TaskConfig, {}),
                                  os.path.join(args.workdir, name, f"{cand}-{seed}"))
        value, metric = tuning.objective_value(result.history, "accuracy")
        row = {"graph": name, "candidate": cand, "seed": seed, "eval_accuracy": value,
               "metric": metric, "epochs": len(result.history.get("loss", [])),
               "hops": configs.sampling.hops or relation_paths.hops_for_schema(
                   data.schema, data.label.node_set, fanouts),
               "train_seeds": len(data.train_seeds), "eval_seeds": len(data.eval_seeds),
               "seconds": round(time.monotonic() - started, 1),
               **info}
        if configs.trainer.early_stopping_patience is None:  # fixed epochs: each one's figure
          row["eval_by_epoch"] = [round(float(v), 4) for v in result.history.get(metric, [])]
        print(json.dumps(row), flush=True)
        rows.append(row)
        if args.out:  # after every run: a long study that is stopped keeps what it measured
          with open(args.out + ".tmp", "w") as f:
            json.dump(rows, f, indent=1)
          os.replace(args.out + ".tmp", args.out)
  return rows


def tune(args) -> list[dict]:
  """A short GnnTuner search per graph (its default space, plus hops 2 or the relation
  paths' where those are more), for the
  "tuned" column: the best trial's eval accuracy."""
  from tfx_gnn.components import config_base
  from tfx_gnn.components.gnn_trainer.config import ModelConfig, TaskConfig, TrainerConfig
  from tfx_gnn.components.gnn_tuner import tuning
  from tfx_gnn.components.gnn_tuner.config import SearchSpace, TunerConfig
  from tfx_gnn.components.subgraph_sampler.config import SamplingConfig
  rows = []
  for name in args.graphs.split(","):
    graph_dir, fanouts, info = build_graph(name, args.workdir, args.data_dir)
    if args.eval_limit:
      raise SystemExit("--tune runs on whole eval splits: give --eval-limit 0")
    # Hops searched only where the relation paths want more than 2 (Cora's 1,433-d papers at
    # 4 hops of fanout 10 would be ~64 MB per subgraph).
    from tfx_gnn.components.subgraph_sampler import relation_paths
    from tfx_gnn.components import graph_io
    path_hops = relation_paths.hops_for_schema(graph_io.read_schema(graph_dir),
                                               graph_io.read_label(graph_dir).node_set, fanouts)
    space = {"hops": [2, path_hops] if path_hops > 2 else None, **json.loads(args.space)}
    result = tuning.tune(
        graph_dir, tuner=TunerConfig(trials=args.tune, max_minutes=args.tune_minutes,
                                     search_space=SearchSpace(**space)),
        model=config_base.validate(ModelConfig, json.loads(args.model)),
        trainer=TrainerConfig(**EARLY_STOPPING), task=config_base.validate(TaskConfig, {}),
        sampling=SamplingConfig(**{"fanouts": fanouts, **json.loads(args.sampling)}))
    row = {"graph": name, "candidate": f"tuned({args.tune})", "seed": 0,
           "eval_accuracy": result.best_value, "metric": result.metric,
           "epochs": result.trials[result.best_trial].get("epochs", 0),
           "best": result.best, "seconds": round(result.wall_seconds, 1),
           "trials": len(result.trials), "space": space, **info}
    print(json.dumps(row), flush=True)
    rows.append(row)
    if args.out:  # after every graph, as run() does
      previous = json.load(open(args.out)) if os.path.exists(args.out) else []
      with open(args.out + ".tmp", "w") as f:
        json.dump(previous + [row], f, indent=1)
      os.replace(args.out + ".tmp", args.out)
  return rows


def table(rows: list[dict]) -> str:
  """Markdown: eval accuracy (mean ± sample std over seeds) per graph and candidate."""
  import numpy as np
  graphs = list(dict.fromkeys(r["graph"] for r in rows))
  cands = list(dict.fromkeys(r["candidate"] for r in rows))
  lines = ["| graph | " + " | ".join(cands) + " |", "|---" * (len(cands) + 1) + "|"]
  for g in graphs:
    cells = []
    for c in cands:
      vals = [r["eval_accuracy"] for r in rows if r["graph"] == g and r["candidate"] == c]
      epochs = [r["epochs"] for r in rows if r["graph"] == g and r["candidate"] == c]
      cells.append(f"{100 * np.mean(vals):.1f}" + (f" ± {100 * np.std(vals, ddof=1):.1f}"
                                                   if len(vals) > 1 else "")
                   + f" ({int(np.mean(epochs))} ep)" if vals else "-")
    lines.append(f"| {g} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--graphs", default="demo60,demo2,cora,acm,av2,av4")
  parser.add_argument("--candidates", default="current,es,es_noid,es_noid_l2")
  parser.add_argument("--seeds", type=int, default=1, help="seeds per cell")
  parser.add_argument("--first-seed", type=int, default=0,
                      help="the first trainer.seed (cells already in --out are not rerun)")
  parser.add_argument("--eval-limit", type=int, default=500,
                      help="at most this many eval seeds per graph (memory, time)")
  parser.add_argument("--workdir", default="/tmp/defaults_study")
  parser.add_argument("--data-dir", default="/work/shared/data",
                      help="holds cora/ and acm/ (the shipped configs' tables)")
  parser.add_argument("--out", default=os.path.join(HERE, "results_defaults.json"))
  parser.add_argument("--table", action="store_true", help="only print the table of --out")
  parser.add_argument("--tune", type=int, default=0,
                      help="instead: a GnnTuner search of this many trials per graph")
  parser.add_argument("--tune-minutes", type=float, default=20)
  parser.add_argument("--space", default="{}", help="--tune: search space keys (JSON) over "
                      "the default space")
  parser.add_argument("--model", default="{}", help="--tune: the model section (JSON)")
  parser.add_argument("--sampling", default="{}", help="--tune: the sampling section (JSON)")
  args = parser.parse_args(argv)
  if args.tune:
    print(table(tune(args)))
    return
  if args.table:
    with open(args.out) as f:
      print(table(json.load(f)))
    return
  rows = run(args)
  print(table(rows))


if __name__ == "__main__":
  sys.path.insert(0, ROOT)
  main()
