"""GraphIngest on Beam: tables beyond one process's memory, read file by file on the workers.

Each file of each node or edge table (a glob's or a directory's files, or the one file) is an
element. A worker reads it (`tables.read(..., only_file=)`), maps its ids to strings and
converts its columns exactly as the in-memory path does (`ingest.node_set_from_table`,
`ingest.edge_sets_from_table`), encodes its rows as the artifact's tf.Examples
(`graph_io.write_examples`) into a part file and writes a small JSON summary beside it: row
count, each feature's dtype and shape, the label's dtype and largest class, and, for the
labelled node set only, its ids (and a split feature), which the splits need (as large as the
seeds files). Memory per worker is one file's.

The driver then checks that the parts agree (a feature's dtype and width in every file),
concatenates each set's parts in file order into the set's TFRecord file (TFRecord records are
self-delimiting, so the bytes are those the in-memory writer produces), makes the splits, and
writes seeds, graph_info.json and the schema last (`graph_io.write_graph_metadata`). The
artifact is the in-memory path's, file for file (tests/test_beam_ingest.py).

The pipeline is one Create -> ParDo chain with no Beam source or sink: it runs on every runner,
Beam's DaskRunner included (docs/data-sources.md).
"""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Callable, Optional

import apache_beam as beam
import numpy as np

from tfx_gnn.components import graph_io
from tfx_gnn.components.graph_ingest import ingest, tables
from tfx_gnn.components.graph_ingest.config import DataConfig, TablesSource

IngestError = tables.IngestError
PARTS_DIR = ".parts"  # under the output directory; removed once the artifact is complete


def stored_megabytes(spec: TablesSource) -> float:
  """The tables' size in storage (MB): what `data.beam_threshold_mb` is compared with."""
  total = 0
  for url, fmt in _table_urls(spec):
    total += sum(tables.file_sizes(url, fmt)[1].values())
  if spec.splits is not None and spec.splits.file:
    total += sum(tables.file_sizes(tables.join(spec.directory, spec.splits.file),
                                   spec.splits.format)[1].values())
  return total / 1e6


def _table_urls(spec: TablesSource) -> list[tuple[str, Optional[str]]]:
  return [(tables.join(spec.directory, t.file), t.format)
          for t in list(spec.node_sets.values()) + list(spec.edge_sets.values())]


def _part_name(kind: str, name: str, index: int, direction: str = "") -> str:
  return f"{kind}-{name}-{index:06d}{direction}"


class EncodeTableFile(beam.DoFn):
  """(kind, set name, file index, file) -> the file's part(s) and summary, written under
  `parts_dir`; yields the summary's path."""

  def __init__(self, spec_json: str, label_set: Optional[str], parts_dir: str):
    super().__init__()
    self._spec_json = spec_json
    self._label_set = label_set
    self._parts_dir = parts_dir

  def process(self, element):
    kind, name, index, file = element
    spec = TablesSource.model_validate_json(self._spec_json)
    table_spec = (spec.node_sets if kind == "node" else spec.edge_sets)[name]
    url = tables.join(spec.directory, table_spec.file)
    ids = ([table_spec.id_column] if kind == "node"
           else [table_spec.source_column, table_spec.target_column])
    table = tables.read(url, ids, table_spec.format, only_file=file)
    summary = {"kind": kind, "name": name, "index": index, "file": file, "rows": 0,
               "features": {}}
    if table is not None:
      if kind == "node":
        labelled = name == self._label_set
        node_set = ingest.node_set_from_table(table, name, table_spec, labelled,
                                              spec.num_classes)
        self._write(_part_name(kind, name, index), {graph_io.ID: node_set.ids},
                    node_set.features)
        summary.update(rows=len(node_set), features=_describe(node_set.features))
        if labelled:
          labels = node_set.features[ingest.LABEL]
          summary["label_max"] = int(labels.max()) if labels.dtype.kind == "i" else None
          summary["ids"] = [str(i) for i in node_set.ids]
          split_feature = spec.splits.feature if spec.splits is not None else None
          if split_feature in node_set.features:
            summary["split_feature"] = node_set.features[split_feature].tolist()
      else:
        edge_set = ingest.edge_sets_from_table(table, name, table_spec)[name]
        rows = len(edge_set)
        if table_spec.undirected:
          # The in-memory set is all rows forward, then all rows reversed: two parts per file.
          half = rows // 2
          forward = {k: v[:half] for k, v in edge_set.features.items()}
          self._write(_part_name(kind, name, index, "-forward"),
                      {graph_io.SOURCE: edge_set.sources[:half],
                       graph_io.TARGET: edge_set.targets[:half]}, forward)
          self._write(_part_name(kind, name, index, "-reverse"),
                      {graph_io.SOURCE: edge_set.sources[half:],
                       graph_io.TARGET: edge_set.targets[half:]}, forward)
        else:
          self._write(_part_name(kind, name, index),
                      {graph_io.SOURCE: edge_set.sources, graph_io.TARGET: edge_set.targets},
                      edge_set.features)
        summary.update(rows=rows, features=_describe(edge_set.features))
    path = os.path.join(self._parts_dir, _part_name(kind, name, index) + ".json")
    graph_io.write_text(path, json.dumps(summary))
    yield path

  def _write(self, part: str, keys: dict, features: dict) -> None:
    if len(next(iter(keys.values()))):
      graph_io.write_examples(os.path.join(self._parts_dir, part + ".tfrecords"), keys,
                              features)


