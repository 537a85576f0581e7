"""Link prediction seeds: the links of one edge set split into train/eval/test positives, each
with random non-links as negatives, and the fast sampler that samples around their endpoints.

- Positives: the distinct (source, target) pairs of `edge_set` (self-loops left out), shuffled
  with the sampling seed and cut by `edge_split`.
- Negatives: per positive (u, v), `negatives_per_positive` pairs (u, v') with v' drawn
  uniformly from the target node set, never a link of `edge_set` (nor u itself); the source
  keeps its degree, so a model cannot tell positives by their source alone.
- Leakage: eval and test positives are removed from the graph that every subgraph is sampled
  from (from `edge_set` and its reversed copies); a train positive stays in the graph as a
  message-passing edge of other subgraphs but is never sampled into its own.

The seeds are written into the Examples artifact as `link_seeds/<split>.csv` (columns
source, target, label), so anyone can see which links were held out; the Beam workers read
them back to build the same sampler.
"""
from __future__ import annotations

import csv
import io
import os
from typing import Optional

import numpy as np
import pandas as pd

from tfx_gnn.components import graph_io
from tfx_gnn.components.subgraph_sampler import fast_sampler

SEEDS_DIR = "link_seeds"
HELD_OUT_SPLITS = ("eval", "test")


class LinkSeedsError(ValueError):
  """A link-prediction config that does not fit the graph (the message names the key)."""


def reverse_edge_sets(graph: graph_io.Graph, name: str) -> list[str]:
  """The edge sets that hold the links of `name` reversed (ingest's `reverse`)."""
  edge_set = graph.edge_sets[name]
  out = [n for n, e in graph.edge_sets.items() if e.reverse_of == name]
  if edge_set.reverse_of is not None:
    out.append(edge_set.reverse_of)
  return out


def split_links(graph: graph_io.Graph, edge_set: str, edge_split: dict,
                negatives_per_positive: int, seed: int) -> dict[str, pd.DataFrame]:
  """Per split, the labelled pairs: a DataFrame with columns source, target (node ids) and
  label (1.0 link, 0.0 non-link), shuffled."""
  if edge_set not in graph.edge_sets:
    raise LinkSeedsError(f"task.edge_set: {edge_set!r} is not an edge set of the graph "
                         f"(edge sets: {sorted(graph.edge_sets)})")
  es = graph.edge_sets[edge_set]
  source_index = pd.Index(graph.node_sets[es.source_set].ids)
  target_ids = np.asarray(graph.node_sets[es.target_set].ids, dtype=object)
  target_index = pd.Index(target_ids)
  src = source_index.get_indexer(es.sources).astype(np.int64)
  tgt = target_index.get_indexer(es.targets).astype(np.int64)
  if (src < 0).any() or (tgt < 0).any():
    raise LinkSeedsError(f"edge set {edge_set!r}: endpoints that are not nodes (run the "
                         "validator first)")
  num_targets = np.int64(len(target_ids))
  same_set = es.source_set == es.target_set
  codes = np.unique(src * num_targets + tgt)
  if same_set:
    codes = codes[codes // num_targets != codes % num_targets]
  if len(codes) < 10:
    raise LinkSeedsError(f"task.edge_set: {edge_set!r} has {len(codes)} distinct links; "
                         "too few to split into train/eval/test")
  rng = np.random.default_rng(seed)
  codes = codes[rng.permutation(len(codes))]
  bounds = np.round(np.cumsum([edge_split.get(s, 0.0) for s in graph_io.SPLITS])
                    * len(codes)).astype(int)
  bounds[-1] = len(codes)
  starts = np.concatenate([[0], bounds[:-1]])
  links = np.sort(codes)  # every link of the edge set, for the negatives' rejection
  out = {}
  for split, lo, hi in zip(graph_io.SPLITS, starts, bounds):
    positives = codes[lo:hi]
    pos_src, pos_tgt = positives // num_targets, positives % num_targets
    neg_src = np.repeat(pos_src, negatives_per_positive)
    neg_tgt = rng.integers(0, num_targets, len(neg_src))
    for _ in range(20):  # redraw the pairs that are links (or self-pairs); rarely needed
      bad = _is_link(links, neg_src * num_targets + neg_tgt) | (same_set & (neg_src == neg_tgt))
      if not bad.any():
        break
      neg_tgt[bad] = rng.integers(0, num_targets, int(bad.sum()))
    else:
      keep = ~bad
      neg_src, neg_tgt = neg_src[keep], neg_tgt[keep]
    frame = pd.DataFrame({
        "source": np.asarray(source_index[np.concatenate([pos_src, neg_src])], dtype=object),
        "target": target_ids[np.concatenate([pos_tgt, neg_tgt])],
        "label": np.concatenate([np.ones(len(pos_src)), np.zeros(len(neg_src))]
                                ).astype(np.float32)})
    out[split] = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
  return out


def _is_link(sorted_links: np.ndarray, codes: np.ndarray) -> np.ndarray:
  pos = np.searchsorted(sorted_links, codes)
  pos = np.minimum(pos, len(sorted_links) - 1)
  return sorted_links[pos] == codes


def seeds_path(seeds_dir: str, split: str) -> str:
  return os.path.join(seeds_dir, f"{split}.csv")


def write_link_seeds(seeds_dir: str, splits: dict[str, pd.DataFrame]) -> None:
  import tensorflow as tf
  tf.io.gfile.makedirs(seeds_dir)
  for split, frame in splits.items():
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, quoting=csv.QUOTE_NONNUMERIC)
    graph_io.write_text(seeds_path(seeds_dir, split), buffer.getvalue())


