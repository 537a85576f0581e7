"""GraphIngest's logic, without TFX: tables or a unigraph become a `graph_io.Graph`.

Tables are read with pyarrow (its multi-threaded C++ CSV and Parquet readers) and converted
column by column, never row by row, so a million-row table with vector features stays fast.
Every problem is an `IngestError` that names the user's file, and where it helps the column
and the line (CSV, counting the header as line 1) or the row (Parquet, 1-based): that is what
the user has to fix. Data *quality* (NaN features, dangling edges, duplicate ids, labels out
of range) is not checked here; GraphValidator reports it.
"""
from __future__ import annotations

import itertools
import logging
import os
import time
from typing import Callable, Iterable, Optional, Sequence, Union

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tfx_gnn.components import graph_io
from tfx_gnn.components.graph_ingest import inputs, tables
from tfx_gnn.components.graph_ingest.config import (DataConfig, EdgeTable, NodeTable, SplitTable,
                                                    TablesSource, UnigraphSource)

LABEL = "label"  # the label feature's name in graphs built from tables
SPLIT_ALIASES = {"train": "train", "eval": "eval", "val": "eval", "valid": "eval",
                 "validation": "eval", "test": "test"}
# Input that cannot be ingested; the message names the file, and the column and line.
IngestError = tables.IngestError
_Table = tables.Table  # an Arrow table plus where it came from


# ---------------------------------------------------------------- reading tables
def read_arrow_table(path: str, string_columns: Sequence[str] = (),
                     fmt: Optional[str] = None) -> pa.Table:
  """Reads a table (CSV, CSV.gz, Parquet, TFRecord of tf.Example; a file, glob or directory;
  local, s3:// or gs://); `string_columns` are kept as strings (ids). See `tables.read`."""
  return tables.read(path, string_columns, fmt).data


def read_table(path: str, string_columns: Sequence[str] = (),
               fmt: Optional[str] = None) -> pd.DataFrame:
  """`read_arrow_table` as a DataFrame (errors: `IngestError`)."""
  return read_arrow_table(path, string_columns, fmt).to_pandas()


def _load(directory: str, file: str, string_columns: Sequence[str] = (),
          fmt: Optional[str] = None) -> _Table:
  return tables.read(tables.join(directory, file), string_columns, fmt)


# ---------------------------------------------------------------- columns -> numpy
def _check_lengths(table: _Table, name: str, lengths: np.ndarray) -> int:
  """The common length of a vector column's rows; a ragged row is an error naming it."""
  if len(lengths) == 0:
    return 0
  # Compare with the most common length (on a tie, the earliest row's), so that the odd
  # row out is the one reported.
  counts = np.bincount(lengths)
  common = int(lengths[np.flatnonzero(counts[lengths] == counts.max())[0]])
  bad = np.flatnonzero(lengths != common)
  if bad.size:
    i, ok = int(bad[0]), int(np.flatnonzero(lengths == common)[0])
    raise IngestError(
        f"{table.path}: column {name!r} has {lengths[i]} values at {table.where(i)} but "
        f"{common} at {table.where(ok)}; every row of a vector feature needs the same length")
  return common


def _first_unparsable(flat: pa.Array, to_type: pa.DataType) -> int:
  """Index of the first value of `flat` that does not cast to `to_type` (bisection with
  Arrow's own cast, so that "numeric" means exactly what the conversion accepts)."""
  lo, hi = 0, len(flat)  # the first failure lies in [lo, hi)
  while hi - lo > 1:
    mid = (lo + hi) // 2
    try:
      pc.cast(flat.slice(lo, mid - lo), to_type)
      lo = mid
    except pa.ArrowInvalid:
      hi = mid
  return lo


def _strings_to_array(table: _Table, name: str, column: pa.ChunkedArray) -> np.ndarray:
  """A string column of space-separated numbers: one number per row is a scalar, several
  are a fixed-length float32 vector."""
  column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
  text = pc.utf8_trim_whitespace(column)
  # An empty cell is an empty vector (or a missing scalar), not the number "".
  text = pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text)
  tokens = pc.ascii_split_whitespace(text)
  lengths = pc.fill_null(pc.list_value_length(tokens), 0).to_numpy(zero_copy_only=False)
  lengths = lengths.astype(np.int64)
  flat = pc.list_flatten(tokens)
  try:
    values = pc.cast(flat, pa.float32())
  except pa.ArrowInvalid:
    index = _first_unparsable(flat, pa.float32())
    value = flat[index].as_py()
    where = table.where(int(np.searchsorted(np.cumsum(lengths), index, side="right")))
    raise IngestError(
        f"{table.path}: column {name!r} is not numeric ({value[:40]!r} at {where}); features "
        "must be numbers, lists of numbers or strings of space-separated numbers "
        "(list the feature columns to leave this one out)") from None
  if len(lengths) and lengths.max() <= 1:
    # Scalars: integers stay int64 when every row has one.
    out = np.full(len(lengths), np.nan, np.float32)
    out[lengths == 1] = values.to_numpy(zero_copy_only=False)
    if (lengths == 1).all():
      try:
        return pc.cast(flat, pa.int64()).to_numpy(zero_copy_only=False)
      except pa.ArrowInvalid:
        pass
    return out
  width = _check_lengths(table, name, lengths)
  return values.to_numpy(zero_copy_only=False).reshape(len(lengths), width)


