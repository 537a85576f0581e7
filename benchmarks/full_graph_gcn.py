"""Reference: Kipf & Welling's GCN on the whole graph (no sampling), to tell sampling from
training when the pipeline's figure falls short.

  .venv/bin/python benchmarks/full_graph_gcn.py CONFIG [--split eval|test] [--seeds 1]
      [--edge-set cites] [--epochs 200]

Reads the newest Graph artifact under the config's `pipeline.root` (one node set; the edge set
taken as undirected), row-normalizes the features and trains a 2-layer GCN full-batch with
Kipf & Welling's settings (16 units, dropout 0.5, L2 5e-4 on the first layer, Adam lr 0.01, up
to 200 epochs, the epoch with the lowest eval loss kept). Prints JSON lines (accuracy in %).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from benchmarks.train_seeds import load, newest


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("config")
  parser.add_argument("--split", choices=["eval", "test"], default="eval")
  parser.add_argument("--seeds", type=int, default=1)
  parser.add_argument("--edge-set", default=None, help="default: the first edge set")
  parser.add_argument("--epochs", type=int, default=200)
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
  args = parser.parse_args(argv)
  config = load(args.config, args.set, False)
  import tensorflow as tf
  from tfx_gnn.components import graph_io
  graph = graph_io.read_graph(newest(os.path.join(config.root, "pipeline", "GraphIngest",
                                                  "graph", "*")))
  (name, nodes), = graph.node_sets.items()
  edges = graph.edge_sets[args.edge_set or sorted(graph.edge_sets)[0]]
  index = {v: i for i, v in enumerate(nodes.ids)}
  src = np.array([index[v] for v in edges.sources])
  dst = np.array([index[v] for v in edges.targets])
  n = len(nodes.ids)
  adj = np.zeros((n, n), np.float32)
  adj[src, dst] = adj[dst, src] = 1
  adj[np.arange(n), np.arange(n)] = 1
  d = adj.sum(1)
  norm = adj / np.sqrt(d[:, None] * d[None, :])
  nz = np.nonzero(norm)
  a_hat = tf.sparse.SparseTensor(np.stack(nz, 1), norm[nz].astype(np.float32), [n, n])
  # Input features: all but the label and degree features the ingest added.
  exclude = {graph.label.feature} | {e.degree_feature for e in (
      config.data.tables.edge_sets.values() if config.data.tables else ())}
  x = np.concatenate([v.reshape(n, -1) for k, v in sorted(nodes.features.items())
                      if k not in exclude], 1).astype(np.float32)
  x = tf.constant(x / np.maximum(x.sum(1, keepdims=True), 1e-12))
  y = nodes.features[graph.label.feature].astype(np.int64)
  rows = {s: np.array([index[v] for v in ids]) for s, ids in graph.splits.items()}
  accs = []
  for seed in range(args.seeds):
    tf.keras.utils.set_random_seed(seed)
    # relu(A X W1 + b1), computed as A (X W1) for speed (A is sparse).
    w1 = tf.keras.layers.Dense(16, use_bias=False,
                               kernel_regularizer=tf.keras.regularizers.l2(2.5e-4))
    w2 = tf.keras.layers.Dense(graph.label.num_classes, use_bias=False)
    b1 = tf.Variable(tf.zeros([16]))
    b2 = tf.Variable(tf.zeros([graph.label.num_classes]))
    drop = tf.keras.layers.Dropout(0.5)
    spmm = tf.sparse.sparse_dense_matmul

    def logits(training):
      h = tf.nn.relu(spmm(a_hat, w1(drop(x, training=training))) + b1)
      return spmm(a_hat, w2(drop(h, training=training))) + b2

    opt = tf.keras.optimizers.Adam(0.01)
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    best = (np.inf, None)
    for _ in range(args.epochs):
      with tf.GradientTape() as tape:
        out = logits(True)
        loss = loss_fn(y[rows["train"]], tf.gather(out, rows["train"])) + sum(w1.losses)
      variables = w1.trainable_variables + w2.trainable_variables + [b1, b2]
      opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
      out = logits(False)
      val = float(loss_fn(y[rows["eval"]], tf.gather(out, rows["eval"])))
      if val < best[0]:
        best = (val, np.argmax(tf.gather(out, rows[args.split]).numpy(), 1))
    accs.append(100 * float(np.mean(best[1] == y[rows[args.split]])))
    print(json.dumps({"seed": seed, "split": args.split, "accuracy": round(accs[-1], 2)}),
          flush=True)
  print(json.dumps({"config": args.config, "split": args.split, "seeds": args.seeds,
                    "accuracy": f"{np.mean(accs):.2f} ± {np.std(accs):.2f}"},
                   ensure_ascii=False), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
