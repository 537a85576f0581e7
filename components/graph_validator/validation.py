"""The GraphValidator's logic: statistics and anomalies of an in-memory `graph_io.Graph`.

No TFX here: the executor reads the artifact, calls `validate` (or `compute_statistics` and
`find_anomalies`), writes the results and calls `check`, which fails the run with a report.

Node ids are hashed once per node set (a pandas Index: hash lookups, not sorts of Python
strings) and every edge endpoint becomes a row number into it, -1 where the id is unknown;
all later checks are integer numpy operations, so ~1M nodes and ~10M edges take seconds.

Row numbers in messages are 0-based data rows of the set's table (the header not counted).
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np
import pandas as pd

from tfx_gnn.components import graph_io

if TYPE_CHECKING:
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components.graph_validator.config import ValidationConfig

MAX_EXAMPLES = 10

# Anomaly kinds.
SCHEMA_INVALID = "schema_invalid"  # tfgnn.validate_schema raised
SCHEMA_WARNING = "schema_warning"  # tfgnn.validate_schema warned (severity "warning")
SCHEMA_MISMATCH = "schema_mismatch"  # the GraphSchema and the data disagree on sets/features
LENGTH_MISMATCH = "length_mismatch"  # a column with a different number of rows than its set
UNKNOWN_NODE_SET = "unknown_node_set"  # an edge set's endpoint node set does not exist
INVALID_REVERSE = "invalid_reverse"  # reverse_of names no edge set, or endpoints not swapped
EMPTY_NODE_SET = "empty_node_set"
EMPTY_EDGE_SET = "empty_edge_set"
DUPLICATE_NODE_ID = "duplicate_node_id"
DANGLING_EDGE = "dangling_edge"  # an edge endpoint id that is not in its node set
NON_FINITE_FEATURE = "non_finite_feature"  # NaN or Inf in a float feature
SELF_LOOP = "self_loop"  # only when ValidationConfig.allow_self_loops is False
DUPLICATE_EDGE = "duplicate_edge"  # only when ValidationConfig.allow_duplicate_edges is False
ISOLATED_NODES = "isolated_nodes"  # fraction above ValidationConfig.max_isolated_fraction
LABEL_MISSING = "label_missing"  # label node set/feature absent, or NaN labels
LABEL_INVALID = "label_invalid"  # label feature of the wrong dtype or shape, bad num_classes
LABEL_OUT_OF_RANGE = "label_out_of_range"  # not an integer in [0, num_classes)
SPLIT_UNKNOWN_IDS = "split_unknown_ids"  # seed ids that are not nodes of the label node set
SPLIT_DUPLICATE_IDS = "split_duplicate_ids"  # an id listed twice in one split
SPLIT_OVERLAP = "split_overlap"  # an id in two splits
SPLIT_EMPTY_TRAIN = "split_empty_train"

KINDS = (SCHEMA_INVALID, SCHEMA_WARNING, SCHEMA_MISMATCH, LENGTH_MISMATCH, UNKNOWN_NODE_SET,
         INVALID_REVERSE, EMPTY_NODE_SET, EMPTY_EDGE_SET, DUPLICATE_NODE_ID, DANGLING_EDGE,
         NON_FINITE_FEATURE, SELF_LOOP, DUPLICATE_EDGE, ISOLATED_NODES, LABEL_MISSING,
         LABEL_INVALID, LABEL_OUT_OF_RANGE, SPLIT_UNKNOWN_IDS, SPLIT_DUPLICATE_IDS, SPLIT_OVERLAP,
         SPLIT_EMPTY_TRAIN)

ERROR = "error"
WARNING = "warning"


@dataclasses.dataclass
class Anomaly:
  """One problem found in a graph. `examples` holds at most MAX_EXAMPLES offending ids (str)
  or rows (dicts with "row" and ids); `count` is how many there are in all."""
  kind: str
  set_name: str
  file: str
  message: str
  examples: list[Any] = dataclasses.field(default_factory=list)
  count: int = 1
  severity: str = ERROR  # warnings are reported but do not fail `check`

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict) -> Anomaly:
    return cls(**d)


class GraphValidationError(ValueError):
  """The graph has anomalies; the message is the readable report."""

  def __init__(self, anomalies: Sequence[Anomaly]):
    super().__init__(format_report(anomalies))
    self.anomalies = list(anomalies)


# ---------------------------------------------------------------- shared id index
class _GraphIndex:
  """Hash indexes of node ids, and edge endpoints as positions in them, each computed once."""

  def __init__(self, graph: graph_io.Graph):
    self.graph = graph
    self._nodes: dict[str, tuple[pd.Index, Optional[np.ndarray]]] = {}
    self._codes: dict[tuple[int, str], np.ndarray] = {}
    self._pinned: list[np.ndarray] = []  # keeps arrays alive, so id() cache keys stay unique
    self.masks: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # see _edge_masks

  def nodes(self, name: str) -> pd.Index:
    """The node set's distinct ids, in order of first appearance."""
    return self._node_entry(name)[0]

  def first_rows(self, name: str) -> Optional[np.ndarray]:
    """Row of each distinct id (its first row); None when ids are unique (row == position)."""
    return self._node_entry(name)[1]

  def _node_entry(self, name):
    if name not in self._nodes:
      index = pd.Index(np.asarray(self.graph.node_sets[name].ids, dtype=object), dtype=object)
      rows = None
      if not index.is_unique:
        keep = ~index.duplicated(keep="first")
        rows = np.flatnonzero(keep)
        index = index[keep]
      self._nodes[name] = (index, rows)
    return self._nodes[name]

  def codes(self, ids: np.ndarray, node_set: str) -> np.ndarray:
    """Position of each id in `nodes(node_set)`, -1 where it is not a node of the set.

    Cached by array identity: a reversed edge set holds its forward set's arrays, so its
    endpoints are looked up once.
    """
    key = (id(ids), node_set)
    if key not in self._codes:
      self._pinned.append(ids)
      self._codes[key] = self.nodes(node_set).get_indexer(
          np.asarray(ids, dtype=object)).astype(np.int64)
    return self._codes[key]

  def rows_of(self, codes: np.ndarray, node_set: str) -> np.ndarray:
    rows = self.first_rows(node_set)
    return codes if rows is None else rows[codes]


