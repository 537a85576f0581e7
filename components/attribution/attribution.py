"""Integrated-gradients attribution of a trained GNN over sampled subgraphs (plain functions).

The trainer exports, beside the serving model, TF-GNN's IntegratedGradientsExporter model
(`<Format-Serving>/integrated_gradients/`): its `integrated_gradients` signature takes a
batch of serialized labelled subgraphs and returns a GraphTensor with, for every input
feature, the gradient of the loss summed over the interpolation steps from a counterfactual
to the input. Gradient x input, `x * summed_gradient / steps`, is then each feature value's
attribution (exactly integrated gradients for the all-zero counterfactual; with the random
one it is the input times the average path gradient). Its absolute value is aggregated

- per node set and feature (by name, and per index of a vector feature),
- per hop distance from the subgraph's root (its first node of the label node set), by BFS
  over the sampled edges, taken in both directions ("undirected") or only in their sampled
  direction away from the root ("sampled"),

always as an average per attributed subgraph, so numbers from runs with different subgraph
counts compare. Node sets without input features (hashed-id embeddings) get no attribution:
integrated gradients needs differentiable inputs.
"""
from __future__ import annotations

import collections
import dataclasses
import os
import time
from typing import Optional, Sequence

from absl import logging
import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_gnn as tfgnn  # registers the GraphTensor ops the SavedModel needs

from tfx_gnn.components import graph_io

UNREACHED = -1  # hop of a node that BFS from the root does not reach (with "sampled" edges)


def ig_model_dir(serving_model_dir: str) -> str:
  return os.path.join(serving_model_dir, graph_io.IG_SUBDIR)


def load_ig_signature(serving_model_dir: str):
  """The `integrated_gradients` signature of a trained model, with a clear error if the
  model was exported without one (e.g. by an older trainer)."""
  path = ig_model_dir(serving_model_dir)
  if not tf.saved_model.contains_saved_model(path):
    raise ValueError(f"model {serving_model_dir} has no integrated-gradients export at {path}; "
                     "retrain it with this version of GnnTrainer")
  loaded = tf.saved_model.load(path)
  if "integrated_gradients" not in loaded.signatures:
    raise ValueError(f"SavedModel {path} has no 'integrated_gradients' signature "
                     f"(it has {sorted(loaded.signatures)})")
  return loaded, loaded.signatures["integrated_gradients"]


@dataclasses.dataclass
class SubgraphAttribution:
  """One subgraph: per node set, each node's hop and per-feature attributions."""
  hops: dict[str, np.ndarray]  # node set -> [num_nodes] hop from the root
  # node set -> feature -> [num_nodes, dim] attributions (signed; dim 1 for scalars)
  values: dict[str, dict[str, np.ndarray]]
  edges: dict[str, tuple[str, str, np.ndarray, np.ndarray]]  # name -> (src set, tgt set, s, t)
  label: Optional[int] = None


def hop_distances(sizes: dict[str, int], edges: dict[str, tuple[str, str, np.ndarray, np.ndarray]],
                  root_set: str, undirected: bool) -> dict[str, np.ndarray]:
  """BFS hop distance of every node from node 0 of `root_set` (UNREACHED if not reached)."""
  hops = {name: np.full(n, UNREACHED, np.int64) for name, n in sizes.items()}
  neighbours = collections.defaultdict(list)
  for src_set, tgt_set, sources, targets in edges.values():
    for s, t in zip(sources.tolist(), targets.tolist()):
      neighbours[(src_set, s)].append((tgt_set, t))
      if undirected:
        neighbours[(tgt_set, t)].append((src_set, s))
  if sizes.get(root_set, 0) == 0:
    return hops
  hops[root_set][0] = 0
  frontier = [(root_set, 0)]
  hop = 0
  while frontier:
    hop += 1
    nxt = []
    for node in frontier:
      for ns, i in neighbours[node]:
        if hops[ns][i] == UNREACHED:
          hops[ns][i] = hop
          nxt.append((ns, i))
    frontier = nxt
  return hops


