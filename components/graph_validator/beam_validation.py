"""GraphValidator's id checks as a Beam pipeline, for graphs beyond one process's memory.

Every node id and every edge endpoint is routed by a stable hash of the id to one of
`partitions` groups (pandas' hash_array: the same in every worker process, unlike Python's
salted `hash`). A worker streams one set's TFRecord file in batches and emits, per batch and
group, the ids with their row numbers; after a GroupByKey each group holds every occurrence of
its ids, so each group finds on its own, with the in-memory validator's own functions:

- duplicate node ids (ids used by more than one row of a node set, with all their rows);
- dangling edges (a source or target id that is not a node of its endpoint set);
- each node set's distinct ids and each edge set's dangling edges (statistics).

The groups' partial results (counts and the first MAX_EXAMPLES rows) are written as JSON and
merged by the driver into the same anomalies, message for message, as `validation.validate`
finds on the whole graph in memory (tests/test_beam_ingest.py). Like the Beam ingest, the
pipeline has no Beam source or sink and runs on every runner, DaskRunner included.
"""
from __future__ import annotations

import json
import os
from typing import Callable

import apache_beam as beam
import numpy as np
import pandas as pd

from tfx_gnn.components import graph_io
from tfx_gnn.components.graph_validator import validation

BATCH = 1 << 16  # records per batch read


def _group_of(ids: np.ndarray, partitions: int) -> np.ndarray:
  return (pd.util.hash_array(np.asarray(ids, dtype=object)) % np.uint64(partitions)).astype(int)


class RouteIds(beam.DoFn):
  """(kind, set name, file) -> (group, (kind, set, end, ids, rows)) for each batch of records
  and each group that batch's ids fall into."""

  def __init__(self, partitions: int):
    super().__init__()
    self._partitions = partitions

  def process(self, element):
    import tensorflow as tf
    kind, name, path = element
    keys = (graph_io.ID,) if kind == "node" else (graph_io.SOURCE, graph_io.TARGET)
    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in keys}
    first = 0
    for batch in tf.data.TFRecordDataset(path).batch(BATCH).map(
        lambda x: tf.io.parse_example(x, spec)).as_numpy_iterator():
      rows = None
      for key in keys:
        ids = np.array([v.decode() for v in batch[key]], dtype=object)
        rows = np.arange(first, first + len(ids)) if rows is None else rows
        groups = _group_of(ids, self._partitions)
        for group in np.unique(groups):
          mask = groups == group
          end = "node" if kind == "node" else ("source" if key == graph_io.SOURCE else "target")
          yield int(group), (kind, name, end, ids[mask], rows[mask])
      first += len(rows)


class CheckGroup(beam.DoFn):
  """(group, [(kind, set, end, ids, rows)]) -> the group's partial results, written as JSON
  under `out_dir`; yields the file's path."""

  def __init__(self, endpoints: dict[str, tuple[str, str]], out_dir: str):
    super().__init__()
    self._endpoints = endpoints  # edge set -> (source node set, target node set)
    self._out_dir = out_dir

  def process(self, element):
    group, pieces = element
    columns: dict[tuple, list] = {}
    for kind, name, end, ids, rows in pieces:
      columns.setdefault((kind, name, end), []).append((ids, rows))
    merged = {}
    for key, parts in columns.items():
      ids = np.concatenate([p[0] for p in parts])
      rows = np.concatenate([p[1] for p in parts])
      order = np.argsort(rows, kind="stable")
      merged[key] = (ids[order], rows[order])
    result = {"nodes": {}, "edges": {}}
    nodes = {}
    for (kind, name, _), (ids, rows) in merged.items():
      if kind == "node":
        count, extra, examples = validation.duplicate_ids(ids, rows)
        nodes[name] = pd.Index(ids)
        result["nodes"][name] = {"distinct": int(nodes[name].nunique()), "duplicates": count,
                                 "extra": extra, "examples": examples}
    for (kind, name, end), (ids, rows) in merged.items():
      if kind != "edge":
        continue
      node_set = self._endpoints[name][0 if end == "source" else 1]
      known = nodes.get(node_set, pd.Index([], dtype=object))
      unknown = ~pd.Index(ids).isin(known)
      bad_ids, bad_rows = ids[unknown], rows[unknown]
      result["edges"].setdefault(name, {})[end] = {
          "count": int(unknown.sum()), "distinct": int(len(pd.unique(bad_ids))),
          "rows": [int(r) for r in bad_rows],
          "examples": [{"row": int(r), "id": str(i)}
                       for r, i in zip(bad_rows[:validation.MAX_EXAMPLES],
                                       bad_ids[:validation.MAX_EXAMPLES])]}
    path = os.path.join(self._out_dir, f"group-{group:05d}.json")
    graph_io.write_text(path, json.dumps(result))
    yield path


