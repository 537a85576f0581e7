"""An OGB node-property dataset, read as OGB's loader downloads and extracts it, without
PyTorch or the `ogb` package.

The layout and the reading follow OGB's own code: `NodePropPredDataset` (`<root>/<name with _
for ->/`, the split named in its master.csv, `split/<split>/`) and `ogb/io/read_graph_raw.py`:

- heterogeneous (`read_csv_heterograph_raw`, ogbn-mag): `raw/num-node-dict.csv.gz` (a header of
  node types, one row of counts), `raw/triplet-type-list.csv.gz` (no header; head, relation,
  tail), per relation `raw/relations/<head>___<rel>___<tail>/edge.csv.gz` (no header; source,
  target node indices) and `num-edge-list.csv.gz`, per node type `raw/node-feat/<type>/
  node-feat.csv.gz` (optional; no header) and additional node files `node_<name>.csv.gz`
  (ogbn-mag's `node_year`); labels (`read_node_label_hetero`): `raw/nodetype-has-label.csv.gz`
  (a header of node types, a row of booleans) and `raw/node-label/<type>/node-label.csv.gz`;
  splits (`read_nodesplitidx_split_hetero`): `split/<split>/nodetype-has-split.csv.gz` and
  `split/<split>/<type>/{train,valid,test}.csv.gz` (no header; one node index per row);
- homogeneous (`read_csv_graph_raw`, e.g. ogbn-arxiv): `raw/num-node-list.csv.gz`,
  `raw/edge.csv.gz`, `raw/node-feat.csv.gz`, `raw/node_<name>.csv.gz`, `raw/node-label.csv.gz`
  and `split/<split>/{train,valid,test}.csv.gz`; one node set `node`, one edge set `edge`.

Every file is read through `tables` (so `root` may be an s3:// or gs:// URL). Node ids are
OGB's node indices as strings; features are `feat` (node-feat, and edge-feat where a relation
has one) and one per additional node file (`node_year` -> `year`); the label is `label`.
OGB's `edge_reltype` files are not read: a relation's type is its edge set. As OGB's reader,
optional files (node-feat, additional node files, edge-feat) may be absent; every other file
is required, and a missing one is an error naming it.
"""
from __future__ import annotations

import logging
import re
import time
from typing import Optional

import numpy as np
import pyarrow as pa

from tfx_gnn.components import graph_io
from tfx_gnn.components.graph_ingest import tables
from tfx_gnn.components.graph_ingest.config import OgbSource
from tfx_gnn.components.graph_ingest.tables import IngestError

LABEL = "label"
FEATURE = "feat"
_SPLIT_FILES = (("train", "train"), ("eval", "valid"), ("test", "test"))  # ours, OGB's


def dataset_dir(spec: OgbSource) -> str:
  """Where OGB's loader keeps the dataset: `<root>/<name with _ for ->` (ogbn_mag)."""
  return tables.join(spec.root, spec.name.replace("-", "_"))


class _Reader:
  """Reads the tree's CSVs; every error names the file and says what OGB's layout wanted."""

  def __init__(self, spec: OgbSource):
    self.spec = spec
    self.dir = dataset_dir(spec)

  def url(self, *parts: str) -> str:
    url = self.dir
    for part in parts:
      url = tables.join(url, part)
    return url

  def exists(self, *parts: str) -> bool:
    return tables.exists(self.url(*parts))

  def read(self, *parts: str, header: bool = False) -> tables.Table:
    url = self.url(*parts)
    if not tables.exists(url):
      raise IngestError(
          f"{url}: file not found: data.ogb expects {self.spec.name} as OGB's loader "
          f"extracts it under {self.dir} (root: {self.spec.root}); is the download complete?")
    table = tables.read(url, fmt="csv", header=header)
    if table.data.num_rows == 0:
      raise IngestError(f"{url}: the file has no rows")
    return table

  def matrix(self, *parts: str, rows: Optional[int] = None) -> np.ndarray:
    """A headerless numeric CSV as [rows, columns]: int64 if every column is integral (as
    OGB's reader keeps them), else float32."""
    table = self.read(*parts)
    for i, column in enumerate(table.data.columns):
      if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
              or pa.types.is_null(column.type)):
        raise IngestError(f"{table.path}: column {i + 1} is not numeric ({column.type}); "
                          "OGB's files hold numbers only")
    integral = all(pa.types.is_integer(c.type) and not c.null_count for c in table.data.columns)
    # Filled column by column: OGBN-MAG's 128 feature columns never exist as float64 at once.
    values = np.empty((table.data.num_rows, table.data.num_columns),
                      np.int64 if integral else np.float32)
    for i, column in enumerate(table.data.columns):
      values[:, i] = column.to_numpy()
    if rows is not None and len(values) != rows:
      raise IngestError(f"{table.path}: {len(values)} rows, but num-node-dict/list gives "
                        f"{rows} nodes")
    return values

  def flags(self, *parts: str) -> dict[str, bool]:
    """A header of node types and one row of booleans (nodetype-has-label, -has-split)."""
    table = self.read(*parts, header=True)
    out = {}
    for name in table.data.column_names:
      value = table.data.column(name)[0].as_py()
      if isinstance(value, str):
        value = value.strip().lower() == "true"
      out[name] = bool(value)
    return out