# ---------------------------------------------------------------- small helpers
def _node_file(graph: graph_io.Graph, name: str) -> str:
  return graph.node_sets[name].source_file or graph_io.node_file(name)


def _edge_file(graph: graph_io.Graph, name: str) -> str:
  edge_set = graph.edge_sets[name]
  return edge_set.source_file or graph_io.edge_file(edge_set.reverse_of or name)


def _seeds_file(split: str) -> str:
  return f"{graph_io.SEEDS_DIR}/{split}.csv"


def _preview(values: Sequence[Any], total: int) -> str:
  """At most MAX_EXAMPLES values, and how many more there are."""
  shown = ", ".join(_render(v) for v in list(values)[:MAX_EXAMPLES])
  more = total - min(len(values), MAX_EXAMPLES)
  return shown + (f", ... ({more} more)" if more > 0 else "")


def _render(value: Any) -> str:
  if isinstance(value, dict) and "rows" in value:
    return f"{value['id']!r} at rows {value['rows']}"
  if isinstance(value, dict) and "label" in value:
    return f"{value['id']!r} = {value['label']}"
  if isinstance(value, dict):
    ids = " -> ".join(repr(value[k]) for k in ("source", "target") if k in value)
    if "id" in value:
      ids = repr(value["id"])
    return f"row {value['row']}: {ids}" if "row" in value else ids
  return repr(value)


def _plural(n: int, word: str) -> str:
  return f"{n} {word}" + ("" if n == 1 else "s")


def _edge_rows(edge_set: graph_io.EdgeSet, rows: np.ndarray) -> list[dict]:
  return [{"row": int(r), "source": str(edge_set.sources[r]), "target": str(edge_set.targets[r])}
          for r in rows[:MAX_EXAMPLES]]


def _edge_rows_anomaly(kind: str, name: str, file: str, edge_set: graph_io.EdgeSet,
                       mask: np.ndarray, describe) -> Anomaly:
  """One anomaly for the edge rows where `mask` holds; `describe(count)` says what they are."""
  rows = np.flatnonzero(mask)
  examples = _edge_rows(edge_set, rows)
  return Anomaly(kind, name, file,
                 f"edge set {name!r} ({file}): {describe(len(rows))}: "
                 f"{_preview(examples, len(rows))}",
                 examples=examples, count=len(rows))


def duplicate_ids(ids: np.ndarray, rows: np.ndarray) -> tuple[int, int, list[dict]]:
  """(ids used by more than one row, extra rows, examples) of node ids at `rows` (ascending):
  examples are the first MAX_EXAMPLES such ids by first row, each with all its rows."""
  series = pd.Series(ids, index=rows, dtype=object)
  dup = series[series.duplicated(keep=False)]
  dup_ids = list(dict.fromkeys(dup.tolist()))  # distinct, in order of first appearance
  extra = int(series.duplicated().sum())
  examples = []
  for i in dup_ids[:MAX_EXAMPLES]:
    examples.append({"id": str(i), "rows": [int(r) for r in dup.index[dup.to_numpy() == i]]})
  return len(dup_ids), extra, examples


