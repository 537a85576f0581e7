"""Graph collections for graph-level tasks: each graph of the collection, whole, as one
serialized GraphTensor (nothing is sampled).

A collection is an ordinary Graph artifact in which the labelled node set (e.g. `graph`) has
one node per graph, holding the graph's label (and any other graph-level features), and the
edge sets *into* it (e.g. `member_of`: node -> graph) say which graph each node belongs to.
Every other edge set between member node sets is the graphs' own structure. So ingest and the
validator treat a collection like any other graph (referential integrity, NaN, label range,
splits over the graph ids), and the sampler writes, per seed (a graph id), one tf.Example:

- the member node sets with their features (`#id` for a node set without features), nodes in
  the order of the node tables;
- the edge sets between them, restricted to the graph (an edge whose endpoints lie in two
  graphs is an error naming the edge set);
- the graph node's features as context features (`context/label`, ...), which
  `runner.GraphMulticlassClassification` reads through a context label function.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from tfx_gnn.components import graph_io
from tfx_gnn.components import example_encoder as encoder
from tfx_gnn.components.subgraph_sampler import fast_sampler as fs


class CollectionError(ValueError):
  """A graph that is not a collection of graphs (the message names the set)."""


def _index(ids) -> pd.Index:
  return pd.Index(np.asarray(ids, dtype=object))


class GraphCollection:
  """The graphs of a collection; `examples(graph_ids)` serializes them."""

  def __init__(self, graph: graph_io.Graph, graph_set: str, schema=None):
    if graph_set not in graph.node_sets:
      raise CollectionError(f"graph collection: node set {graph_set!r} is not in the graph")
    self.graph_set = graph_set
    self._schema = schema
    self._graph_index = _index(graph.node_sets[graph_set].ids)
    membership = sorted(n for n, e in graph.edge_sets.items()
                        if e.target_set == graph_set and e.source_set != graph_set)
    if not membership:
      raise CollectionError(
          f"graph collection: no edge set leads from nodes to the node set {graph_set!r} "
          "(one node per graph): nothing says which graph a node belongs to")
    self.membership = membership
    self.member_sets = list(dict.fromkeys(graph.edge_sets[n].source_set for n in membership))
    num_graphs = len(self._graph_index)
    node_index = {m: _index(graph.node_sets[m].ids) for m in self.member_sets}
    graph_of = {m: np.full(len(node_index[m]), -1, np.int64) for m in self.member_sets}
    for name in membership:
      es = graph.edge_sets[name]
      nodes = node_index[es.source_set].get_indexer(es.sources)
      graphs = self._graph_index.get_indexer(es.targets)
      if (nodes < 0).any() or (graphs < 0).any():
        raise CollectionError(f"edge set {name!r}: endpoints that are not nodes")
      previous = graph_of[es.source_set][nodes]
      if ((previous >= 0) & (previous != graphs)).any() or len(np.unique(nodes)) != len(nodes):
        raise CollectionError(f"edge set {name!r}: a node of {es.source_set!r} belongs to "
                              "more than one graph")
      graph_of[es.source_set][nodes] = graphs
    # Per member node set: its nodes grouped by graph, and each node's index in its graph.
    self._nodes = {}
    self._local = {}
    for m in self.member_sets:
      order = np.argsort(graph_of[m], kind="stable")
      order = order[graph_of[m][order] >= 0]
      starts = np.searchsorted(graph_of[m][order], np.arange(num_graphs + 1))
      local = np.full(len(graph_of[m]), -1, np.int64)
      local[order] = np.arange(len(order)) - starts[graph_of[m][order]]
      self._nodes[m] = (order, starts)
      self._local[m] = local
    self.edge_sets = [n for n, e in graph.edge_sets.items()
                      if e.source_set in self.member_sets and e.target_set in self.member_sets]
    self._edges = {}
    for name in self.edge_sets:
      es = graph.edge_sets[name]
      src = node_index[es.source_set].get_indexer(es.sources)
      tgt = node_index[es.target_set].get_indexer(es.targets)
      g_src, g_tgt = graph_of[es.source_set][src], graph_of[es.target_set][tgt]
      if (g_src != g_tgt).any() or (g_src < 0).any():
        i = int(np.flatnonzero((g_src != g_tgt) | (g_src < 0))[0])
        raise CollectionError(f"edge set {name!r}: edge {es.sources[i]!r} -> "
                              f"{es.targets[i]!r} does not lie within one graph")
      order = np.argsort(g_src, kind="stable")
      starts = np.searchsorted(g_src[order], np.arange(num_graphs + 1))
      self._edges[name] = (order, starts, self._local[es.source_set][src[order]],
                           self._local[es.target_set][tgt[order]],
                           {k: fs.FastSampler.check_feature(f"edge set {name!r}", k, v)
                            for k, v in es.features.items()})
    self._node_features = {m: {k: fs.FastSampler.check_feature(f"node set {m!r}", k, v)
                               for k, v in graph.node_sets[m].features.items()}
                           for m in self.member_sets}
    self._id_tables = {m: encoder.StringTable(np.asarray(graph.node_sets[m].ids, dtype=object))
                       for m in self.member_sets if not graph.node_sets[m].features}
    self._context = {k: fs.FastSampler.check_feature(f"node set {graph_set!r}", k, v)
                     for k, v in graph.node_sets[graph_set].features.items()}

  @classmethod
  def from_graph_dir(cls, graph_dir: str) -> "GraphCollection":
    label = graph_io.read_label(graph_dir)
    if label is None:
      raise CollectionError(f"graph {graph_dir}: a collection needs a labelled node set "
                            "(one node per graph)")
    return cls(graph_io.read_graph(graph_dir), label.node_set,
               schema=graph_io.read_schema(graph_dir))

  def subgraph_schema(self):
    """The GraphSchema of the examples: member node sets, their edge sets, context."""
    import tensorflow as tf
    import tensorflow_gnn as tfgnn
    if self._schema is None:
      raise CollectionError("subgraph_schema() needs the graph's schema (from_graph_dir)")

    def copy(features, out):
      for name, feature in features.items():
        out[name].dtype = feature.dtype
        if feature.shape.dim:
          out[name].shape.CopyFrom(feature.shape)

    out = tfgnn.GraphSchema()
    copy(self._schema.node_sets[self.graph_set].features, out.context.features)
    for m in self.member_sets:
      features = self._schema.node_sets[m].features
      if features:
        copy(features, out.node_sets[m].features)
      else:
        out.node_sets[m].features[graph_io.ID].dtype = tf.string.as_datatype_enum
    for name in self.edge_sets:
      es = self._schema.edge_sets[name]
      out.edge_sets[name].source = es.source
      out.edge_sets[name].target = es.target
      copy(es.features, out.edge_sets[name].features)
    return out

  @staticmethod
  def _ranges(starts: np.ndarray, graphs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the graphs' rows (concatenated, in order), and the count per graph."""
    lo, hi = starts[graphs], starts[graphs + 1]
    counts = hi - lo
    return encoder.gather_ranges(np.arange(int(starts[-1])), lo, counts), counts

  @staticmethod
  def _feature(key: str, values: np.ndarray, rows: np.ndarray, counts: np.ndarray):
    if values.dtype == object:
      return encoder.StringTable(values).column(key, rows, counts)
    per_row = int(np.prod(values.shape[1:], dtype=np.int64))
    kind = encoder.FLOAT_LIST if values.dtype == np.float32 else encoder.INT64_LIST
    return encoder.packed_column(key, kind, values[rows], counts * per_row)

  def examples(self, graph_ids: Iterable) -> list[bytes]:
    """One serialized tf.Example (GraphTensor) per graph id, in order."""
    ids = np.asarray(list(graph_ids), dtype=object)
    if len(ids) == 0:
      return []
    graphs = self._graph_index.get_indexer(ids)
    if (graphs < 0).any():
      raise CollectionError(f"{int((graphs < 0).sum())} id(s) not in node set "
                            f"{self.graph_set!r}, e.g. {list(ids[graphs < 0][:5])}")
    batch = len(graphs)
    ones = np.ones(batch, np.int64)
    columns = [self._feature(f"context/{k}", v, graphs, ones) for k, v in self._context.items()]
    for m in self.member_sets:
      order, starts = self._nodes[m]
      positions, counts = self._ranges(starts, graphs)
      rows = order[positions]
      columns.append(encoder.packed_column(f"nodes/{m}.{fs.SIZE}", encoder.INT64_LIST, counts,
                                           ones))
      if m in self._id_tables:
        columns.append(self._id_tables[m].column(f"nodes/{m}.{fs.ID}", rows, counts))
      for k, v in self._node_features[m].items():
        columns.append(self._feature(f"nodes/{m}.{k}", v, rows, counts))
    for name in self.edge_sets:
      order, starts, local_src, local_tgt, features = self._edges[name]
      positions, counts = self._ranges(starts, graphs)
      prefix = f"edges/{name}."
      columns.append(encoder.packed_column(prefix + fs.SIZE, encoder.INT64_LIST, counts, ones))
      columns.append(encoder.packed_column(prefix + fs.SOURCE, encoder.INT64_LIST,
                                       local_src[positions], counts))
      columns.append(encoder.packed_column(prefix + fs.TARGET, encoder.INT64_LIST,
                                       local_tgt[positions], counts))
      for k, v in features.items():
        columns.append(self._feature(prefix + k, v, order[positions], counts))
    return encoder.examples_from_columns(columns, batch)