def id_checks(graph_dir: str, schema, out_dir: str, make_pipeline: Callable[[], beam.Pipeline],
              partitions: int = 16) -> tuple[dict, list[validation.Anomaly]]:
  """Duplicate ids and dangling edges of the Graph artifact at `graph_dir`, checked on Beam.
  Returns ({set: statistics}, anomalies) as `validation.validate` would report them."""
  from tensorflow_gnn.data import unigraph
  import tensorflow as tf
  elements, endpoints, files = [], {}, {}
  for name, proto in schema.node_sets.items():
    elements.append(("node", name, os.path.join(graph_dir, proto.metadata.filename)))
    files[name] = graph_io.source_file(proto) or proto.metadata.filename
  for name, proto in schema.edge_sets.items():
    if not unigraph.is_edge_reversed(proto):  # a reversed set's data is its forward set's
      elements.append(("edge", name, os.path.join(graph_dir, proto.metadata.filename)))
      endpoints[name] = (proto.source, proto.target)
      files[name] = graph_io.source_file(proto) or proto.metadata.filename
  tf.io.gfile.makedirs(out_dir)
  with make_pipeline() as pipeline:
    _ = (pipeline
         | "Sets" >> beam.Create(elements)
         | "RouteIds" >> beam.ParDo(RouteIds(partitions))
         | "ByGroup" >> beam.GroupByKey()
         | "CheckGroup" >> beam.ParDo(CheckGroup(endpoints, out_dir)))
  results = []
  for path in sorted(tf.io.gfile.glob(os.path.join(out_dir, "group-*.json"))):
    with tf.io.gfile.GFile(path) as f:
      results.append(json.load(f))
  tf.io.gfile.rmtree(out_dir)

  stats: dict = {"node_sets": {}, "edge_sets": {}}
  anomalies = []
  for kind, name, _ in elements:
    if kind == "node":
      parts = [r["nodes"][name] for r in results if name in r["nodes"]]
      count = sum(p["duplicates"] for p in parts)
      stats["node_sets"][name] = {"distinct_ids": sum(p["distinct"] for p in parts)}
      if count:
        examples = sorted((e for p in parts for e in p["examples"]), key=lambda e: e["rows"][0])
        anomalies.append(validation.duplicate_ids_anomaly(
            name, files[name], count, sum(p["extra"] for p in parts),
            examples[:validation.MAX_EXAMPLES]))
  for kind, name, _ in elements:
    if kind != "edge":
      continue
    dangling_rows = set()
    for end, node_set in zip(("source", "target"), endpoints[name]):
      parts = [r["edges"][name][end] for r in results if end in r["edges"].get(name, {})]
      for p in parts:
        dangling_rows.update(p["rows"])
      count = sum(p["count"] for p in parts)
      if count:
        examples = sorted((e for p in parts for e in p["examples"]), key=lambda e: e["row"])
        anomalies.append(validation.dangling_anomaly(
            name, files[name], end, node_set, count, sum(p["distinct"] for p in parts),
            examples[:validation.MAX_EXAMPLES]))
    stats["edge_sets"][name] = {"dangling_edges": len(dangling_rows)}
  return stats, anomalies


def artifact_megabytes(graph_dir: str, schema) -> float:
  """The Graph artifact's sets' files on storage (MB): what `beam_threshold_mb` is compared with."""
  import tensorflow as tf
  files = {p.metadata.filename for p in list(schema.node_sets.values()) +
           list(schema.edge_sets.values())}
  return sum(tf.io.gfile.stat(os.path.join(graph_dir, f)).length for f in files) / 1e6