def duplicate_ids_anomaly(name: str, file: str, count: int, extra: int,
                          examples: list[dict]) -> Anomaly:
  return Anomaly(
      DUPLICATE_NODE_ID, name, file,
      f"node set {name!r} ({file}): {_plural(count, 'id')} used by more than one "
      f"row ({_plural(extra, 'extra row')}): {_preview(examples, count)}",
      examples=examples, count=count)


def dangling_anomaly(name: str, file: str, end: str, node_set: str, count: int,
                     distinct: int, examples: list[dict]) -> Anomaly:
  """Edges of `name` whose `end` ("source", "target") id is not a node of `node_set`."""
  return Anomaly(
      DANGLING_EDGE, name, file,
      f"edge set {name!r} ({file}): {_plural(count, 'edge')} with a {end} id that "
      f"is not a node of {node_set!r} ({distinct} distinct ids): {_preview(examples, count)}",
      examples=examples, count=count)


def _is_checked(graph: graph_io.Graph, name: str) -> bool:
  """False for a valid reversed edge set: its data is its forward set's, checked there."""
  edge_set = graph.edge_sets[name]
  return not (edge_set.reverse_of and edge_set.reverse_of in graph.edge_sets)


def _lengths_ok(graph: graph_io.Graph) -> dict[str, bool]:
  """Sets whose columns all have as many rows as the set (others are skipped by row checks)."""
  ok = {}
  for name, node_set in graph.node_sets.items():
    ok["n:" + name] = all(len(f) == len(node_set.ids) for f in node_set.features.values())
  for name, edge_set in graph.edge_sets.items():
    ok["e:" + name] = (len(edge_set.sources) == len(edge_set.targets) and
                       all(len(f) == len(edge_set.sources) for f in edge_set.features.values()))
  return ok


def _row_non_finite(array: np.ndarray) -> Optional[np.ndarray]:
  """Per row: whether any value is NaN or Inf; None for non-float features."""
  if array.dtype.kind not in "fc" or len(array) == 0:
    return None
  finite = np.isfinite(array)
  return ~finite.reshape(len(array), -1).all(axis=1)


# ---------------------------------------------------------------- statistics
HISTOGRAM_BINS = 20


def value_histogram(values: np.ndarray) -> dict:
  """Equal-width histogram of the finite values: {"edges": [...], "counts": [...]}. Runs
  compare histograms with different edges by re-bucketing (drift.py), as TFDV does; a
  constant column gets one bucket of width 1 around its value."""
  values = values[np.isfinite(values)] if values.dtype.kind == "f" else values
  if values.size == 0:
    return {"edges": [], "counts": []}
  lo, hi = float(values.min()), float(values.max())
  if lo == hi:
    return {"edges": [lo - 0.5, lo + 0.5], "counts": [int(values.size)]}
  counts, edges = np.histogram(values, bins=HISTOGRAM_BINS, range=(lo, hi))
  return {"edges": edges.tolist(), "counts": counts.tolist()}


def _feature_stats(array: np.ndarray) -> dict:
  array = np.asarray(array)
  stats: dict[str, Any] = {"dtype": str(array.dtype), "shape": [int(d) for d in array.shape[1:]]}
  if array.dtype.kind in "biuf":
    nan = int(np.isnan(array).sum()) if array.dtype.kind == "f" else 0
    inf = int(np.isinf(array).sum()) if array.dtype.kind == "f" else 0
    finite = array[np.isfinite(array)] if nan or inf else array.reshape(-1)
    if finite.size:
      stats.update(min=float(finite.min()), max=float(finite.max()),
                   mean=float(finite.mean(dtype=np.float64)))
    else:
      stats.update(min=None, max=None, mean=None)
    stats.update(nan_count=nan, inf_count=inf)
    # One histogram per component of a vector feature: a shift in one dimension of a 128-d
    # feature would vanish in a histogram of all its values (the drift check compares these).
    columns = array.reshape(len(array), int(np.prod(array.shape[1:]))).astype(np.float64,
                                                                               copy=False)
    stats["histograms"] = [value_histogram(columns[:, j]) for j in range(columns.shape[1])]
  return stats


def _degree_summary(degrees: np.ndarray) -> dict:
  """Summary and distribution of one side's degrees (one per node of the endpoint set); the
  distribution as {"degree": [d, ...], "nodes": [how many nodes have degree d, ...]}, compact
  at any size (the run report plots it)."""
  values, counts = np.unique(degrees, return_counts=True)
  histogram = {"degree": values.tolist(), "nodes": counts.tolist()}
  if degrees.size == 0:
    return {"min": None, "mean": None, "max": None, "p50": None, "p90": None, "p99": None,
            "isolated": 0, "histogram": histogram}
  p50, p90, p99 = np.percentile(degrees, [50, 90, 99])
  return {"min": int(degrees.min()), "mean": float(degrees.mean()), "max": int(degrees.max()),
          "p50": float(p50), "p90": float(p90), "p99": float(p99),
          "isolated": int((degrees == 0).sum()), "histogram": histogram}