def _numeric_to_numpy(array: Union[pa.Array, pa.ChunkedArray]) -> np.ndarray:
  """int64 for integers without nulls, else float32 (nulls become NaN)."""
  t = array.type
  if pa.types.is_null(t):
    return np.full(len(array), np.nan, np.float32)
  if (pa.types.is_integer(t) or pa.types.is_boolean(t)) and array.null_count == 0:
    return array.to_numpy(zero_copy_only=False).astype(np.int64)
  if pa.types.is_floating(t):
    return pc.cast(array, pa.float32(), safe=False).to_numpy(zero_copy_only=False)
  return pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float32)


def _is_numeric(t: pa.DataType) -> bool:
  return (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
          or pa.types.is_decimal(t) or pa.types.is_null(t))


def _column_to_array(table: _Table, name: str, role: str = "feature") -> np.ndarray:
  """A feature column as numpy: [rows] scalars or [rows, width] vectors."""
  column = table.column(name, role)
  t = column.type
  if _is_numeric(t):
    return _numeric_to_numpy(column)
  if pa.types.is_string(t) or pa.types.is_large_string(t):
    return _strings_to_array(table, name, column)
  if (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)) \
      and _is_numeric(t.value_type):
    column = column.combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False)
    width = _check_lengths(table, name, lengths.astype(np.int64))
    values = _numeric_to_numpy(pc.list_flatten(column))
    if not pa.types.is_integer(t.value_type):
      values = values.astype(np.float32)  # float lists (and decimals) are float32 vectors
    return values.reshape(len(lengths), width)
  raise IngestError(f"{table.path}: column {name!r} has type {t}; features must be numbers, "
                    "lists of numbers or strings of space-separated numbers")


def _ids(table: _Table, name: str, role: str) -> np.ndarray:
  column = table.column(name, role)
  if column.null_count:
    i = int(np.flatnonzero(pc.is_null(column).to_numpy(zero_copy_only=False))[0])
    raise IngestError(f"{table.path}: column {name!r} ({role}) is empty at {table.where(i)}")
  if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
    try:
      column = pc.cast(column, pa.string())
    except pa.ArrowNotImplementedError:
      raise IngestError(f"{table.path}: column {name!r} ({role}) has type {column.type}, "
                        "which cannot be an id") from None
  return column.to_numpy(zero_copy_only=False).astype(object, copy=False)


def _labels(path: str, values: np.ndarray, where: Callable[[int], str],
            name: str, num_classes: Optional[int] = None) -> np.ndarray:
  """Labels as int64 (class ids) or, where some value is fractional and no `num_classes` says
  they are classes, as float32 (real-valued targets for regression tasks); a missing label is
  an error naming its row."""
  if values.ndim == 2 and values.shape[1] == 1:
    values = values[:, 0]
  if values.ndim != 1:
    raise IngestError(f"{path}: label {name!r} must be one number per node, got shape "
                      f"{list(values.shape[1:])} per node")
  if values.dtype.kind in "iub":
    return values.astype(np.int64)
  if values.dtype.kind != "f":
    raise IngestError(f"{path}: label {name!r} must be numbers, got {values.dtype}")
  missing = np.flatnonzero(~np.isfinite(values))
  if missing.size:
    i = int(missing[0])
    value = "empty" if np.isnan(values[i]) else f"{values[i].item()!r}"
    raise IngestError(f"{path}: label {name!r} at {where(i)} is {value}; every node of the "
                      "labelled node set needs a finite label")
  fractional = np.flatnonzero(values != np.round(values))
  if not fractional.size:
    return values.astype(np.int64)
  if num_classes is not None:
    i = int(fractional[0])
    raise IngestError(f"{path}: label {name!r} at {where(i)} is {values[i].item()!r}; with "
                      f"num_classes {num_classes} labels must be integers (class ids; leave "
                      "num_classes out for real-valued targets)")
  return values.astype(np.float32)


def _num_classes(given: Optional[int], labels: np.ndarray) -> int:
  if labels.dtype.kind == "f":
    return 0  # real-valued targets have no classes
  if given is not None:
    return int(given)
  # json (graph_info.json) refuses numpy ints: keep it a Python int.
  return int(labels.max()) + 1 if labels.size else 0