def _ids(n: int) -> np.ndarray:
  return np.arange(n).astype(str).astype(object)


def _indices(values: np.ndarray, url: str, what: str) -> np.ndarray:
  if values.dtype.kind not in "iu":
    raise IngestError(f"{url}: {what} must be integer node indices, got {values.dtype}")
  return values.astype(str).astype(object)


def _one_column(values: np.ndarray, url: str, what: str) -> np.ndarray:
  if values.shape[1] != 1:
    raise IngestError(f"{url}: {what}: expected one column, got {values.shape[1]}")
  return values[:, 0]


def _node_features(reader: _Reader, parts: tuple[str, ...], rows: int,
                   extra_prefix: str = "node_") -> dict[str, np.ndarray]:
  """node-feat.csv.gz as `feat`, and every additional node file `node_<name>.csv.gz` as
  `<name>` (one column: a scalar per node), in the folder `parts`."""
  features = {}
  if reader.exists(*parts, "node-feat.csv.gz"):
    features[FEATURE] = reader.matrix(*parts, "node-feat.csv.gz", rows=rows)
  if parts and not reader.exists(*parts):
    return features
  for name in tables.listdir(reader.url(*parts)):
    match = re.fullmatch(re.escape(extra_prefix) + r"(.+)\.csv\.gz", name)
    if match and match[1] not in (FEATURE, LABEL):
      values = reader.matrix(*parts, name, rows=rows)
      features[match[1]] = values[:, 0] if values.shape[1] == 1 else values
  return features


def _labels(reader: _Reader, parts: tuple[str, ...], rows: int) -> np.ndarray:
  url = reader.url(*parts)
  values = _one_column(reader.matrix(*parts, rows=rows), url, "labels")
  if values.dtype.kind == "f":
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
    if bad.size:
      raise IngestError(f"{url}: line {bad[0] + 1}: label {values[bad[0]]!r} is not a class "
                        "index (every node of the labelled node type needs one)")
  return values.astype(np.int64)


def _split(reader: _Reader, parts: tuple[str, ...], count: int) -> dict[str, np.ndarray]:
  splits = {}
  for ours, theirs in _SPLIT_FILES:
    url = reader.url(*parts, f"{theirs}.csv.gz")
    index = _one_column(reader.matrix(*parts, f"{theirs}.csv.gz"), url, "split")
    if index.dtype.kind not in "iu":
      raise IngestError(f"{url}: split entries must be node indices, got {index.dtype}")
    bad = np.flatnonzero((index < 0) | (index >= count))
    if bad.size:
      raise IngestError(f"{url}: line {bad[0] + 1}: node {index[bad[0]]} is not a node "
                        f"(there are {count})")
    splits[ours] = _indices(index, url, "split entries")
  return splits


def _split_name(reader: _Reader) -> str:
  if reader.spec.split is not None:
    return reader.spec.split
  if not reader.exists("split"):
    raise IngestError(f"{reader.url('split')}: not found: data.ogb needs the dataset's split "
                      "folder as OGB's loader extracts it")
  names = tables.listdir(reader.url("split"))
  if len(names) != 1:
    raise IngestError(f"{reader.url('split')}: holds splits {', '.join(names) or '(none)'}; "
                      "choose one with data.ogb.split")
  return names[0]


def _edge_set_names(triplets: list[tuple[str, str, str]]) -> dict[tuple, str]:
  """A relation's name (`writes`), or head_rel_tail where two triplets share a relation."""
  counts = {}
  for _, rel, _ in triplets:
    counts[rel] = counts.get(rel, 0) + 1
  return {t: t[1] if counts[t[1]] == 1 else "_".join(t) for t in triplets}