def _describe(features: dict[str, np.ndarray]) -> dict[str, list]:
  """{feature: [dtype kind, shape per row]}: what every file of a table must agree on."""
  return {k: [("O" if v.dtype.kind in "OUS" else "f" if v.dtype.kind == "f" else "i"),
              list(v.shape[1:])] for k, v in features.items()}


def _shape_only(kind_shapes: dict[str, list]) -> dict[str, np.ndarray]:
  """Empty arrays with a feature's dtype and shape: all `graph_io.build_schema` reads."""
  dtypes = {"O": object, "f": np.float32, "i": np.int64}
  return {k: np.zeros([0] + shape, dtypes[kind]) for k, (kind, shape) in kind_shapes.items()}


def _rows(count: int) -> np.ndarray:
  return np.broadcast_to(np.array("", dtype=object), (count,))  # a length, no memory


def _agreed_features(url: str, summaries: list[dict]) -> dict[str, list]:
  """The features every non-empty file of a table agrees on; an error names two that do not."""
  filled = [s for s in summaries if s["rows"]]
  if not filled:
    raise IngestError(f"{url}: no records in {len(summaries)} file(s)")
  first = filled[0]
  for other in filled[1:]:
    for fname, described in first["features"].items():
      got = other["features"].get(fname)
      if got != described:
        kinds = {"O": "strings", "f": "floats (or has empty cells)", "i": "integers"}
        say = lambda d: f"{kinds[d[0]]} of shape {d[1]}" if d else "absent"
        raise IngestError(
            f"{url}: column {fname!r} is {say(described)} in {first['file']} but "
            f"{say(got)} in {other['file']}; on the Beam path (data.beam_threshold_mb) every "
            "file of a table must give a column the same kind and width")
  return first["features"]


def _concatenate(parts: list[str], path: str) -> None:
  """The parts' bytes, in order, as one file, written atomically."""
  import tensorflow as tf
  tmp = path + ".tmp"
  with tf.io.gfile.GFile(tmp, "wb") as out:
    for part in parts:
      if tf.io.gfile.exists(part):
        with tf.io.gfile.GFile(part, "rb") as f:
          while chunk := f.read(64 << 20):
            out.write(chunk)
  tf.io.gfile.rename(tmp, path, overwrite=True)