def label_of(node_set: str, feature: str, given_classes: Optional[int],
             labels: np.ndarray) -> graph_io.Label:
  return graph_io.Label(node_set, feature, _num_classes(given_classes, labels),
                        "float32" if labels.dtype.kind == "f" else "int64")


# ---------------------------------------------------------------- tables -> Graph
def _label_node_set(spec: TablesSource) -> Optional[str]:
  """The labelled node set; None for a graph without labels (for link prediction)."""
  labelled = [k for k, v in spec.node_sets.items() if v.label_column]
  if spec.label_node_set is not None:
    if spec.label_node_set not in spec.node_sets:
      raise IngestError(f"label_node_set {spec.label_node_set!r} is not a node set "
                        f"(node sets: {', '.join(spec.node_sets)})")
    if not spec.node_sets[spec.label_node_set].label_column:
      raise IngestError(f"label_node_set {spec.label_node_set!r} has no label_column")
    return spec.label_node_set
  if len(labelled) > 1:
    raise IngestError(f"cannot tell which node set holds the labels: node sets "
                      f"{', '.join(labelled)} all have a label_column; set label_node_set")
  label_set = labelled[0] if labelled else None
  # Splits are of the labelled node set's nodes (link prediction splits its links instead).
  if label_set is not None and spec.splits is None:
    raise IngestError(f"data.tables.splits: required with a labelled node set ({label_set!r}: "
                      "its train/eval/test nodes)")
  if label_set is None and spec.splits is not None:
    raise IngestError("data.tables.splits: splits are of the labelled node set's nodes, and no "
                      "node set has a label_column")
  return label_set


def check_spec(spec: TablesSource) -> Optional[str]:
  """Checks the spec's cross-references before any file is read; returns the label set."""
  label_set = _label_node_set(spec)
  names = set(spec.edge_sets)
  for name, table in spec.edge_sets.items():
    for key in ("source", "target"):
      node_set = getattr(table, key)
      if node_set not in spec.node_sets:
        # Also name the config key, which is where the user fixes it.
        raise IngestError(f"edge set {name!r}: {key} node set {node_set!r} is not defined "
                          f"(node sets: {', '.join(spec.node_sets)}; config key "
                          f"data.tables.edge_sets.{name}.{key})")
    if table.reverse is not None:
      if table.reverse in names:
        raise IngestError(f"edge set {name!r}: reverse name {table.reverse!r} is already "
                          "the name of an edge set")
      names.add(table.reverse)
  return label_set


def _features(table: _Table, listed: Optional[Sequence[str]],
              exclude: Sequence[str]) -> dict[str, np.ndarray]:
  names = listed if listed is not None else [
      c for c in table.data.column_names if c not in exclude]
  features = {}
  for name in names:
    if name.startswith("#") or name in exclude:
      raise IngestError(f"{table.path}: column {name!r} cannot be a feature (it is an id or "
                        f"label column, or starts with '#', which TF-GNN reserves)")
    features[name] = _column_to_array(table, name)
  return features


def _node_set(directory: str, name: str, spec: NodeTable, labelled: bool,
              num_classes: Optional[int] = None) -> graph_io.NodeSet:
  table = _load(directory, spec.file, [spec.id_column], spec.format)
  return node_set_from_table(table, name, spec, labelled, num_classes)


def node_set_from_table(table: _Table, name: str, spec: NodeTable, labelled: bool,
                        num_classes: Optional[int] = None) -> graph_io.NodeSet:
  """The node set `name` from its table (or one file of it: the Beam path reads file by file)."""
  ids = _ids(table, spec.id_column, f"id_column of node set {name!r}")
  exclude = [spec.id_column] + ([spec.label_column] if spec.label_column else [])
  if labelled:
    exclude.append(LABEL)  # the label feature's own name
  features = _features(table, spec.features, exclude)
  if labelled:
    values = _column_to_array(table, spec.label_column, f"label_column of node set {name!r}")
    features[LABEL] = _labels(table.path, values, table.where, spec.label_column, num_classes)
  return graph_io.NodeSet(ids, features, table.path)


def tables_to_graph(spec: TablesSource) -> graph_io.Graph:
  """Builds the in-memory graph from node and edge tables; paths are relative to
  `spec.directory`."""
  start = time.perf_counter()
  label_set = check_spec(spec)
  node_sets = {}
  for name, table_spec in spec.node_sets.items():
    node_sets[name] = _node_set(spec.directory, name, table_spec, name == label_set,
                                spec.num_classes)
  edge_sets = {}
  for name, table_spec in spec.edge_sets.items():
    edge_sets.update(_edge_sets(spec.directory, name, table_spec))
    if table_spec.degree_feature:
      _add_degree_feature(node_sets[table_spec.source], table_spec.source, name,
                          edge_sets[name], table_spec.degree_feature)
  label, splits = None, {}
  if label_set is not None:
    labels = node_sets[label_set].features[LABEL]
    label = label_of(label_set, LABEL, spec.num_classes, labels)
    splits = make_splits(spec.splits, node_sets[label_set].ids, spec.directory,
                         node_sets[label_set].features, f"node set {label_set!r}")
  graph = graph_io.Graph(node_sets, edge_sets, splits, label)
  logging.info("ingested tables from %s in %.1f s: %s", spec.directory,
               time.perf_counter() - start, graph.counts())
  return graph