def _edge_codes(index: _GraphIndex, edge_set: graph_io.EdgeSet):
  """Positions of an edge set's endpoints in their node sets (which must exist), -1 if unknown."""
  return (index.codes(edge_set.sources, edge_set.source_set),
          index.codes(edge_set.targets, edge_set.target_set))


def _edge_masks(index: _GraphIndex, name: str) -> tuple[np.ndarray, np.ndarray]:
  """(self-loop, duplicate) row masks of an edge set, over edges with both endpoints known;
  the duplicate mask marks every copy after the first. Cached: it sorts all edges."""
  if name not in index.masks:
    edge_set = index.graph.edge_sets[name]
    src, tgt = _edge_codes(index, edge_set)
    known = (src >= 0) & (tgt >= 0)
    loops = known & (src == tgt) if edge_set.source_set == edge_set.target_set else (
        np.zeros(len(src), bool))
    # One int64 key per edge (source position, target position): exact below ~3e9 nodes a set.
    keys = np.where(known, src * len(index.nodes(edge_set.target_set)) + tgt, -1)
    duplicate = np.zeros(len(src), bool)
    if len(keys):
      order = np.argsort(keys, kind="stable")  # stable: the first row of a repeat is kept
      sorted_keys = keys[order]
      repeat = np.concatenate([[False], sorted_keys[1:] == sorted_keys[:-1]]) & (sorted_keys >= 0)
      duplicate[order[repeat]] = True
    index.masks[name] = (loops, duplicate)
  return index.masks[name]


def _label_values(graph: graph_io.Graph) -> Optional[np.ndarray]:
  """The label column as a 1-D numeric array, or None when it is absent or unusable."""
  label = graph.label
  if label is None or label.node_set not in graph.node_sets:
    return None
  values = graph.node_sets[label.node_set].features.get(label.feature)
  if values is None:
    return None
  values = np.asarray(values)
  if values.ndim == 2 and values.shape[1] == 1:
    values = values[:, 0]
  if values.ndim != 1 or values.dtype.kind not in "biuf":
    return None
  return values


def _histogram(values: np.ndarray) -> dict[str, int]:
  out: dict[str, int] = {}
  if values.dtype.kind == "f":
    missing = np.isnan(values)
    if missing.any():
      out["missing"] = int(missing.sum())
    values = values[~missing]
  classes, counts = np.unique(values, return_counts=True)
  for c, n in zip(classes, counts):
    key = str(int(c)) if float(c).is_integer() else str(float(c))
    out[key] = int(n)
  return out


def _statistics(graph: graph_io.Graph, index: _GraphIndex) -> dict:
  lengths = _lengths_ok(graph)
  stats: dict[str, Any] = {"node_sets": {}, "edge_sets": {}, "label": None, "splits": {}}
  for name, node_set in graph.node_sets.items():
    stats["node_sets"][name] = {
        "count": len(node_set),
        "distinct_ids": len(index.nodes(name)),
        "source_file": node_set.source_file,
        "features": {f: _feature_stats(a) for f, a in node_set.features.items()},
    }
  for name, edge_set in graph.edge_sets.items():
    entry: dict[str, Any] = {
        "count": len(edge_set),
        "source_set": edge_set.source_set,
        "target_set": edge_set.target_set,
        "reverse_of": edge_set.reverse_of,
        "source_file": edge_set.source_file,
        "features": {f: _feature_stats(a) for f, a in edge_set.features.items()},
        "out_degree": None, "in_degree": None,
        "dangling_edges": None, "self_loops": None, "duplicate_edges": None,
    }
    if (lengths["e:" + name] and edge_set.source_set in graph.node_sets and
        edge_set.target_set in graph.node_sets):
      src, tgt = _edge_codes(index, edge_set)
      # A reversed set has its forward set's loops and duplicates: don't sort its edges again.
      loops, duplicate = _edge_masks(
          index, name if _is_checked(graph, name) else edge_set.reverse_of)
      n_src, n_tgt = len(index.nodes(edge_set.source_set)), len(index.nodes(edge_set.target_set))
      entry.update(
          out_degree=_degree_summary(np.bincount(src[src >= 0], minlength=n_src)),
          in_degree=_degree_summary(np.bincount(tgt[tgt >= 0], minlength=n_tgt)),
          dangling_edges=int(((src < 0) | (tgt < 0)).sum()),
          self_loops=int(loops.sum()),
          duplicate_edges=int(duplicate.sum()))
    stats["edge_sets"][name] = entry
  values = _label_values(graph)
  # Class shares only: real-valued targets' values are no categories.
  if (values is not None and lengths["n:" + graph.label.node_set]
      and not graph.label.real_valued):
    label = graph.label
    per_split = {}
    for split, ids in graph.splits.items():
      codes = index.codes(ids, label.node_set)
      per_split[split] = _histogram(values[index.rows_of(codes[codes >= 0], label.node_set)])
    stats["label"] = {"node_set": label.node_set, "feature": label.feature,
                      "num_classes": int(label.num_classes), "histogram": _histogram(values),
                      "split_histograms": per_split}
  stats["splits"] = {k: len(v) for k, v in graph.splits.items()}
  return stats