def read_link_seeds(seeds_dir: str, split: str) -> pd.DataFrame:
  import tensorflow as tf
  path = seeds_path(seeds_dir, split)
  if not tf.io.gfile.exists(path):
    return pd.DataFrame({"source": [], "target": [], "label": []})
  with tf.io.gfile.GFile(path) as f:
    frame = pd.read_csv(f, dtype={"source": str, "target": str, "label": np.float32},
                        keep_default_na=False)
  return frame


def held_out(seeds_dir: str) -> tuple[np.ndarray, np.ndarray]:
  """(sources, targets) of the eval and test positives: removed from the sampled graph."""
  frames = [read_link_seeds(seeds_dir, s) for s in HELD_OUT_SPLITS]
  frame = pd.concat([f[f.label > 0.5] for f in frames])
  return (frame.source.to_numpy(dtype=object), frame.target.to_numpy(dtype=object))


def build_specs(schema, edge_set: str, fanouts: dict, hops: int):
  """SamplingSpecs around a link's source and around its target."""
  from tfx_gnn.components.subgraph_sampler import sampling
  if edge_set not in schema.edge_sets:
    raise LinkSeedsError(f"task.edge_set: {edge_set!r} is not an edge set of the graph "
                         f"(edge sets: {sorted(schema.edge_sets)})")
  es = schema.edge_sets[edge_set]
  return (sampling.build_sampling_spec(schema, es.source, fanouts, hops),
          sampling.build_sampling_spec(schema, es.target, fanouts, hops))


def subgraph_schema(schema, edge_set: str, fanouts: dict, hops: int):
  """The GraphSchema of the link subgraphs (with the `_readout` structure)."""
  source_spec, target_spec = build_specs(schema, edge_set, fanouts, hops)
  es = schema.edge_sets[edge_set]
  return fast_sampler.add_link_readout(
      fast_sampler.subgraph_schema(schema, source_spec, target_spec), es.source, es.target)


class LinkSampler:
  """The fast sampler for link prediction on a Graph artifact: the held-out links (read from
  `seeds_dir`) removed, sampling around both endpoints of each labelled pair."""

  def __init__(self, graph_dir: str, edge_set: str, fanouts: dict, hops: int, seed: int,
               seeds_dir: Optional[str]):
    schema = graph_io.read_schema(graph_dir)
    source_spec, target_spec = build_specs(schema, edge_set, fanouts, hops)
    graph = graph_io.read_graph(graph_dir)
    self.edge_set = edge_set
    self.reverse_edge_sets = reverse_edge_sets(graph, edge_set)
    exclude = {}
    if seeds_dir is not None:
      sources, targets = held_out(seeds_dir)
      exclude[edge_set] = (sources, targets)
      for name in self.reverse_edge_sets:
        exclude[name] = (targets, sources)
    self.sampler = fast_sampler.FastSampler(graph, source_spec, seed=seed, schema=schema,
                                            target_spec=target_spec, exclude_edges=exclude)

  def sample(self, frame: pd.DataFrame, salt: str = "") -> list[bytes]:
    return self.sampler.sample_links(frame.source.to_numpy(dtype=object),
                                     frame.target.to_numpy(dtype=object),
                                     frame.label.to_numpy(dtype=np.float32), salt=salt,
                                     link_edge_set=self.edge_set,
                                     reverse_edge_sets=self.reverse_edge_sets)

  def subgraph_schema(self):
    return self.sampler.subgraph_schema()