def _edge_sets(directory: str, name: str, spec: EdgeTable) -> dict[str, graph_io.EdgeSet]:
  table = _load(directory, spec.file, [spec.source_column, spec.target_column],
                spec.format)
  return edge_sets_from_table(table, name, spec)


def edge_sets_from_table(table: _Table, name: str, spec: EdgeTable,
                         ) -> dict[str, graph_io.EdgeSet]:
  """The edge set `name` (and its reverse) from its table (or one file of it)."""
  sources = _ids(table, spec.source_column, f"source_column of edge set {name!r}")
  targets = _ids(table, spec.target_column, f"target_column of edge set {name!r}")
  features = _features(table, spec.features or [], [spec.source_column, spec.target_column])
  if spec.undirected:  # both directions in the one set; a row's features on both
    sources, targets = (np.concatenate([sources, targets]),
                        np.concatenate([targets, sources]))
    features = {k: np.concatenate([v, v]) for k, v in features.items()}
  out = {name: graph_io.EdgeSet(spec.source, spec.target, sources, targets, features,
                                table.path)}
  if spec.reverse is not None:
    # Shares the forward set's file on disk; graph_io.read_graph also gives it the forward
    # set's features, so the in-memory graph does the same.
    out[spec.reverse] = graph_io.EdgeSet(spec.target, spec.source, targets, sources,
                                         dict(features), table.path, reverse_of=name)
  return out


def _add_degree_feature(node_set: graph_io.NodeSet, node_set_name: str, edge_set_name: str,
                        edge_set: graph_io.EdgeSet, feature: str) -> None:
  """Each node's number of edges in `edge_set` (as their source), as float feature `feature`."""
  if feature.startswith("#") or feature in node_set.features or feature == LABEL:
    raise IngestError(f"edge set {edge_set_name!r}: degree_feature {feature!r} is already a "
                      f"feature of node set {node_set_name!r} (or a reserved name); config key "
                      f"data.tables.edge_sets.{edge_set_name}.degree_feature")
  index = pd.Index(node_set.ids)
  rows = index.get_indexer(edge_set.sources)
  rows = rows[rows >= 0]  # unknown endpoints are the validator's to report
  node_set.features[feature] = np.bincount(rows, minlength=len(index)).astype(np.float32)


# ---------------------------------------------------------------- splits
def _splits_by_feature(split: SplitTable, label_ids: np.ndarray,
                       features: Optional[dict], where: str) -> dict[str, np.ndarray]:
  """Train/eval/test by a feature's value: below boundaries.eval, below boundaries.test, rest."""
  features = features or {}
  if split.feature not in features:
    raise IngestError(f"{where}: splits.feature {split.feature!r} is not a feature of the "
                      f"labelled node set (features: {', '.join(sorted(features)) or '(none)'})")
  values = np.asarray(features[split.feature])
  if values.ndim == 2 and values.shape[1] == 1:
    values = values[:, 0]
  if values.ndim != 1 or values.dtype.kind not in "iuf":
    raise IngestError(f"{where}: splits.feature {split.feature!r} must be one number per node, "
                      f"got {values.dtype} of shape {list(values.shape[1:])} per node")
  if values.dtype.kind == "f" and np.isnan(values).any():
    i = int(np.flatnonzero(np.isnan(values))[0])
    raise IngestError(f"{where}: splits.feature {split.feature!r} is empty for node "
                      f"{label_ids[i]!r}")
  bounds = split.boundaries
  index = np.searchsorted(np.array([bounds["eval"], bounds["test"]]), values, side="right")
  return {s: label_ids[index == i] for i, s in enumerate(graph_io.SPLITS)}