def _heterogeneous(reader: _Reader):
  node_counts_table = reader.read("raw", "num-node-dict.csv.gz", header=True)
  counts = {}
  for name in sorted(node_counts_table.data.column_names):
    column = node_counts_table.data.column(name)
    if len(column) != 1 or not pa.types.is_integer(column.type):
      raise IngestError(f"{node_counts_table.path}: expected one row of node counts (a single "
                        f"graph) under the node types, got {len(column)} rows of {column.type}")
    counts[name] = int(column[0].as_py())
  triplet_table = reader.read("raw", "triplet-type-list.csv.gz")
  if triplet_table.data.num_columns != 3:
    raise IngestError(f"{triplet_table.path}: expected 3 columns (head, relation, tail), got "
                      f"{triplet_table.data.num_columns}")
  triplets = sorted(zip(*(triplet_table.data.column(i).cast(pa.string()).to_pylist()
                          for i in range(3))))
  for head, rel, tail in triplets:
    for node_type in (head, tail):
      if node_type not in counts:
        raise IngestError(f"{triplet_table.path}: relation {head}___{rel}___{tail}: node type "
                          f"{node_type!r} is not in num-node-dict.csv.gz ({', '.join(counts)})")

  node_sets = {}
  for name, count in counts.items():
    features = _node_features(reader, ("raw", "node-feat", name), count)
    source = (reader.url("raw", "node-feat", name, "node-feat.csv.gz") if FEATURE in features
              else node_counts_table.path)
    node_sets[name] = graph_io.NodeSet(_ids(count), features, source)

  edge_sets = {}
  for triplet, name in _edge_set_names(triplets).items():
    folder = ("raw", "relations", "___".join(triplet))
    edges, features = _edges(reader, folder)
    url = reader.url(*folder, "edge.csv.gz")
    edge_sets[name] = graph_io.EdgeSet(triplet[0], triplet[2],
                                       _indices(edges[:, 0], url, "sources"),
                                       _indices(edges[:, 1], url, "targets"),
                                       features, url)

  has_label = reader.flags("raw", "nodetype-has-label.csv.gz")
  labelled = [t for t, has in has_label.items() if has]
  label_set = _choose_label_set(reader, labelled,
                                reader.url("raw", "nodetype-has-label.csv.gz"))
  node_sets[label_set].features[LABEL] = _labels(
      reader, ("raw", "node-label", label_set, "node-label.csv.gz"), counts[label_set])
  split = _split_name(reader)
  has_split = reader.flags("split", split, "nodetype-has-split.csv.gz")
  if not has_split.get(label_set):
    raise IngestError(f"{reader.url('split', split, 'nodetype-has-split.csv.gz')}: node type "
                      f"{label_set!r} has no split (types with one: "
                      f"{', '.join(t for t, h in has_split.items() if h) or 'none'})")
  splits = _split(reader, ("split", split, label_set), counts[label_set])
  return node_sets, edge_sets, label_set, splits


def _edges(reader: _Reader, folder: tuple[str, ...]) -> tuple[np.ndarray, dict]:
  edges = reader.matrix(*folder, "edge.csv.gz")
  url = reader.url(*folder, "edge.csv.gz")
  if edges.shape[1] != 2:
    raise IngestError(f"{url}: expected 2 columns (source, target node indices), got "
                      f"{edges.shape[1]}")
  listed = reader.matrix(*folder, "num-edge-list.csv.gz")
  if listed.shape != (1, 1) or int(listed[0, 0]) != len(edges):
    raise IngestError(f"{reader.url(*folder, 'num-edge-list.csv.gz')}: gives "
                      f"{listed[:, 0].tolist()} edges, but {url} has {len(edges)} rows (one "
                      "graph expected)")
  features = {}
  if reader.exists(*folder, "edge-feat.csv.gz"):
    features[FEATURE] = reader.matrix(*folder, "edge-feat.csv.gz", rows=len(edges))
  return edges, features


def _choose_label_set(reader: _Reader, labelled: list[str], url: str) -> str:
  wanted = reader.spec.label_node_set
  if wanted is not None:
    if wanted not in labelled:
      raise IngestError(f"data.ogb.label_node_set {wanted!r}: not a node type with labels in "
                        f"{url} (labelled: {', '.join(labelled) or 'none'})")
    return wanted
  if len(labelled) != 1:
    raise IngestError(f"{url}: node types {', '.join(labelled) or '(none)'} have labels; "
                      "choose one with data.ogb.label_node_set")
  return labelled[0]