def tables_to_graph_dir(spec: TablesSource, out_dir: str,
                        make_pipeline: Callable[[], beam.Pipeline]) -> graph_io.Graph:
  """Ingests `spec` on the Beam pipeline `make_pipeline()` gives and writes the Graph artifact
  to `out_dir`. Returns the graph with each set's length and features' dtypes and shapes but
  no rows (enough for its counts and label)."""
  start = time.perf_counter()
  label_set = ingest.check_spec(spec)
  for name, table_spec in spec.edge_sets.items():
    if table_spec.degree_feature:
      raise IngestError(
          f"edge set {name!r}: degree_feature is not computed on the Beam path (it joins edges "
          f"with nodes); config key data.tables.edge_sets.{name}.degree_feature, or raise "
          "data.beam_threshold_mb above the tables' size to ingest in memory")
  elements = []
  for kind, sets in (("node", spec.node_sets), ("edge", spec.edge_sets)):
    for name, table_spec in sets.items():
      url = tables.join(spec.directory, table_spec.file)
      _, files, found = tables.list_files(url, table_spec.format)
      if not found:
        tables.read(url, (), table_spec.format)  # raises the reader's "unsupported format"
      elements += [(kind, name, i, f) for i, f in enumerate(files)]
  parts_dir = os.path.join(out_dir, PARTS_DIR)
  import tensorflow as tf
  tf.io.gfile.makedirs(parts_dir)
  with make_pipeline() as pipeline:
    _ = (pipeline
         | "TableFiles" >> beam.Create(elements)
         | "ReadAndEncode" >> beam.ParDo(EncodeTableFile(spec.model_dump_json(), label_set,
                                                         parts_dir)))
  summaries: dict[tuple[str, str], list[dict]] = {}
  for kind, name, index, _ in elements:
    with tf.io.gfile.GFile(os.path.join(parts_dir, _part_name(kind, name, index) + ".json")) as f:
      summaries.setdefault((kind, name), []).append(json.load(f))

  def parts(kind, name, direction=""):
    return [os.path.join(parts_dir, _part_name(kind, name, s["index"], direction) + ".tfrecords")
            for s in summaries[(kind, name)]]

  node_sets, edge_sets = {}, {}
  for name, table_spec in spec.node_sets.items():
    url = tables.join(spec.directory, table_spec.file)
    features = _agreed_features(url, summaries[("node", name)])
    _concatenate(parts("node", name), os.path.join(out_dir, graph_io.node_file(name)))
    count = sum(s["rows"] for s in summaries[("node", name)])
    node_sets[name] = graph_io.NodeSet(_rows(count), _shape_only(features), url)
  for name, table_spec in spec.edge_sets.items():
    url = tables.join(spec.directory, table_spec.file)
    features = _agreed_features(url, summaries[("edge", name)])
    files = (parts("edge", name, "-forward") + parts("edge", name, "-reverse")
             if table_spec.undirected else parts("edge", name))
    _concatenate(files, os.path.join(out_dir, graph_io.edge_file(name)))
    count = sum(s["rows"] for s in summaries[("edge", name)])
    edge_sets[name] = graph_io.EdgeSet(table_spec.source, table_spec.target, _rows(count),
                                       _rows(count), _shape_only(features), url)
    if table_spec.reverse is not None:
      edge_sets[table_spec.reverse] = graph_io.EdgeSet(
          table_spec.target, table_spec.source, _rows(count), _rows(count),
          _shape_only(features), url, reverse_of=name)
  label, splits = None, {}
  if label_set is not None:
    label_parts = [s for s in summaries[("node", label_set)] if s["rows"]]
    dtype = node_sets[label_set].features[ingest.LABEL].dtype
    maxima = [s["label_max"] for s in label_parts]
    labels = np.array([max(maxima)] if dtype.kind == "i" else [], dtype)
    label = ingest.label_of(label_set, ingest.LABEL, spec.num_classes, labels)
    label_ids = np.array([i for s in label_parts for i in s["ids"]], dtype=object)
    # The feature's values when it is one (else its dtype and shape, for the reader's error).
    split_features = dict(node_sets[label_set].features)
    if spec.splits.feature is not None and all("split_feature" in s for s in label_parts):
      kind = node_sets[label_set].features[spec.splits.feature].dtype
      split_features[spec.splits.feature] = np.array(
          [v for s in label_parts for v in s["split_feature"]], kind)
    splits = ingest.make_splits(spec.splits, label_ids, spec.directory, split_features,
                                f"node set {label_set!r}")
  graph = graph_io.Graph(node_sets, edge_sets, splits, label)
  graph_io.write_graph_metadata(graph, out_dir)
  tf.io.gfile.rmtree(parts_dir)
  logging.info("ingested tables from %s on Beam in %.1f s: %s", spec.directory,
               time.perf_counter() - start, graph.counts())
  return graph


def uses_beam(data: DataConfig, spec: Optional[TablesSource]) -> bool:
  """Whether the tables are above `data.beam_threshold_mb` (only tables go through Beam)."""
  return spec is not None and stored_megabytes(spec) > data.beam_threshold_mb