def make_splits(split: SplitTable, label_ids: np.ndarray, directory: str,
                features: Optional[dict] = None, where: str = "") -> dict[str, np.ndarray]:
  """Train/eval/test ids of the labelled node set, from `split.file` (relative to
  `directory`), by `split.ratios` (a permutation of `label_ids` seeded by `split.seed`), or by
  the value of `split.feature` (one of `features`, the labelled node set's; `where` names it
  in errors)."""
  label_ids = np.asarray(label_ids, dtype=object)
  if split.feature is not None:
    return _splits_by_feature(split, label_ids, features, where or directory)
  if split.file is None:
    ratios = split.ratios or {}
    order = np.random.default_rng(split.seed).permutation(len(label_ids))
    bounds = np.round(np.cumsum([ratios.get(s, 0.0) for s in graph_io.SPLITS])
                      * len(label_ids)).astype(int)
    bounds[-1] = len(label_ids)  # the ratios sum to 1 (the config checks); no id is lost
    starts = np.concatenate([[0], bounds[:-1]])
    return {s: label_ids[order[lo:hi]] for s, lo, hi in zip(graph_io.SPLITS, starts, bounds)}

  table = _load(directory, split.file, [split.id_column, split.split_column], split.format)
  ids = _ids(table, split.id_column, "split table id_column")
  names = table.column(split.split_column, "split table split_column")
  if not (pa.types.is_string(names.type) or pa.types.is_large_string(names.type)):
    names = pc.cast(names, pa.string())
  names = pc.utf8_lower(pc.utf8_trim_whitespace(pc.fill_null(names, "")))
  canonical = np.empty(len(names), dtype=object)
  for value in pc.unique(names).to_pylist():  # a handful of values, compared in Arrow
    mask = pc.equal(names, value).to_numpy(zero_copy_only=False)
    if value not in SPLIT_ALIASES:
      i = int(np.flatnonzero(mask)[0])
      raise IngestError(
          f"{table.path}: {table.where(i)}: split {value!r} is not one of train, eval "
          "(or val, valid, validation), test")
    canonical[mask] = SPLIT_ALIASES[value]
  # A hash lookup that also works when the node ids have duplicates (the validator's job).
  unknown = ~pd.Series(ids, dtype=object).isin(label_ids).to_numpy()
  if unknown.any():
    i = int(np.flatnonzero(unknown)[0])
    raise IngestError(f"{table.path}: {table.where(i)}: id {ids[i]!r} is not a node of the "
                      f"labelled node set ({unknown.sum()} such ids)")
  duplicated = pd.Series(ids).duplicated().to_numpy()
  if duplicated.any():
    i = int(np.flatnonzero(duplicated)[0])
    first = int(np.flatnonzero(ids == ids[i])[0])
    raise IngestError(f"{table.path}: id {ids[i]!r} is listed twice ({table.where(first)} "
                      f"and {table.where(i)})")
  return {s: ids[canonical == s] for s in graph_io.SPLITS}


# ---------------------------------------------------------------- unigraph -> Graph
def _example_columns(records: Iterable, num_keys: int, features, desc: str,
                     ) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
  """Columns from TF-GNN's (ids..., tf.Example) records; `features` is the set's schema."""
  import tensorflow as tf
  specs = {}
  for fname, feature in features.items():
    shape = [d.size for d in feature.shape.dim]
    if any(s < 0 for s in shape):
      raise IngestError(f"{desc}: feature {fname!r} has a variable size {shape}; only "
                        "fixed-size features can be ingested")
    dtype = tf.dtypes.as_dtype(feature.dtype)
    kind = ("float_list" if dtype.is_floating else
            "int64_list" if dtype.is_integer or dtype.is_bool else "bytes_list")
    specs[fname] = (shape, kind, int(np.prod(shape)))
  keys: list[list] = [[] for _ in range(num_keys)]
  values: dict[str, list] = {f: [] for f in specs}
  row = -1
  try:
    for row, record in enumerate(records):
      *ids, example = record
      for column, value in zip(keys, ids):
        column.append(value.decode() if isinstance(value, bytes) else str(value))
      fmap = example.features.feature
      for fname, (shape, kind, size) in specs.items():
        if fname not in fmap:
          raise IngestError(f"{desc}: record {row + 1} has no feature {fname!r}")
        got = getattr(fmap[fname], kind).value
        if len(got) != size:
          raise IngestError(f"{desc}: record {row + 1}: feature {fname!r} has {len(got)} "
                            f"values, the schema's shape {shape} needs {size}")
        values[fname].append(got)
  except IngestError:
    raise
  except (ValueError, TypeError, IndexError, KeyError, OSError, tf.errors.OpError) as e:
    raise IngestError(f"{desc}: cannot read record {row + 2}: {e}") from None
  n = len(keys[0]) if keys else 0
  out = {}
  for fname, (shape, kind, size) in specs.items():
    flat_values = itertools.chain.from_iterable(values[fname])  # C-level, no Python frames
    if kind == "bytes_list":
      flat = np.array([v.decode() for v in flat_values], dtype=object)
    else:
      dtype = np.float32 if kind == "float_list" else np.int64
      flat = np.fromiter(flat_values, dtype, count=n * size)
    out[fname] = flat.reshape([n] + shape)
  return [np.array(k, dtype=object) for k in keys], out