def compute_statistics(graph: graph_io.Graph) -> dict:
  """JSON-able statistics of `graph`: counts, features, degrees, labels and splits.

  Degree summaries cover the distinct nodes of the endpoint node set (out-degree over the
  source set, in-degree over the target set) and count edges whose endpoint id is known;
  `isolated` is the number of those nodes with no edge of this set.
  """
  return _statistics(graph, _GraphIndex(graph))


# ---------------------------------------------------------------- anomalies
def schema_anomalies(graph: graph_io.Graph, schema) -> list[Anomaly]:
  import tensorflow_gnn as tfgnn
  out = []
  try:
    warnings = tfgnn.validate_schema(schema)
  except Exception as e:
    # Whatever it raises means TF-GNN's tools would reject the schema.
    out.append(Anomaly(SCHEMA_INVALID, "", graph_io.SCHEMA_FILE,
                       f"GraphSchema rejected by tfgnn.validate_schema: {e}"))
    warnings = []
  for w in warnings:
    out.append(Anomaly(SCHEMA_WARNING, "", graph_io.SCHEMA_FILE,
                       f"tfgnn.validate_schema warns: {w}", severity=WARNING))

  def compare(kind_of_set, name, file, in_schema, in_graph):
    if set(in_schema) != set(in_graph):
      only_schema = sorted(set(in_schema) - set(in_graph))
      only_graph = sorted(set(in_graph) - set(in_schema))
      out.append(Anomaly(
          SCHEMA_MISMATCH, name, file,
          f"{kind_of_set} set {name!r} ({file}): features in the schema but not the data: "
          f"{only_schema}; in the data but not the schema: {only_graph}",
          examples=only_schema + only_graph, count=len(only_schema) + len(only_graph)))

  for kind_of_set, in_schema, in_graph in (("node", schema.node_sets, graph.node_sets),
                                           ("edge", schema.edge_sets, graph.edge_sets)):
    only_schema = sorted(set(in_schema) - set(in_graph))
    only_graph = sorted(set(in_graph) - set(in_schema))
    if only_schema or only_graph:
      out.append(Anomaly(
          SCHEMA_MISMATCH, "", graph_io.SCHEMA_FILE,
          f"{kind_of_set} sets in the schema but not the data: {only_schema}; "
          f"in the data but not the schema: {only_graph}",
          examples=only_schema + only_graph, count=len(only_schema) + len(only_graph)))
  for name, node_set in graph.node_sets.items():
    if name in schema.node_sets:
      compare("node", name, _node_file(graph, name), schema.node_sets[name].features,
              node_set.features)
  for name, edge_set in graph.edge_sets.items():
    if name not in schema.edge_sets:
      continue
    proto = schema.edge_sets[name]
    file = _edge_file(graph, name)
    if (proto.source, proto.target) != (edge_set.source_set, edge_set.target_set):
      out.append(Anomaly(
          SCHEMA_MISMATCH, name, file,
          f"edge set {name!r} ({file}): the schema says {proto.source} -> {proto.target}, "
          f"the data {edge_set.source_set} -> {edge_set.target_set}"))
    if _is_checked(graph, name):  # a reversed set's features are declared on its forward set
      compare("edge", name, file, proto.features, edge_set.features)
  return out