def _homogeneous(reader: _Reader):
  listed = reader.matrix("raw", "num-node-list.csv.gz")
  if listed.shape != (1, 1):
    raise IngestError(f"{reader.url('raw', 'num-node-list.csv.gz')}: expected one node count "
                      f"(a single graph), got {listed[:, 0].tolist()}")
  count = int(listed[0, 0])
  features = {}
  if reader.exists("raw", "node-feat.csv.gz"):
    features[FEATURE] = reader.matrix("raw", "node-feat.csv.gz", rows=count)
  for name in tables.listdir(reader.url("raw")):
    match = re.fullmatch(r"node_(.+)\.csv\.gz", name)
    if match and match[1] not in (FEATURE, LABEL):
      values = reader.matrix("raw", name, rows=count)
      features[match[1]] = values[:, 0] if values.shape[1] == 1 else values
  features[LABEL] = _labels(reader, ("raw", "node-label.csv.gz"), count)
  node_sets = {"node": graph_io.NodeSet(_ids(count), features,
                                        reader.url("raw", "num-node-list.csv.gz"))}
  edges, edge_features = _edges(reader, ("raw",))
  url = reader.url("raw", "edge.csv.gz")
  edge_sets = {"edge": graph_io.EdgeSet("node", "node",
                                        _indices(edges[:, 0], url, "sources"),
                                        _indices(edges[:, 1], url, "targets"),
                                        edge_features, url)}
  if reader.spec.label_node_set not in (None, "node"):
    raise IngestError(f"data.ogb.label_node_set {reader.spec.label_node_set!r}: "
                      f"{reader.spec.name} is homogeneous; its one node set is 'node'")
  splits = _split(reader, ("split", _split_name(reader)), count)
  return node_sets, edge_sets, "node", splits


def is_heterogeneous(spec: OgbSource) -> bool:
  """As OGB's loader tells them apart: by raw/triplet-type-list.csv.gz."""
  reader = _Reader(spec)
  if reader.exists("raw", "triplet-type-list.csv.gz"):
    return True
  if reader.exists("raw", "edge.csv.gz"):
    return False
  raise IngestError(
      f"{reader.url('raw')}: no OGB dataset here: data.ogb expects {spec.name} as OGB's loader "
      f"extracts it, with raw/triplet-type-list.csv.gz (heterogeneous) or raw/edge.csv.gz "
      f"under {reader.dir} (root: {spec.root})")


def source_dirs(spec: OgbSource) -> list[tuple[str, str]]:
  """The folders ingest reads (raw/ and split/), as (URL, format) for memory estimates;
  checks first that the tree is there."""
  is_heterogeneous(spec)
  reader = _Reader(spec)
  return [(reader.url("raw"), "csv")] + (
      [(reader.url("split"), "csv")] if reader.exists("split") else [])


def ogb_to_graph(spec: OgbSource) -> graph_io.Graph:
  """The dataset as an in-memory graph: node sets, edge sets (plus `spec.reverse`), the label
  and the dataset's split (train, valid -> eval, test)."""
  start = time.perf_counter()
  reader = _Reader(spec)
  if is_heterogeneous(spec):
    node_sets, edge_sets, label_set, splits = _heterogeneous(reader)
  else:
    node_sets, edge_sets, label_set, splits = _homogeneous(reader)
  for forward, reverse in spec.reverse.items():
    if forward not in edge_sets:
      raise IngestError(f"data.ogb.reverse {forward!r}: no such relation in {spec.name} "
                        f"(edge sets: {', '.join(sorted(edge_sets))})")
    if reverse in edge_sets:
      raise IngestError(f"data.ogb.reverse {forward!r}: {reverse!r} is already an edge set")
    fwd = edge_sets[forward]
    edge_sets[reverse] = graph_io.EdgeSet(fwd.target_set, fwd.source_set, fwd.targets,
                                          fwd.sources, dict(fwd.features), fwd.source_file,
                                          reverse_of=forward)
  labels = node_sets[label_set].features[LABEL]
  num_classes = spec.num_classes if spec.num_classes is not None else (
      int(labels.max()) + 1 if labels.size else 0)
  graph = graph_io.Graph(node_sets, edge_sets, splits,
                         graph_io.Label(label_set, LABEL, int(num_classes)))
  logging.info("ingested OGB dataset %s from %s in %.1f s: %s", spec.name, reader.dir,
               time.perf_counter() - start, graph.counts())
  return graph