def _tfrecord_columns(pattern: str, keys: Sequence[str], features, desc: str,
                      ) -> Optional[tuple[list[np.ndarray], dict[str, np.ndarray]]]:
  """Columns of a TFRecord set (`pattern` may be sharded, `name@N`), parsed in batches with
  tf.io.parse_example: at OGBN-MAG size (21M edges) a loop over records takes many minutes.
  None when the set is not TFRecord (the caller reads it record by record)."""
  from tensorflow_gnn.data import unigraph
  import tensorflow as tf
  if unigraph.guess_file_format(pattern) != "tfrecord":
    return None
  files = sorted(tf.io.gfile.glob(unigraph.expand_sharded_pattern(pattern)))
  if not files:
    raise IngestError(f"{desc}: no files match {pattern}")
  for fname, feature in features.items():
    if any(d.size < 0 for d in feature.shape.dim):
      raise IngestError(f"{desc}: feature {fname!r} has a variable size "
                        f"{[d.size for d in feature.shape.dim]}; only fixed-size features can "
                        "be ingested")
  try:
    return graph_io.read_examples(files, tuple(keys), features)
  except tf.errors.OpError as e:
    # e.g. "Feature: feat (data type: float) is required but could not be found."
    raise IngestError(f"{desc}: cannot read its records: {e.message.splitlines()[0]}") from None


def unigraph_to_graph(spec: UnigraphSource) -> graph_io.Graph:
  """Reads an existing unigraph (its GraphSchema .pbtxt, or the directory holding it) with
  TF-GNN's own readers (`unigraph.DictStreams`: TFRecord of tf.Example, or CSV)."""
  from google.protobuf import text_format
  from tensorflow_gnn.data import unigraph
  start = time.perf_counter()
  if not os.path.exists(spec.schema_file):
    raise IngestError(f"{spec.schema_file}: schema file not found")
  try:
    schema_path = unigraph.find_schema_filename(spec.schema_file)
    # unigraph.read_schema makes each set's filename absolute (relative to the schema).
    schema = unigraph.read_schema(schema_path)
  except (ValueError, text_format.ParseError) as e:
    raise IngestError(f"{spec.schema_file}: not a readable GraphSchema: {e}") from None

  node_streams = unigraph.DictStreams.iter_nodes_via_schema(schema)
  node_sets = {}
  for name, proto in schema.node_sets.items():
    if name not in node_streams:
      raise IngestError(f"{schema_path}: node set {name!r} names no file (metadata.filename)")
    desc = f"{schema_path}: node set {name!r} ({proto.metadata.filename})"
    own = {k: v for k, v in proto.features.items() if k != graph_io.ID}
    columns = _tfrecord_columns(proto.metadata.filename, (graph_io.ID,), own, desc)
    (ids,), features = columns or _example_columns(node_streams[name], 1, own, desc)
    node_sets[name] = graph_io.NodeSet(ids, features, proto.metadata.filename)

  edge_streams = unigraph.DictStreams.iter_edges_via_schema(schema)
  edge_sets: dict[str, graph_io.EdgeSet] = {}
  forward_by_file = {}
  for name, proto in schema.edge_sets.items():
    for key in ("source", "target"):
      if getattr(proto, key) not in schema.node_sets:
        raise IngestError(f"{schema_path}: edge set {name!r}: {key} node set "
                          f"{getattr(proto, key)!r} is not defined (node sets: "
                          f"{', '.join(schema.node_sets)})")
    if name not in edge_streams:
      raise IngestError(f"{schema_path}: edge set {name!r} names no file (metadata.filename)")
    if not unigraph.is_edge_reversed(proto):
      desc = f"{schema_path}: edge set {name!r} ({proto.metadata.filename})"
      own = {k: v for k, v in proto.features.items()
             if k not in (graph_io.SOURCE, graph_io.TARGET)}
      columns = _tfrecord_columns(proto.metadata.filename, (graph_io.SOURCE, graph_io.TARGET),
                                  own, desc)
      (src, tgt), features = columns or _example_columns(edge_streams[name], 2, own, desc)
      edge_sets[name] = graph_io.EdgeSet(proto.source, proto.target, src, tgt, features,
                                         proto.metadata.filename)
      forward_by_file.setdefault(proto.metadata.filename, name)
  for name, proto in schema.edge_sets.items():
    if not unigraph.is_edge_reversed(proto):
      continue
    forward = forward_by_file.get(proto.metadata.filename)
    if forward is not None and (edge_sets[forward].source_set, edge_sets[forward].target_set
                                ) == (proto.target, proto.source):
      fwd = edge_sets[forward]
      edge_sets[name] = graph_io.EdgeSet(proto.source, proto.target, fwd.targets, fwd.sources,
                                         dict(fwd.features), proto.metadata.filename,
                                         reverse_of=forward)
    else:
      # No forward set declares this file: keep the reversed edges as a set of their own
      # (DictStreams has already swapped source and target).
      desc = f"{schema_path}: edge set {name!r} ({proto.metadata.filename})"
      (src, tgt), features = _example_columns(edge_streams[name], 2, proto.features, desc)
      edge_sets[name] = graph_io.EdgeSet(proto.source, proto.target, src, tgt, features,
                                         proto.metadata.filename)

  for forward, reverse in spec.reverse.items():
    where = f"{schema_path}: data.unigraph.reverse {forward!r}: {reverse!r}"
    if forward not in edge_sets:
      raise IngestError(f"{where}: no edge set {forward!r} (edge sets: "
                        f"{', '.join(sorted(edge_sets))})")
    if reverse in edge_sets:
      if edge_sets[reverse].reverse_of == forward:
        continue  # the schema declares it already (as TF-GNN's MAG example's schema does)
      raise IngestError(f"{where}: the schema already has an edge set {reverse!r}, which is "
                        f"not {forward!r} reversed")
    fwd = edge_sets[forward]
    edge_sets[reverse] = graph_io.EdgeSet(fwd.target_set, fwd.source_set, fwd.targets,
                                          fwd.sources, dict(fwd.features), fwd.source_file,
                                          reverse_of=forward)

  if spec.label_node_set not in node_sets:
    raise IngestError(f"{schema_path}: label_node_set {spec.label_node_set!r} is not a node "
                      f"set (node sets: {', '.join(node_sets)})")
  label_set = node_sets[spec.label_node_set]
  if spec.label_feature not in label_set.features:
    raise IngestError(
        f"{schema_path}: node set {spec.label_node_set!r} has no feature "
        f"{spec.label_feature!r} (features: {', '.join(sorted(label_set.features)) or '(none)'})")
  labels = _labels(schema_path, label_set.features[spec.label_feature],
                   lambda i: f"node {label_set.ids[i]!r}", spec.label_feature,
                   spec.num_classes)
  label_set.features[spec.label_feature] = labels
  label = label_of(spec.label_node_set, spec.label_feature, spec.num_classes, labels)
  splits = make_splits(spec.splits, label_set.ids, os.path.dirname(schema_path),
                       label_set.features, f"{schema_path}: node set {spec.label_node_set!r}")
  graph = graph_io.Graph(node_sets, edge_sets, splits, label)
  logging.info("ingested unigraph %s in %.1f s: %s", schema_path,
               time.perf_counter() - start, graph.counts())
  return graph