def _structure_anomalies(graph: graph_io.Graph, index: _GraphIndex,
                         config: ValidationConfig) -> list[Anomaly]:
  out = []
  lengths = _lengths_ok(graph)
  # Set-level problems first: they decide which row-level checks can run.
  for name, node_set in graph.node_sets.items():
    file = _node_file(graph, name)
    if not lengths["n:" + name]:
      bad = {f: len(a) for f, a in node_set.features.items() if len(a) != len(node_set.ids)}
      out.append(Anomaly(LENGTH_MISMATCH, name, file,
                         f"node set {name!r} ({file}) has {len(node_set.ids)} ids but feature "
                         f"row counts {bad}", examples=sorted(bad), count=len(bad)))
    if len(node_set) == 0:
      out.append(Anomaly(EMPTY_NODE_SET, name, file, f"node set {name!r} ({file}) is empty",
                         count=0))
  for name, edge_set in graph.edge_sets.items():
    file = _edge_file(graph, name)
    if edge_set.reverse_of:
      forward = graph.edge_sets.get(edge_set.reverse_of)
      if forward is None:
        out.append(Anomaly(INVALID_REVERSE, name, file,
                           f"edge set {name!r} ({file}) reverses {edge_set.reverse_of!r}, "
                           "which is not an edge set of the graph"))
      elif (forward.source_set, forward.target_set) != (edge_set.target_set,
                                                        edge_set.source_set):
        out.append(Anomaly(
            INVALID_REVERSE, name, file,
            f"edge set {name!r} ({file}) is {edge_set.source_set} -> {edge_set.target_set} "
            f"but reverses {edge_set.reverse_of!r} ({forward.source_set} -> "
            f"{forward.target_set})"))
    if not _is_checked(graph, name):
      continue
    if not lengths["e:" + name]:
      out.append(Anomaly(
          LENGTH_MISMATCH, name, file,
          f"edge set {name!r} ({file}): {len(edge_set.sources)} sources, "
          f"{len(edge_set.targets)} targets, feature row counts "
          f"{ {f: len(a) for f, a in edge_set.features.items()} }"))
    if len(edge_set) == 0:
      out.append(Anomaly(EMPTY_EDGE_SET, name, file, f"edge set {name!r} ({file}) is empty",
                         count=0))
    for end in sorted({edge_set.source_set, edge_set.target_set} - set(graph.node_sets)):
      out.append(Anomaly(UNKNOWN_NODE_SET, name, file,
                         f"edge set {name!r} ({file}) connects node set {end!r}, which the "
                         "graph does not have"))

  # Node sets: duplicate ids, non-finite features.
  for name, node_set in graph.node_sets.items():
    file = _node_file(graph, name)
    if index.first_rows(name) is not None:
      count, extra, examples = duplicate_ids(np.asarray(node_set.ids, dtype=object),
                                             np.arange(len(node_set.ids)))
      out.append(duplicate_ids_anomaly(name, file, count, extra, examples))
    if not lengths["n:" + name]:
      continue
    for fname, array in node_set.features.items():
      bad = _row_non_finite(np.asarray(array))
      if bad is not None and bad.any():
        rows = np.flatnonzero(bad)
        ids = [str(node_set.ids[r]) for r in rows[:MAX_EXAMPLES]]
        out.append(Anomaly(
            NON_FINITE_FEATURE, name, file,
            f"node set {name!r} ({file}): feature {fname!r} is NaN or Inf for "
            f"{_plural(len(rows), 'node')}: {_preview(ids, len(rows))}",
            examples=ids, count=len(rows)))

  # Edge sets: referential integrity, non-finite features, self-loops, duplicates.
  has_edge = {name: np.zeros(len(index.nodes(name)), bool) for name in graph.node_sets}
  for name, edge_set in graph.edge_sets.items():
    file = _edge_file(graph, name)
    if (not lengths["e:" + name] or edge_set.source_set not in graph.node_sets or
        edge_set.target_set not in graph.node_sets or not _is_checked(graph, name)):
      continue  # a valid reversed set connects the same nodes as its forward set
    src, tgt = _edge_codes(index, edge_set)
    loops, duplicate = _edge_masks(index, name)
    has_edge[edge_set.source_set][src[src >= 0]] = True
    has_edge[edge_set.target_set][tgt[tgt >= 0]] = True
    for end, codes, ids, node_set in (("source", src, edge_set.sources, edge_set.source_set),
                                      ("target", tgt, edge_set.targets, edge_set.target_set)):
      rows = np.flatnonzero(codes < 0)
      if len(rows):
        examples = [{"row": int(r), "id": str(ids[r])} for r in rows[:MAX_EXAMPLES]]
        distinct = len(pd.unique(np.asarray(ids, dtype=object)[rows]))
        out.append(dangling_anomaly(name, file, end, node_set, len(rows), distinct, examples))
    for fname, array in edge_set.features.items():
      bad = _row_non_finite(np.asarray(array))
      if bad is not None and bad.any():
        out.append(_edge_rows_anomaly(
            NON_FINITE_FEATURE, name, file, edge_set, bad,
            lambda n: f"feature {fname!r} is NaN or Inf for {_plural(n, 'edge')}"))
    if not config.allow_self_loops and loops.any():
      out.append(_edge_rows_anomaly(
          SELF_LOOP, name, file, edge_set, loops,
          lambda n: f"{_plural(n, 'self-loop')} (not allowed by validation.allow_self_loops)"))
    if not config.allow_duplicate_edges and duplicate.any():
      out.append(_edge_rows_anomaly(
          DUPLICATE_EDGE, name, file, edge_set, duplicate,
          lambda n: f"{_plural(n, 'duplicate edge')} (repeats of an earlier row; not allowed "
                    f"by validation.allow_duplicate_edges)"))

  # Isolated nodes: no edge of any edge set, in either direction.
  for name, mask in has_edge.items():
    if not len(mask):
      continue
    isolated = np.flatnonzero(~mask)
    fraction = len(isolated) / len(mask)
    if fraction > config.max_isolated_fraction:
      file = _node_file(graph, name)
      ids = index.nodes(name)[isolated[:MAX_EXAMPLES]].tolist()
      out.append(Anomaly(
          ISOLATED_NODES, name, file,
          f"node set {name!r} ({file}): {len(isolated)} of {len(mask)} nodes ({fraction:.1%}) "
          f"have no edges, above validation.max_isolated_fraction = "
          f"{config.max_isolated_fraction:.1%}: {_preview(ids, len(isolated))}",
          examples=[str(i) for i in ids], count=len(isolated)))
  return out


