"""The fast sampling engine: TF-GNN's sampling semantics on numpy CSR arrays, reproducible.

What it computes is what TF-GNN's samplers (`tfgnn_sampler`, `create_sampling_model_from_spec`)
compute for a `SamplingSpec` with uniform sampling ops:

- the ops run in the spec's order; each op takes the concatenated target nodes of its input ops
  (duplicates included: a node reached twice is sampled from twice, independently) and, for
  every such node, samples up to `sample_size` of its outgoing edges in the op's edge set,
  uniformly without replacement (all of them when there are fewer);
- each edge set of the subgraph is the concatenation of its ops' edges; parallel edges (same
  source and target) are removed, keeping the first;
- each node set lists the distinct nodes that the edge sets touch, in order of first appearance
  over the edge sets (in order of their first op: sources, then targets); node sets with
  features carry those features, node sets without features carry `#id` (the string id);
- output: one tf.Example per seed with TF-GNN's GraphTensor encoding (`tfgnn.write_example`),
  the same keys, dtypes and shapes as TF-GNN's Beam sampler, so the same GraphTensorSpec parses
  both.

One deliberate difference: the root is always the first node of its node set. TF-GNN's own
samplers put it first only when the first edge set that touches its node set starts from it: a
root without edges in that set comes later (a measured TF-GNN 1.0.3 behaviour), and a root node
task (`RootNodeMulticlassClassification`, which reads the first node) then reads another node.
Apart from moving the root to the front, node order is TF-GNN's.

Randomness is counter-based: every draw is a hash of (sampling seed, salt (e.g. the split), root
id, op, position of the source node in the op's input, draw number). A subgraph therefore does
not depend on which other seeds share its batch, on the batch size, the runner or the number of
workers; the same seed gives byte-identical subgraphs.

The work is vectorized over a batch of seeds; serialization writes the protobuf wire format
directly from numpy buffers (checked against protobuf parsing in the tests).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd

from tfx_gnn.components import example_encoder as encoder
from tfx_gnn.components import graph_io

ID = "#id"
SIZE = "#size"
SOURCE = "#source"
TARGET = "#target"

_U64 = np.uint64
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = _U64(0xBF58476D1CE4E5B9)
_MIX2 = _U64(0x94D049BB133111EB)


class FastSamplerError(ValueError):
  """A graph or spec the fast engine cannot sample (the message names the set or op)."""


def _step(i: int) -> np.uint64:
  """The i-th multiple of the golden ratio constant, mod 2**64 (Weyl sequence)."""
  return _U64((i * _GOLDEN) % (1 << 64))


def _mix64(z: np.ndarray) -> np.ndarray:
  """SplitMix64's finalizer: a bijective, well-mixing hash of uint64 values."""
  z = z ^ (z >> _U64(30))
  z = z * _MIX1
  z = z ^ (z >> _U64(27))
  z = z * _MIX2
  return z ^ (z >> _U64(31))


def root_keys(seed: int, salt: str, root_ids: Sequence[str]) -> np.ndarray:
  """One 64-bit random key per subgraph, from (seed, salt, root id) only."""
  prefix = f"{int(seed)}\x00{salt}\x00".encode()
  return np.array([int.from_bytes(hashlib.blake2b(prefix + str(r).encode(), digest_size=8)
                                  .digest(), "little") for r in root_ids], dtype=np.uint64)


def check_graph_fits(graph_dir: str, schema, limit_gb) -> None:
  """The fast engine holds the whole graph in memory (in each Beam worker): refuse, before
  loading it, a graph over `pipeline.memory_limit_gb` (default: most of the available memory).
  Beyond the graph, its working set is one batch of `sampling.batch_size` seeds."""
  from tfx_gnn.components.graph_ingest import ingest
  sets = list(schema.node_sets.values()) + list(schema.edge_sets.values())
  files = sorted({os.path.join(graph_dir, s.metadata.filename) for s in sets})
  ingest.check_memory(files, limit_gb, what=f"the fast sampler's copy of graph {graph_dir}")


# ------------------------------------------------------------------ the graph as CSR
@dataclasses.dataclass
class _EdgeSetCsr:
  name: str
  source_set: str
  target_set: str
  indptr: np.ndarray  # [num_source_nodes + 1]
  targets: np.ndarray  # target node index of each edge, grouped by source (file order kept)
  edge_ids: np.ndarray  # each CSR edge's row in the edge set's feature arrays
  features: dict[str, np.ndarray]