# ---------------------------------------------------------------- the component's work
# ---------------------------------------------------------------- memory bound
# Bytes in memory per byte of table, once read: Arrow columns, then NumPy arrays of Python id
# strings (~60 bytes per short id) and float features, alive together until written.
TEXT_EXPANSION = 4.0
PARQUET_EXPANSION = 2.0  # per uncompressed byte (Parquet metadata knows it)
MEMORY_SHARE = 0.8  # of the memory available at start, when no limit is configured


def _table_memory_estimate(fs, path: str, size: int) -> int:
  """About how many bytes reading one file takes in memory (from its size, not its content)."""
  lower = path.lower()
  if lower.endswith((".parquet", ".pq")):
    import pyarrow.parquet as pq
    try:
      with fs.open(path, "rb") as f:
        metadata = pq.ParquetFile(f).metadata
      raw = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    except Exception:
      raw = size  # unreadable: the reader will say why
    return int(raw * PARQUET_EXPANSION)
  if lower.endswith(".gz") and size >= 4:
    with fs.open(path, "rb") as f:  # gzip's trailer: the uncompressed size modulo 2**32
      f.seek(size - 4)
      isize = int.from_bytes(f.read(4), "little")
    size = max(isize, size)
  return int(size * TEXT_EXPANSION)


def _memory_estimates(sources: Sequence[Union[str, tuple[str, Optional[str]]]]
                      ) -> dict[str, int]:
  """{file: estimate} for tables (a path or URL, or (URL, format)); local paths that do not
  exist are left to the reader to report."""
  sizes = {}
  for source in sources:
    url, fmt = source if isinstance(source, tuple) else (source, None)
    if not tables.is_url(url) and not os.path.exists(url) and not any(c in url for c in "*?["):
      continue
    fs, files, _ = tables.file_sizes(url, fmt)
    for path, size in files.items():
      sizes[tables.display(fs, path)] = _table_memory_estimate(fs, path, size)
  return sizes


def available_memory_bytes() -> int:
  """Memory this process can still take: the smaller of the system's available memory and
  the room left under its cgroup's limit (a container's)."""
  available = None
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          available = int(line.split()[1]) * 1024
  except OSError:
    pass
  try:
    with open("/sys/fs/cgroup/memory.max") as f:
      limit = f.read().strip()
    with open("/sys/fs/cgroup/memory.current") as f:
      current = int(f.read())
    if limit != "max":
      room = int(limit) - current
      available = room if available is None else min(available, room)
  except (OSError, ValueError):
    pass
  return available if available is not None else 1 << 62