def _label_and_split_anomalies(graph: graph_io.Graph, index: _GraphIndex) -> list[Anomaly]:
  out = []
  label = graph.label
  labelled = label is not None and label.node_set in graph.node_sets
  lengths = _lengths_ok(graph)

  # Splits: membership, duplicates, overlaps, a non-empty train split.
  split_rows = []  # rows of the label node set that some split uses
  for split, ids in graph.splits.items():
    file = _seeds_file(split)
    ids = np.asarray(ids, dtype=object)
    series = pd.Series(ids)
    dup = series[series.duplicated()]
    if len(dup):
      distinct = list(dict.fromkeys(dup.tolist()))
      out.append(Anomaly(
          SPLIT_DUPLICATE_IDS, split, file,
          f"split {split!r} ({file}) lists {_plural(len(distinct), 'id')} more than once: "
          f"{_preview(distinct, len(distinct))}",
          examples=[str(i) for i in distinct[:MAX_EXAMPLES]], count=len(distinct)))
    if labelled:
      codes = index.codes(ids, label.node_set)
      rows = np.flatnonzero(codes < 0)
      if len(rows):
        examples = [{"row": int(r), "id": str(ids[r])} for r in rows[:MAX_EXAMPLES]]
        out.append(Anomaly(
            SPLIT_UNKNOWN_IDS, split, file,
            f"split {split!r} ({file}): {_plural(len(rows), 'id')} not in label node set "
            f"{label.node_set!r}: {_preview(examples, len(rows))}",
            examples=examples, count=len(rows)))
      split_rows.append(index.rows_of(codes[codes >= 0], label.node_set))
  names = list(graph.splits)
  for i, a in enumerate(names):
    for b in names[i + 1:]:
      a_ids = pd.Series(np.asarray(graph.splits[a], dtype=object))
      common = pd.unique(a_ids[a_ids.isin(np.asarray(graph.splits[b], dtype=object))])
      if len(common):
        shown = [str(c) for c in common[:MAX_EXAMPLES]]
        out.append(Anomaly(
            SPLIT_OVERLAP, f"{a}/{b}", f"{_seeds_file(a)}, {_seeds_file(b)}",
            f"splits {a!r} and {b!r} ({_seeds_file(a)}, {_seeds_file(b)}) share "
            f"{_plural(len(common), 'id')}: {_preview(shown, len(common))}",
            examples=shown, count=len(common)))
  if (label is not None or graph.splits) and len(graph.splits.get("train", ())) == 0:
    out.append(Anomaly(SPLIT_EMPTY_TRAIN, "train", _seeds_file("train"),
                       f"the train split ({_seeds_file('train')}) is "
                       f"{'empty' if 'train' in graph.splits else 'missing'}: no node is "
                       "assigned to 'train' by the split table or ratios (data.*.splits)",
                       count=0))

  # Labels.
  if label is None:
    return out
  if not labelled:
    out.append(Anomaly(LABEL_MISSING, label.node_set, "",
                       f"label node set {label.node_set!r} is not a node set of the graph"))
    return out
  name = label.node_set
  file = _node_file(graph, name)
  node_set = graph.node_sets[name]
  if label.feature not in node_set.features:
    out.append(Anomaly(LABEL_MISSING, name, file,
                       f"node set {name!r} ({file}) has no label feature {label.feature!r}"))
    return out
  if not label.real_valued and (not isinstance(label.num_classes, (int, np.integer))
                                or label.num_classes < 1):
    out.append(Anomaly(LABEL_INVALID, name, file,
                       f"label {name!r}.{label.feature!r}: num_classes must be a positive "
                       f"integer, got {label.num_classes!r}"))
    return out
  values = _label_values(graph)
  if values is None:
    array = np.asarray(node_set.features[label.feature])
    out.append(Anomaly(LABEL_INVALID, name, file,
                       f"node set {name!r} ({file}): label feature {label.feature!r} must be "
                       f"one integer per node, got dtype {array.dtype} and shape "
                       f"{list(array.shape[1:])} per node"))
    return out
  if not lengths["n:" + name]:
    return out
  # Labels matter where seeds are: with splits, only their nodes are checked, so unlabelled
  # nodes outside every split (often -1) are fine; without splits, every node.
  rows = np.unique(np.concatenate(split_rows)) if split_rows else np.arange(len(values))
  v = values[rows].astype(np.float64)  # one comparison path for int, bool and float labels
  missing = np.isnan(v)
  where = "of split nodes " if split_rows else ""
  if missing.any():
    bad_rows = rows[missing]
    ids = [str(node_set.ids[r]) for r in bad_rows[:MAX_EXAMPLES]]
    out.append(Anomaly(
        LABEL_MISSING, name, file,
        f"node set {name!r} ({file}): label {label.feature!r} {where}is missing (NaN) for "
        f"{_plural(len(bad_rows), 'node')}: {_preview(ids, len(bad_rows))}",
        examples=ids, count=len(bad_rows)))
  if label.real_valued:  # regression targets: any finite number
    return out
  with np.errstate(invalid="ignore"):
    bad = ~missing & ((v < 0) | (v >= label.num_classes) | (np.floor(v) != v))
  if bad.any():
    bad_rows = rows[bad]
    examples = [{"id": str(node_set.ids[r]), "label": values[r].item()}
                for r in bad_rows[:MAX_EXAMPLES]]
    out.append(Anomaly(
        LABEL_OUT_OF_RANGE, name, file,
        f"node set {name!r} ({file}): label {label.feature!r} {where}is not an integer in "
        f"[0, {label.num_classes}) for {_plural(len(bad_rows), 'node')}: "
        f"{_preview(examples, len(bad_rows))}",
        examples=examples, count=len(bad_rows)))
  return out