@dataclasses.dataclass
class _Op:
  index: int
  name: str
  edge_set: str
  sample_size: int
  inputs: list[int]  # indices of input ops; -1 is the seed op


@dataclasses.dataclass
class _Pieces:
  """Flat arrays grouped by example (`sub`, sorted): one row per node or edge."""
  sub: np.ndarray
  a: np.ndarray
  b: Optional[np.ndarray] = None
  c: Optional[np.ndarray] = None


def _concat_by_sub(chunks: list[_Pieces]) -> _Pieces:
  """Concatenates per-example lists: example by example, each keeping the chunks' order."""
  if len(chunks) == 1:
    return chunks[0]
  sub = np.concatenate([c.sub for c in chunks])
  order = np.argsort(sub, kind="stable")
  pick = lambda name: (None if getattr(chunks[0], name) is None else
                       np.concatenate([getattr(c, name) for c in chunks])[order])
  return _Pieces(sub[order], pick("a"), pick("b"), pick("c"))


def _positions_within_sub(sub: np.ndarray) -> np.ndarray:
  return np.arange(len(sub)) - np.searchsorted(sub, sub, side="left")


def subgraph_schema(graph_schema, spec, *more_specs):
  """The GraphSchema of the subgraphs sampled by `spec` (what `sampling.output_schema` reads
  off TF-GNN's sampling model): the node sets that the sampled edge sets touch, in order of
  first appearance, then the seeds'; per node set its features, or `#id` when it has none.
  With `more_specs` (link prediction), of the subgraphs sampled by all of them together."""
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  specs = (spec,) + more_specs
  edge_sets = list(dict.fromkeys(op.edge_set_name for sp in specs for op in sp.sampling_ops))
  node_sets = []
  for name in edge_sets:
    node_sets += [graph_schema.edge_sets[name].source, graph_schema.edge_sets[name].target]
  node_sets = list(dict.fromkeys(node_sets + [sp.seed_op.node_set_name for sp in specs]))

  def copy_features(features, out) -> None:
    for fname, feature in features.items():
      out[fname].dtype = feature.dtype
      if feature.shape.dim:
        out[fname].shape.CopyFrom(feature.shape)

  out = tfgnn.GraphSchema()
  for name in node_sets:
    features = graph_schema.node_sets[name].features
    if features:
      copy_features(features, out.node_sets[name].features)
    else:
      out.node_sets[name].features[ID].dtype = tf.string.as_datatype_enum
  for name in edge_sets:
    edge_set = out.edge_sets[name]
    edge_set.source = graph_schema.edge_sets[name].source
    edge_set.target = graph_schema.edge_sets[name].target
    copy_features(graph_schema.edge_sets[name].features, edge_set.features)
  return out


READOUT = "_readout"  # TF-GNN's structured-readout node set (link prediction)
READOUT_SOURCE = "_readout/source"
READOUT_TARGET = "_readout/target"
LINK_LABEL = "label"  # float, on the readout node: 1 for a link, 0 for a non-link


def add_link_readout(schema, source_set: str, target_set: str):
  """`schema` plus the link-prediction readout: node set `_readout` (float `label`), edge
  sets `_readout/source` (source_set -> _readout) and `_readout/target` (target_set ->
  _readout), as runner.DotProductLinkPrediction reads them."""
  import tensorflow as tf
  out = type(schema)()
  out.CopyFrom(schema)
  out.node_sets[READOUT].features[LINK_LABEL].dtype = tf.float32.as_datatype_enum
  for name, endpoint in ((READOUT_SOURCE, source_set), (READOUT_TARGET, target_set)):
    out.edge_sets[name].source = endpoint
    out.edge_sets[name].target = READOUT
  return out