def validate(graph_dir: str, schema, config, scratch_dir: str,
             make_pipeline: Callable[[], beam.Pipeline]) -> tuple[dict, list]:
  """GraphValidator on Beam: (statistics, anomalies) of the artifact at `graph_dir` without
  reading it into memory. The id checks run on Beam (`id_checks`); the schema, label and split
  checks are the in-memory validator's, on the labelled node set alone (its ids and label).
  Statistics hold counts, distinct ids, dangling edges, the label and the splits; feature
  histograms, degree summaries, self-loops, duplicate edges and isolated nodes are the
  in-memory path's only (docs/data-sources.md)."""
  import tensorflow as tf
  from tensorflow_gnn.data import unigraph
  id_stats, anomalies = id_checks(graph_dir, schema, scratch_dir, make_pipeline)
  graph_shape = graph_io.Graph(
      {name: graph_io.NodeSet(_rows(p.metadata.cardinality), _features(p.features),
                              graph_io.source_file(p)) for name, p in schema.node_sets.items()},
      {name: graph_io.EdgeSet(p.source, p.target, _rows(p.metadata.cardinality),
                              _rows(p.metadata.cardinality), _features(p.features),
                              graph_io.source_file(p),
                              reverse_of=_forward_of(schema, name) if unigraph.is_edge_reversed(p)
                              else None)
       for name, p in schema.edge_sets.items()})
  anomalies = validation.schema_anomalies(graph_shape, schema) + anomalies
  stats = {"computed_on": "beam", "node_sets": {}, "edge_sets": {}, "label": None,
           "splits": {}}
  for name, node_set in graph_shape.node_sets.items():
    # The in-memory statistics' keys, empty where the Beam path computes nothing.
    stats["node_sets"][name] = {"count": len(node_set), "source_file": node_set.source_file,
                                "features": {}, **id_stats["node_sets"][name]}
  for name, edge_set in graph_shape.edge_sets.items():
    forward = edge_set.reverse_of or name
    stats["edge_sets"][name] = {
        "count": len(edge_set), "source_set": edge_set.source_set,
        "target_set": edge_set.target_set, "reverse_of": edge_set.reverse_of,
        "source_file": edge_set.source_file, "features": {}, "out_degree": None,
        "in_degree": None, "self_loops": None, "duplicate_edges": None,
        **id_stats["edge_sets"].get(forward, {})}
  label = graph_io.read_label(graph_dir)
  splits = {}
  for split in graph_io.SPLITS:
    if tf.io.gfile.exists(graph_io.seeds_file(graph_dir, split)):
      splits[split] = np.array(graph_io.read_seeds(graph_dir, split), dtype=object)
  if label is not None and label.node_set in schema.node_sets:
    proto = schema.node_sets[label.node_set]
    wanted = {k: v for k, v in proto.features.items() if k == label.feature}
    (ids,), features = graph_io.read_examples(
        os.path.join(graph_dir, proto.metadata.filename), (graph_io.ID,), wanted)
    labelled = graph_io.Graph({label.node_set: graph_io.NodeSet(ids, features,
                                                                graph_io.source_file(proto))},
                              {}, splits, label)
  else:
    labelled = graph_io.Graph({}, {}, splits, label)
  label_stats, label_anomalies = validation.validate(labelled, None, config)
  anomalies += [a for a in label_anomalies if a.kind.startswith(("label_", "split_"))]
  stats["label"], stats["splits"] = label_stats["label"], label_stats["splits"]
  return stats, anomalies


def _rows(count: int) -> np.ndarray:
  return np.broadcast_to(np.array("", dtype=object), (int(count),))


def _features(features_proto) -> dict[str, np.ndarray]:
  """Empty arrays with each feature's dtype and shape (the schema check reads only names)."""
  return {k: np.zeros([0] + [d.size for d in v.shape.dim]) for k, v in features_proto.items()}


def _forward_of(schema, name: str) -> str:
  """The forward edge set whose file a reversed set shares."""
  from tensorflow_gnn.data import unigraph
  filename = schema.edge_sets[name].metadata.filename
  return next((other for other, p in schema.edge_sets.items()
               if p.metadata.filename == filename and not unigraph.is_edge_reversed(p)), name)