def _anomalies(graph: graph_io.Graph, schema, config, index: _GraphIndex) -> list[Anomaly]:
  if config is None:
    from tfx_gnn.components.graph_validator.config import ValidationConfig
    config = ValidationConfig()
  out = []
  if schema is not None:
    out += schema_anomalies(graph, schema)
  out += _structure_anomalies(graph, index, config)
  out += _label_and_split_anomalies(graph, index)
  return out


def find_anomalies(graph: graph_io.Graph, schema: Optional[tfgnn.GraphSchema],
                   config: Optional[ValidationConfig] = None) -> list[Anomaly]:
  """Every problem found in `graph` and its `schema` (None: skip the schema checks).

  A reversed edge set (`reverse_of`) holds its forward set's data, so its rows are checked
  only through the forward set.
  """
  return _anomalies(graph, schema, config, _GraphIndex(graph))


def validate(graph: graph_io.Graph, schema: Optional[tfgnn.GraphSchema],
             config: Optional[ValidationConfig] = None) -> tuple[dict, list[Anomaly]]:
  """`compute_statistics` and `find_anomalies` sharing one id index (half the hashing)."""
  index = _GraphIndex(graph)
  return _statistics(graph, index), _anomalies(graph, schema, config, index)


def format_report(anomalies: Sequence[Anomaly]) -> str:
  """A readable report: one block per anomaly naming its set, file, offending ids and count."""
  if not anomalies:
    return "Graph validation found no anomalies."
  errors = sum(a.severity == ERROR for a in anomalies)
  warnings = len(anomalies) - errors
  lines = [f"Graph validation found {_plural(errors, 'error')} and "
           f"{_plural(warnings, 'warning')}:"]
  for i, a in enumerate(anomalies, 1):
    lines.append("")
    lines.append(f"{i}. [{a.severity}] {a.kind}")
    lines.append(f"   set:   {a.set_name or '-'}")
    lines.append(f"   file:  {a.file or '-'}")
    lines.append(f"   count: {a.count}")
    lines.append(f"   {a.message}")
    if a.examples:
      lines.append(f"   examples: {_preview(a.examples, max(a.count, len(a.examples)))}")
  return "\n".join(lines)


def check(anomalies: Sequence[Anomaly]) -> None:
  """Raises GraphValidationError (message: the report) if any anomaly is an error."""
  if any(a.severity == ERROR for a in anomalies):
    raise GraphValidationError(anomalies)