def _split_components(inputs: tfgnn.GraphTensor, gradients: tfgnn.GraphTensor,
                      labels: Optional[np.ndarray], steps: int, root_set: str,
                      undirected: bool) -> list[SubgraphAttribution]:
  """Cuts a batch (the preprocessed inputs, merged into components, their summed gradients
  and their root labels) back into per-subgraph attributions. Auxiliary sets (the Runner's
  `_readout`) are not the graph's and are left out."""
  node_sets = [n for n in inputs.node_sets if not tfgnn.get_aux_type_prefix(n)]
  edge_sets = [e for e in inputs.edge_sets if not tfgnn.get_aux_type_prefix(e)]
  node_sizes = {n: inputs.node_sets[n].sizes.numpy() for n in node_sets}
  edge_sizes = {e: inputs.edge_sets[e].sizes.numpy() for e in edge_sets}
  num = len(next(iter(node_sizes.values())))
  node_off = {n: np.concatenate([[0], np.cumsum(s)]) for n, s in node_sizes.items()}
  edge_off = {e: np.concatenate([[0], np.cumsum(s)]) for e, s in edge_sizes.items()}
  adjacency = {e: (inputs.edge_sets[e].adjacency.source_name,
                   inputs.edge_sets[e].adjacency.target_name,
                   inputs.edge_sets[e].adjacency.source.numpy(),
                   inputs.edge_sets[e].adjacency.target.numpy()) for e in edge_sets}
  values_all = {}
  for name in node_sets:
    feats = {}
    for fname, grad in gradients.node_sets[name].features.items():
      # The input the gradient was taken at, after preprocessing: integrated gradients of
      # what the model reads (e.g. normalized features), not of the raw values.
      a = inputs.node_sets[name][fname].numpy() * grad.numpy() / steps
      feats[fname] = a.reshape(a.shape[0], -1)
    if feats:
      values_all[name] = feats
  out = []
  for c in range(num):
    sizes = {n: int(node_sizes[n][c]) for n in node_sizes}
    edges = {}
    for e, (ss, ts, s, t) in adjacency.items():
      lo, hi = edge_off[e][c], edge_off[e][c + 1]
      edges[e] = (ss, ts, s[lo:hi] - node_off[ss][c], t[lo:hi] - node_off[ts][c])
    values = {n: {f: v[node_off[n][c]:node_off[n][c + 1]] for f, v in feats.items()}
              for n, feats in values_all.items()}
    out.append(SubgraphAttribution(
        hop_distances(sizes, edges, root_set, undirected), values, edges,
        None if labels is None else labels.reshape(num, -1)[c, 0].item()))
  return out


def attribute(serving_model_dir: str, files: Sequence[str], root_set: str, *, steps: int,
              num_subgraphs: int, batch_size: int = 32, hop_edges: str = "undirected",
              time_budget_s: Optional[float] = None) -> list[SubgraphAttribution]:
  """Runs the model's integrated-gradients signature over the first `num_subgraphs`
  subgraphs of `files` (serialized, labelled GraphTensors whose root is the first node of
  `root_set`); with `time_budget_s`, no batch starts after that many seconds (the first
  always runs)."""
  start = time.monotonic()
  _, signature = load_ig_signature(serving_model_dir)
  (input_name,) = signature.structured_input_signature[1]  # the serialized examples
  outputs = signature.structured_outputs
  if graph_io.IG_INPUTS_OUTPUT not in outputs:
    raise ValueError(f"the integrated-gradients export of {serving_model_dir} does not return "
                     "its inputs; retrain the model with this version of GnnTrainer")
  node_sets = outputs[graph_io.IG_INPUTS_OUTPUT].node_sets_spec
  if root_set not in node_sets:
    raise ValueError(f"label node set {root_set!r} is not in the model's input graph "
                     f"(node sets {sorted(node_sets)})")

  out: list[SubgraphAttribution] = []
  dataset = tf.data.TFRecordDataset(list(files)).take(num_subgraphs).batch(batch_size)
  for batch in dataset:
    if out and time_budget_s is not None and time.monotonic() - start > time_budget_s:
      logging.info("Attribution: time budget of %.0f s spent after %d subgraphs", time_budget_s,
                   len(out))
      break
    # By keyword: a positional call makes TF try the structured signature first, whose
    # failure formats the whole batch of serialized examples into an error message
    # (about 0.25 s a batch on ACM's 1,902-d features) before the flat call.
    result = signature(**{input_name: batch})
    labels = result.get(graph_io.IG_LABELS_OUTPUT)
    out.extend(_split_components(
        result[graph_io.IG_INPUTS_OUTPUT], result[graph_io.IG_OUTPUT_NAME],
        None if labels is None else labels.numpy(),
        steps, root_set, hop_edges == "undirected"))
  if not out:
    raise ValueError(f"no subgraphs to attribute in {list(files)}")
  return out


