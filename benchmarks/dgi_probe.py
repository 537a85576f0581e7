"""Deep Graph Infomax embeddings vs raw features under the same linear probe.

  .venv/bin/python benchmarks/dgi_probe.py CONFIG [--split eval|test] [--seeds 1]
      [--set model.units=256 ...]

On the subgraphs a pipeline run already sampled under the config's `pipeline.root`: trains
the config's model with `task.type: dgi` (no labels; on the subgraphs of every split, as DGI
is transductive) through `components.gnn_trainer.training.train`, writes the embeddings
Parquet the trainer writes, and fits the evaluator's logistic-regression probe on the train
split's embeddings -> scores `--split`; then the same probe on the root nodes' raw
(row-normalized) features. Prints JSON lines.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from benchmarks.train_seeds import load, newest


def raw_features(files, schema, label, exclude=()):
  """The root nodes' own input features (minus `exclude`: features ingest derived, such as a
  degree feature), row-normalized, and their labels."""
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  gtspec = tfgnn.create_graph_spec_from_schema_pb(schema)
  names = sorted(k for k in gtspec.node_sets_spec[label.node_set].features_spec
                 if not k.startswith("#") and k != label.feature and k not in exclude)
  xs, ys = [], []
  for batch in tf.data.TFRecordDataset(list(files)).batch(256):
    graph = tfgnn.parse_example(gtspec, batch).merge_batch_to_components()
    parts = [tf.reshape(tf.cast(tfgnn.gather_first_node(graph, label.node_set, feature_name=n),
                                tf.float32), [graph.num_components, -1]) for n in names]
    x = tf.concat(parts, -1).numpy()
    xs.append(x / np.maximum(np.abs(x).sum(-1, keepdims=True), 1e-12))
    ys.append(tfgnn.gather_first_node(graph, label.node_set,
                                      feature_name=label.feature).numpy().reshape(-1))
  return np.concatenate(xs), np.concatenate(ys)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("config")
  parser.add_argument("--split", choices=["eval", "test"], default="eval")
  parser.add_argument("--seeds", type=int, default=1)
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
  parser.add_argument("--fresh-model", action="store_true")
  args = parser.parse_args(argv)
  config = load(args.config, args.set + ["task.type=dgi"], args.fresh_model)

  from tfx_gnn.components import graph_io
  from tfx_gnn.components.gnn_evaluator import evaluation
  from tfx_gnn.components.gnn_trainer import training

  pipeline_dir = os.path.join(config.root, "pipeline")
  graph_dir = newest(os.path.join(pipeline_dir, "GraphIngest", "graph", "*"))
  examples_dir = newest(os.path.join(pipeline_dir, "SubgraphSampler", "examples", "*"))
  files = {s: sorted(glob.glob(os.path.join(examples_dir, f"Split-{s}", "*")))
           for s in ("train", "eval", "test")}
  schema = graph_io.read_schema_file(graph_io.subgraph_schema_path(examples_dir))
  label = graph_io.read_label(graph_dir)

  # The ingest-made degree feature is no paper feature: the raw baseline leaves it out.
  degree_feature = getattr(config.model, "degree_feature", None)  # a GCN option
  derived = [degree_feature] if degree_feature else []
  x_train, y_train = raw_features(files["train"], schema, label, derived)
  x_test, y_test = raw_features(files[args.split], schema, label, derived)
  raw = evaluation.linear_probe_metrics(x_train, y_train, x_test, y_test, label.num_classes)
  print(json.dumps({"probe_on": "raw_features", "split": args.split,
                    "accuracy": round(100 * raw["accuracy"], 2)}), flush=True)
  if args.split == "test":
    x_eval, y_eval = raw_features(files["eval"], schema, label, derived)
    raw_eval = evaluation.linear_probe_metrics(x_train, y_train, x_eval, y_eval,
                                               label.num_classes)
    print(json.dumps({"probe_on": "raw_features", "split": "eval",
                      "accuracy": round(100 * raw_eval["accuracy"], 2)}), flush=True)
  accs = []
  for seed in range(args.seeds):
    with tempfile.TemporaryDirectory() as tmp:
      training.train(train_files=sum(files.values(), []), eval_files=[],
                     subgraph_schema=schema, label=label, model_cfg=config.model,
                     trainer_cfg=config.trainer.model_copy(update={"seed": seed}),
                     task_cfg=config.task, model_dir=os.path.join(tmp, "run"),
                     export_dir=os.path.join(tmp, "model"))
      path = os.path.join(tmp, "embeddings.parquet")
      training.write_embeddings(os.path.join(tmp, "model"), files, schema, label, path)
      dgi = evaluation.embedding_probe_metrics(path, args.split, label.num_classes)
      if args.split == "test":
        dgi_eval = evaluation.embedding_probe_metrics(path, "eval", label.num_classes)
        print(json.dumps({"probe_on": "dgi_embeddings", "seed": seed, "split": "eval",
                          "accuracy": round(100 * dgi_eval["accuracy"], 2)}), flush=True)
    accs.append(100 * dgi["accuracy"])
    print(json.dumps({"probe_on": "dgi_embeddings", "seed": seed, "split": args.split,
                      "accuracy": round(accs[-1], 2)}), flush=True)
  print(json.dumps({"config": args.config, "set": args.set, "split": args.split,
                    "raw_features": round(100 * raw["accuracy"], 2),
                    "dgi_embeddings": f"{np.mean(accs):.2f} ± {np.std(accs):.2f}"},
                   ensure_ascii=False), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