def _source_files(data: DataConfig) -> list:
  if data.tables is not None:
    t = data.tables
    files = [(n.file, n.format) for n in t.node_sets.values()] + [
        (e.file, e.format) for e in t.edge_sets.values()]
    if t.splits is not None and t.splits.file:
      files.append((t.splits.file, t.splits.format))
    return [(tables.join(t.directory, f), fmt) for f, fmt in files]
  if data.unigraph is not None and os.path.exists(data.unigraph.schema_file):
    schema_dir = (data.unigraph.schema_file if os.path.isdir(data.unigraph.schema_file)
                  else os.path.dirname(data.unigraph.schema_file))
    return [os.path.join(schema_dir, f) for f in sorted(os.listdir(schema_dir))
            if os.path.isfile(os.path.join(schema_dir, f))]
  return []


def check_memory(files: Sequence[Union[str, tuple[str, Optional[str]]]],
                 limit_gb: Optional[float], what: str = "the graph's tables") -> None:
  """Refuses, before reading anything, a graph whose files would not fit in memory once read:
  an IngestError naming the largest file and the estimate, instead of the kernel's OOM killer.
  (The fast sampler checks the Graph artifact it loads the same way.)"""
  sizes = _memory_estimates(files)
  if not sizes:
    return
  if limit_gb is not None:
    limit, source = limit_gb * 1e9, "pipeline.memory_limit_gb"
  else:
    available = available_memory_bytes()
    limit = available * MEMORY_SHARE
    source = (f"{MEMORY_SHARE:.0%} of the {available / 1e9:.1f} GB available; "
              f"set pipeline.memory_limit_gb to override")
  total = sum(sizes.values())
  if total > limit:
    largest = max(sizes, key=sizes.get)
    raise IngestError(
        f"{what} need about {total / 1e9:.3g} GB of memory once read, more than "
        f"the limit of {limit / 1e9:.3g} GB ({source}); the largest is {largest} "
        f"(about {sizes[largest] / 1e9:.3g} GB). Nothing was read.")


def ingest(data: Union[DataConfig, dict], out_dir: str, scratch_dir: str,
           memory_limit_gb: Optional[float] = None,
           make_pipeline: Optional[Callable] = None) -> graph_io.Graph:
  """Builds the graph that `data` describes and writes it to `out_dir` as a Graph artifact's
  unigraph directory; the synthetic source generates its tables under `scratch_dir`.

  Tables larger in storage than `data.beam_threshold_mb` are ingested on the Beam pipeline
  that `make_pipeline()` gives (the component's `beam_pipeline_args`), file by file on its
  workers (`beam_ingest`), into the same artifact. Otherwise they are read in memory, and a
  graph whose tables would not fit in `memory_limit_gb` (default: most of the available
  memory) is refused before it is read (`check_memory`)."""
  if isinstance(data, dict):
    data = DataConfig.model_validate(data)
  # {SPAN} patterns name the latest span's files (GraphIngest's driver has usually resolved
  # them already; resolving again is then a no-op).
  data, _, _ = inputs.resolve_spans(data)
  if data.synthetic is not None or data.synthetic_graphs is not None:
    from tfx_gnn.components.graph_ingest import synthetic
    if data.synthetic is not None:
      s = data.synthetic
      raw = synthetic.generate_tables(scratch_dir, num_papers=s.num_papers,
                                      num_classes=s.num_classes, feature_dim=s.feature_dim,
                                      seed=s.seed)
    else:
      raw = synthetic.generate_graph_collection(scratch_dir,
                                                **data.synthetic_graphs.model_dump())
    generated = raw if isinstance(raw, TablesSource) else TablesSource.model_validate(raw)
    if not os.path.isabs(generated.directory):
      generated = generated.model_copy(
          update={"directory": os.path.join(scratch_dir, generated.directory)})
    return _ingest_tables(data, generated, out_dir, memory_limit_gb, make_pipeline)
  elif data.tables is not None:
    return _ingest_tables(data, data.tables, out_dir, memory_limit_gb, make_pipeline)
  elif data.ogb is not None:
    from tfx_gnn.components.graph_ingest import ogb
    check_memory(ogb.source_dirs(data.ogb), memory_limit_gb, what="the OGB dataset's files")
    graph = ogb.ogb_to_graph(data.ogb)
  else:
    check_memory(_source_files(data), memory_limit_gb)
    graph = unigraph_to_graph(data.unigraph)
  graph_io.write_graph(graph, out_dir)
  return graph


def _ingest_tables(data: DataConfig, spec: TablesSource, out_dir: str,
                   memory_limit_gb: Optional[float], make_pipeline: Optional[Callable],
                   ) -> graph_io.Graph:
  from tfx_gnn.components.graph_ingest import beam_ingest
  if make_pipeline is not None and beam_ingest.uses_beam(data, spec):
    return beam_ingest.tables_to_graph_dir(spec, out_dir, make_pipeline)
  check_memory(_source_files(DataConfig(tables=spec)), memory_limit_gb)
  graph = tables_to_graph(spec)
  graph_io.write_graph(graph, out_dir)
  return graph