@dataclasses.dataclass
class Summary:
  node_sets: pd.DataFrame  # node_set, importance, share
  features: pd.DataFrame  # node_set, feature, index, importance, rank (1 = most important)
  hops: pd.DataFrame  # hop, node_set, num_nodes, importance, importance_per_node
  num_subgraphs: int


def summarize(subgraphs: Sequence[SubgraphAttribution]) -> Summary:
  """Mean absolute attribution per subgraph, per node set, feature index and hop."""
  n = len(subgraphs)
  per_index: dict[tuple[str, str], np.ndarray] = {}
  per_hop: dict[tuple[int, str], list[float]] = collections.defaultdict(lambda: [0, 0.0])
  for sub in subgraphs:
    for ns, feats in sub.values.items():
      hops = sub.hops[ns]
      node_total = np.zeros(len(hops))
      for fname, a in feats.items():
        absval = np.abs(a)
        key = (ns, fname)
        per_index[key] = per_index.get(key, 0) + absval.sum(0)
        node_total += absval.sum(1)
      for h in np.unique(hops):
        sel = hops == h
        acc = per_hop[(int(h), ns)]
        acc[0] += int(sel.sum())
        acc[1] += float(node_total[sel].sum())
  rows = []
  for (ns, fname), total in sorted(per_index.items()):
    mean = total / n
    ranks = (-mean).argsort(kind="stable").argsort() + 1
    for i, value in enumerate(mean):
      rows.append({"node_set": ns, "feature": fname, "index": i, "importance": float(value),
                   "rank": int(ranks[i])})
  features = pd.DataFrame(rows, columns=["node_set", "feature", "index", "importance", "rank"])
  node_sets = (features.groupby("node_set", as_index=False)["importance"].sum()
               if len(features) else pd.DataFrame(columns=["node_set", "importance"]))
  total = node_sets["importance"].sum() if len(node_sets) else 0.0
  node_sets["share"] = node_sets["importance"] / total if total else 0.0
  hops = pd.DataFrame(
      [{"hop": h, "node_set": ns, "num_nodes": c / n, "importance": v / n,
        "importance_per_node": v / c if c else 0.0}
       for (h, ns), (c, v) in sorted(per_hop.items())],
      columns=["hop", "node_set", "num_nodes", "importance", "importance_per_node"])
  return Summary(node_sets, features, hops, n)


def feature_ranks(features: pd.DataFrame, node_set: str, feature: str) -> dict[int, int]:
  """Vector index -> rank (1 = most important) of one feature of one node set, from
  `Summary.features` (or the artifact's `features.parquet`)."""
  rows = features[(features.node_set == node_set) & (features.feature == feature)]
  if rows.empty:
    raise KeyError(f"no attributions for feature {feature!r} of node set {node_set!r}")
  return dict(zip(rows["index"].astype(int), rows["rank"].astype(int)))