class FastSampler:
  """Samples subgraphs around seed nodes; see the module docstring for the semantics.

  Usage:
    sampler = FastSampler.from_graph_dir(graph_dir, spec, seed=0)
    examples = sampler.sample(["p1", "p7"])        # serialized tf.Examples
    graph = sampler.sample_graph_tensor(["p1"])    # a batched GraphTensor
  """

  def __init__(self, graph: graph_io.Graph, spec, seed: int = 0, schema=None, *,
               target_spec=None, exclude_edges: Optional[dict] = None):
    """`spec` is a `tensorflow_gnn.sampler.SamplingSpec` (as `sampling.build_sampling_spec`
    builds), `schema` the graph's GraphSchema (needed only by `subgraph_schema()`).

    Link prediction (`sample_links`): `target_spec` samples around each link's target (its
    seed node set is the links' target set; `spec` samples around the source), and
    `exclude_edges` ({edge set: (source ids, target ids)}) are removed from the graph (the
    held-out links)."""
    self.seed = int(seed)
    self._schema = schema
    self._spec = spec
    self._target_spec = target_spec
    specs = [spec] + ([target_spec] if target_spec is not None else [])
    self.seed_set = spec.seed_op.node_set_name
    self._seed_sets = [sp.seed_op.node_set_name for sp in specs]
    for sp in specs:
      if sp.HasField("symmetric_link_seed_op") or not sp.seed_op.node_set_name:
        raise FastSamplerError("sampling spec: the fast engine samples from a `seed_op` only")
      if sp.seed_op.node_set_name not in graph.node_sets:
        raise FastSamplerError(f"sampling spec: seed node set {sp.seed_op.node_set_name!r} "
                               "is not in the graph")
    self._ops = []
    for k, sp in enumerate(specs):
      self._ops += self._parse_ops(sp, graph, first_index=len(self._ops), seed_input=-1 - k)
    self._node_ids = {n: pd.Index(s.ids) for n, s in graph.node_sets.items()}
    for name, index in self._node_ids.items():
      if not index.is_unique:
        raise FastSamplerError(f"node set {name!r}: duplicate node ids")
    exclude_edges = exclude_edges or {}
    used_edge_sets = list(dict.fromkeys(op.edge_set for op in self._ops))
    self._csr = {name: self._build_csr(name, graph.edge_sets[name], exclude_edges.get(name))
                 for name in used_edge_sets}
    # Output node sets: those the edge sets touch in first-appearance order, then the seeds'.
    node_sets = []
    for name in used_edge_sets:
      node_sets += [self._csr[name].source_set, self._csr[name].target_set]
    self._out_node_sets = list(dict.fromkeys(node_sets + self._seed_sets))
    self._node_features = {}
    self._id_tables = {}
    for name in self._out_node_sets:
      features = graph.node_sets[name].features
      if features:
        self._node_features[name] = {k: self.check_feature(f"node set {name!r}", k, v)
                                     for k, v in features.items()}
      else:
        self._id_tables[name] = encoder.StringTable(graph.node_sets[name].ids)
    self._string_tables = {}
    for owner, features in ([(("nodes", n), f) for n, f in self._node_features.items()] +
                            [(("edges", n), c.features) for n, c in self._csr.items()]):
      for fname, values in features.items():
        if values.dtype.kind not in "fiub":
          self._string_tables[owner + (fname,)] = encoder.StringTable(values)

  # ---------------------------------------------------------------- construction
  @classmethod
  def from_graph_dir(cls, graph_dir: str, spec=None, *, fanouts: Optional[dict] = None,
                     hops: int = 2, seed: int = 0) -> "FastSampler":
    """Loads a Graph artifact's directory; `spec`, or one built from `fanouts` and `hops`
    (rooted at the graph's labelled node set) as the SubgraphSampler component builds it."""
    schema = graph_io.read_schema(graph_dir)
    if spec is None:
      from tfx_gnn.components.subgraph_sampler import sampling
      label = graph_io.read_label(graph_dir)
      if label is None or fanouts is None:
        raise FastSamplerError(f"graph {graph_dir}: give a SamplingSpec, or fanouts for a graph "
                               "with a labelled node set")
      spec = sampling.build_sampling_spec(schema, label.node_set, fanouts, hops)
    return cls(graph_io.read_graph(graph_dir), spec, seed=seed, schema=schema)

  @staticmethod
  def _parse_ops(spec, graph: graph_io.Graph, first_index: int = 0,
                 seed_input: int = -1) -> list[_Op]:
    """The spec's ops, numbered from `first_index`; `seed_input` (-1, -2, ...) names the
    seed op (one per spec) among the ops' inputs."""
    index_of = {spec.seed_op.op_name: seed_input}
    set_of = {spec.seed_op.op_name: spec.seed_op.node_set_name}
    ops = []
    for i, op in enumerate(spec.sampling_ops, start=first_index):
      where = f"sampling op {op.op_name!r}"
      if op.edge_set_name not in graph.edge_sets:
        raise FastSamplerError(f"{where}: edge set {op.edge_set_name!r} is not in the graph")
      if op.sample_size <= 0:
        raise FastSamplerError(f"{where}: sample_size must be > 0, got {op.sample_size}")
      if op.strategy not in (0, 1):  # TOP_K and RANDOM_WEIGHTED are not uniform
        raise FastSamplerError(f"{where}: only uniform sampling is supported")
      edge_set = graph.edge_sets[op.edge_set_name]
      for name in op.input_op_names:
        if name not in index_of:
          raise FastSamplerError(f"{where}: input op {name!r} is not defined before it")
        if set_of[name] != edge_set.source_set:
          raise FastSamplerError(f"{where}: input op {name!r} yields {set_of[name]!r} nodes, "
                                 f"edge set {op.edge_set_name!r} starts at {edge_set.source_set!r}")
      ops.append(_Op(i, op.op_name, op.edge_set_name, int(op.sample_size),
                     [index_of[n] for n in op.input_op_names]))
      index_of[op.op_name] = i
      set_of[op.op_name] = edge_set.target_set
    return ops

  def _lookup(self, node_set: str, ids: np.ndarray, where: str) -> np.ndarray:
    index = self._node_ids[node_set].get_indexer(ids)
    missing = np.flatnonzero(index < 0)
    if len(missing):
      raise FastSamplerError(f"{where}: {len(missing)} id(s) not in node set {node_set!r}, "
                             f"e.g. {[ids[i] for i in missing[:5]]}")
    return index.astype(np.int64)

  def _build_csr(self, name: str, edge_set: graph_io.EdgeSet, exclude=None) -> _EdgeSetCsr:
    where = f"edge set {name!r}"
    sources = self._lookup(edge_set.source_set, edge_set.sources, where + " sources")
    targets = self._lookup(edge_set.target_set, edge_set.targets, where + " targets")
    rows = np.arange(len(sources), dtype=np.int64)
    if exclude is not None and len(exclude[0]):  # held-out edges: not in the sampled graph
      num_targets = np.int64(len(self._node_ids[edge_set.target_set]))
      ex_sources = self._lookup(edge_set.source_set, np.asarray(exclude[0], object), where)
      ex_targets = self._lookup(edge_set.target_set, np.asarray(exclude[1], object), where)
      keep = ~np.isin(sources * num_targets + targets, ex_sources * num_targets + ex_targets)
      sources, targets, rows = sources[keep], targets[keep], rows[keep]
    order = np.argsort(sources, kind="stable")  # keeps each source's edges in file order
    num_sources = len(self._node_ids[edge_set.source_set])
    indptr = np.zeros(num_sources + 1, dtype=np.int64)
    np.cumsum(np.bincount(sources, minlength=num_sources), out=indptr[1:])
    features = {k: self.check_feature(where, k, v) for k, v in edge_set.features.items()}
    return _EdgeSetCsr(name, edge_set.source_set, edge_set.target_set, indptr,
                       targets[order], rows[order], features)

  @staticmethod
  def check_feature(where: str, name: str, values: np.ndarray) -> np.ndarray:
    if values.dtype == object and values.ndim > 1:
      raise FastSamplerError(f"{where}, feature {name!r}: only scalar string features are "
                             "supported by the fast engine (use sampling.engine: tfgnn_beam)")
    if values.dtype.kind == "f":
      return np.ascontiguousarray(values, dtype=np.float32)
    if values.dtype.kind in "iub":
      return np.ascontiguousarray(values, dtype=np.int64)
    return values

  def subgraph_schema(self):
    """The GraphSchema of the sampled subgraphs (see `subgraph_schema`)."""
    if self._schema is None:
      raise FastSamplerError("subgraph_schema() needs the graph's schema (from_graph_dir)")
    if self._target_spec is not None:
      return add_link_readout(subgraph_schema(self._schema, self._spec, self._target_spec),
                              self._seed_sets[0], self._seed_sets[1])
    return subgraph_schema(self._schema, self._spec)

  # ---------------------------------------------------------------- sampling
  def _sample_op(self, op: _Op, inputs: _Pieces, keys: np.ndarray) -> _Pieces:
    """Edges sampled from each input node occurrence: (sub, source, target, edge id)."""
    csr = self._csr[op.edge_set]
    src = inputs.a
    start = csr.indptr[src]
    degree = csr.indptr[src + 1] - start
    k = op.sample_size
    counts = np.minimum(degree, k)
    out_start = np.cumsum(counts) - counts
    total = int(counts.sum())
    positions = np.empty(total, dtype=np.int64)

    small = degree <= k
    if small.any():  # every edge, in CSR order
      n = counts[small]
      rows_start = np.repeat(start[small] - out_start[small], n)
      slots = np.repeat(out_start[small], n) + (np.arange(int(n.sum())) -
                                                np.repeat(np.cumsum(n) - n, n))
      positions[slots] = rows_start + slots
    big = np.flatnonzero(~small)
    if len(big):  # Floyd's algorithm: a uniform k-subset of range(degree) in k draws
      deg = degree[big].astype(np.int64)
      position_in_input = _positions_within_sub(inputs.sub)[big].astype(np.uint64)
      row_hash = _mix64(keys[inputs.sub[big]] + _step(op.index + 1)
                        + _mix64(position_in_input + _U64(0x632BE59BD9B4E019)))
      chosen = np.empty((len(big), k), dtype=np.int64)
      for i in range(k):
        limit = deg - k + i  # draw uniformly from [0, limit]
        draw = _mix64(row_hash + _step(i + 1))
        r = ((draw >> _U64(11)).astype(np.float64) * (1.0 / (1 << 53)) * (limit + 1)
             ).astype(np.int64)
        r = np.minimum(r, limit)
        taken = (chosen[:, :i] == r[:, None]).any(axis=1)
        chosen[:, i] = np.where(taken, limit, r)
      chosen.sort(axis=1)  # sampled edges in CSR order
      positions[(out_start[big][:, None] + np.arange(k)).reshape(-1)] = (
          start[big][:, None] + chosen).reshape(-1)

    return _Pieces(np.repeat(inputs.sub, counts), np.repeat(src, counts),
                   csr.targets[positions], csr.edge_ids[positions])

  def _sample_batch(self, roots, keys: np.ndarray, exclude: Optional[dict] = None):
    """`roots`: the seed nodes, one per subgraph (or, link prediction, a list: per spec);
    `exclude`: {edge set: (source, target)}, per subgraph an edge (node indices, -1 for none)
    that is never sampled into it."""
    roots = [roots] if isinstance(roots, np.ndarray) else list(roots)
    batch = len(roots[0])
    seeds = [_Pieces(np.arange(batch, dtype=np.int64), r) for r in roots]
    outputs: list[_Pieces] = []
    per_edge_set: dict[str, list[_Pieces]] = {}
    for op in self._ops:
      chunks = [seeds[-1 - i] if i < 0 else _Pieces(outputs[i].sub, outputs[i].b)
                for i in op.inputs]
      edges = self._sample_op(op, _concat_by_sub(chunks), keys)
      if exclude and op.edge_set in exclude:
        ex_source, ex_target = exclude[op.edge_set]
        keep = ~((edges.a == ex_source[edges.sub]) & (edges.b == ex_target[edges.sub]))
        edges = _Pieces(edges.sub[keep], edges.a[keep], edges.b[keep], edges.c[keep])
      outputs.append(edges)
      per_edge_set.setdefault(op.edge_set, []).append(edges)
    edge_sets = {name: _concat_by_sub(chunks) for name, chunks in per_edge_set.items()}

    # Node sets: first appearances over (root), each edge set's sources then targets, seeds.
    node_sets = {}
    local_of = {}
    for name in self._out_node_sets:
      chunks = [sd for sd, seed_set in zip(seeds, self._seed_sets) if seed_set == name]
      for es_name, es in edge_sets.items():
        csr = self._csr[es_name]
        if csr.source_set == name:
          chunks.append(_Pieces(es.sub, es.a))
        if csr.target_set == name:
          chunks.append(_Pieces(es.sub, es.b))
      nodes = _concat_by_sub(chunks)
      num = np.int64(len(self._node_ids[name]))
      key = nodes.sub * num + nodes.a
      unique, first = np.unique(key, return_index=True)
      order = np.argsort(first)
      sub = nodes.sub[first[order]]
      local = _positions_within_sub(sub)
      local_by_unique = np.empty(len(unique), dtype=np.int64)
      local_by_unique[order] = local
      node_sets[name] = _Pieces(sub, nodes.a[first[order]])
      local_of[name] = (unique, local_by_unique, num)

    def local_index(node_set: str, sub: np.ndarray, nodes: np.ndarray) -> np.ndarray:
      unique, local_by_unique, num = local_of[node_set]
      return local_by_unique[np.searchsorted(unique, sub * num + nodes)]

    out_edges = {}
    for name, es in edge_sets.items():
      csr = self._csr[name]
      s = local_index(csr.source_set, es.sub, es.a)
      t = local_index(csr.target_set, es.sub, es.b)
      width = np.int64(max(int(s.max(initial=0)), int(t.max(initial=0))) + 1)
      _, first = np.unique((es.sub * width + s) * width + t, return_index=True)
      keep = np.sort(first)  # parallel edges removed, the first one kept
      out_edges[name] = _Pieces(es.sub[keep], s[keep], t[keep], es.c[keep])
    return node_sets, out_edges

  def _columns(self, node_sets, edge_sets, batch: int) -> list[encoder.Column]:
    columns = []
    for name, nodes in node_sets.items():
      counts = np.bincount(nodes.sub, minlength=batch)
      columns.append(encoder.packed_column(f"nodes/{name}.{SIZE}", encoder.INT64_LIST, counts,
                                    np.ones(batch, np.int64)))
      if name in self._id_tables:
        columns.append(self._id_tables[name].column(f"nodes/{name}.{ID}", nodes.a, counts))
      for fname, values in self._node_features.get(name, {}).items():
        columns.append(self._feature_column(("nodes", name, fname), f"nodes/{name}.{fname}",
                                            values, nodes.a, counts))
    for name, edges in edge_sets.items():
      counts = np.bincount(edges.sub, minlength=batch)
      prefix = f"edges/{name}."
      columns.append(encoder.packed_column(prefix + SIZE, encoder.INT64_LIST, counts,
                                           np.ones(batch, np.int64)))
      columns.append(encoder.packed_column(prefix + SOURCE, encoder.INT64_LIST, edges.a, counts))
      columns.append(encoder.packed_column(prefix + TARGET, encoder.INT64_LIST, edges.b, counts))
      for fname, values in self._csr[name].features.items():
        columns.append(self._feature_column(("edges", name, fname), prefix + fname, values,
                                            edges.c, counts))
    return columns

  def _feature_column(self, owner, key: str, values: np.ndarray, rows: np.ndarray,
                      counts: np.ndarray) -> encoder.Column:
    if owner in self._string_tables:
      return self._string_tables[owner].column(key, rows, counts)
    per_row = int(np.prod(values.shape[1:], dtype=np.int64))
    kind = encoder.FLOAT_LIST if values.dtype == np.float32 else encoder.INT64_LIST
    return encoder.packed_column(key, kind, values[rows], counts * per_row)

  def sample(self, seed_ids: Iterable, salt: str = "") -> list[bytes]:
    """Serialized tf.Examples (GraphTensors), one per seed id, in order. `salt` names a stream
    of randomness (the component uses the split's name)."""
    seed_ids = np.asarray(list(seed_ids), dtype=object)
    if len(seed_ids) == 0:
      return []
    roots = self._lookup(self.seed_set, seed_ids, "seeds")
    keys = root_keys(self.seed, salt, seed_ids)
    node_sets, edge_sets = self._sample_batch(roots, keys)
    return encoder.examples_from_columns(self._columns(node_sets, edge_sets, len(roots)),
                                         len(roots))

  def sample_links(self, source_ids: Iterable, target_ids: Iterable, labels: Iterable,
                   salt: str = "", link_edge_set: Optional[str] = None,
                   reverse_edge_sets: Sequence[str] = ()) -> list[bytes]:
    """Link prediction: one serialized tf.Example per (source, target, label), the union of
    a subgraph sampled around the source (`spec`) and one around the target (`target_spec`),
    with TF-GNN's readout structure (runner.DotProductLinkPrediction's input): node set
    `_readout` (one node, float feature `label`) and edge sets `_readout/source`,
    `_readout/target` from the two endpoints to it. The source is the first node of its node
    set; the target is the first of its own, or the second when both sets are one.

    A positive link (label 1) of `link_edge_set` is never sampled into its own subgraph,
    nor its reversed copy in `reverse_edge_sets`: the model must not see the link it scores.
    """
    if self._target_spec is None:
      raise FastSamplerError("sample_links needs a sampler built with a target_spec")
    source_ids = np.asarray(list(source_ids), dtype=object)
    target_ids = np.asarray(list(target_ids), dtype=object)
    labels = np.asarray(list(labels), dtype=np.float32)
    if not len(source_ids) == len(target_ids) == len(labels):
      raise FastSamplerError("sample_links: sources, targets and labels differ in length")
    if len(source_ids) == 0:
      return []
    source_set, target_set = self._seed_sets
    sources = self._lookup(source_set, source_ids, "link sources")
    targets = self._lookup(target_set, target_ids, "link targets")
    keys = root_keys(self.seed, salt, [f"{s}\x00{t}" for s, t in zip(source_ids, target_ids)])
    positive = labels > 0.5
    exclude = {}
    if link_edge_set is not None:
      none = np.full(len(sources), -1, np.int64)
      held = (np.where(positive, sources, none), np.where(positive, targets, none))
      exclude[link_edge_set] = held
      for name in reverse_edge_sets:
        exclude[name] = held[::-1]
    node_sets, edge_sets = self._sample_batch([sources, targets], keys, exclude)
    batch = len(sources)
    columns = self._columns(node_sets, edge_sets, batch)
    ones = np.ones(batch, np.int64)
    target_local = np.where((source_set == target_set) & (sources != targets), 1, 0)
    columns.append(encoder.packed_column(f"nodes/{READOUT}.{SIZE}", encoder.INT64_LIST, ones, ones))
    columns.append(encoder.packed_column(f"nodes/{READOUT}.{LINK_LABEL}", encoder.FLOAT_LIST,
                                         labels, ones))
    for key, local in ((READOUT_SOURCE, np.zeros(batch, np.int64)), (READOUT_TARGET,
                                                                     target_local)):
      prefix = f"edges/{key}."
      columns.append(encoder.packed_column(prefix + SIZE, encoder.INT64_LIST, ones, ones))
      columns.append(encoder.packed_column(prefix + SOURCE, encoder.INT64_LIST, local, ones))
      columns.append(encoder.packed_column(prefix + TARGET, encoder.INT64_LIST,
                                           np.zeros(batch, np.int64), ones))
    return encoder.examples_from_columns(columns, batch)

  def graph_tensor_spec(self):
    import tensorflow_gnn as tfgnn
    return tfgnn.create_graph_spec_from_schema_pb(self.subgraph_schema())

  def sample_graph_tensor(self, seed_ids: Iterable, salt: str = ""):
    """The subgraphs as one GraphTensor of shape [len(seed_ids)] (parsed from `sample`)."""
    import tensorflow as tf
    import tensorflow_gnn as tfgnn
    return tfgnn.parse_example(self.graph_tensor_spec(),
                               tf.constant(self.sample(seed_ids, salt), dtype=tf.string))

  def sample_frames(self, seed_ids: Iterable, salt: str = "") -> tuple[pd.DataFrame,
                                                                        pd.DataFrame]:
    """The subgraphs that `sample(seed_ids, salt)` serializes, as two tables for inspection:
    nodes (`subgraph`: position in `seed_ids`, `node_set`, `index`: the node's position in
    its node set within the subgraph, `node_id`: its id in the graph) and edges (`subgraph`,
    `edge_set`, `source_set`, `target_set`, `source`, `target`: node indices as in nodes)."""
    seed_ids = np.asarray(list(seed_ids), dtype=object)
    roots = self._lookup(self.seed_set, seed_ids, "seeds")
    node_sets, edge_sets = self._sample_batch(roots, root_keys(self.seed, salt, seed_ids))
    nodes = pd.concat([pd.DataFrame({
        "subgraph": p.sub, "node_set": name, "index": _positions_within_sub(p.sub),
        "node_id": self._node_ids[name][p.a].astype(str)}) for name, p in node_sets.items()],
                      ignore_index=True)
    edges = pd.concat([pd.DataFrame({
        "subgraph": p.sub, "edge_set": name, "source_set": self._csr[name].source_set,
        "target_set": self._csr[name].target_set, "source": p.a, "target": p.b})
                       for name, p in edge_sets.items()], ignore_index=True)
    return nodes, edges
