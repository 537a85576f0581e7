"""The `Graph` artifact on disk, and the in-memory graph that the components share.

A Graph artifact's directory is a TF-GNN *unigraph*: `schema.pbtxt` (a GraphSchema whose node
and edge sets name their TFRecord files of tf.Examples keyed by `#id`, `#source`, `#target`), so
TF-GNN's own tools (the Beam sampler, `unigraph.read_graph`) read it as it is. Two additions:

- `seeds/<split>.csv` — one `id` column per split (train, eval, test) of the labelled node set,
  in the unigraph table format that TF-GNN's `read_seeds` reads;
- `graph_info.json` — which node set and feature hold the label, and the number of classes.

Each set's `metadata.extra {key: "source_file"}` names the user's table it came from, so errors
can name the user's file, not ours.

A reversed edge set (paper->author from a writes table) shares its forward set's file and is
declared with `metadata.extra {key: "edge_type" value: "reversed"}`, as in TF-GNN's MAG example.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from typing import Optional

import numpy as np

SCHEMA_FILE = "schema.pbtxt"
INFO_FILE = "graph_info.json"
SEEDS_DIR = "seeds"
SPLITS = ("train", "eval", "test")
ID = "#id"
SOURCE = "#source"
TARGET = "#target"


@dataclasses.dataclass
class NodeSet:
  ids: np.ndarray  # str node ids, one per row
  features: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # [rows, ...]
  source_file: str = ""  # the user's table, for error messages

  def __len__(self) -> int:
    return len(self.ids)


@dataclasses.dataclass
class EdgeSet:
  source_set: str
  target_set: str
  sources: np.ndarray  # str node ids of `source_set`
  targets: np.ndarray  # str node ids of `target_set`
  features: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  source_file: str = ""
  reverse_of: Optional[str] = None  # name of the forward edge set this one reverses

  def __len__(self) -> int:
    return len(self.sources)


@dataclasses.dataclass
class Label:
  node_set: str
  feature: str
  num_classes: int  # 0 for real-valued labels
  # int64 (class ids) or float32 (real-valued targets, for regression tasks).
  dtype: str = "int64"

  @property
  def real_valued(self) -> bool:
    return self.dtype.startswith("float")


@dataclasses.dataclass
class Graph:
  node_sets: dict[str, NodeSet]
  edge_sets: dict[str, EdgeSet]
  splits: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # split -> ids
  label: Optional[Label] = None

  def counts(self) -> dict[str, dict[str, int]]:
    return {
        "node_sets": {k: len(v) for k, v in self.node_sets.items()},
        "edge_sets": {k: len(v) for k, v in self.edge_sets.items()},
        "splits": {k: len(v) for k, v in self.splits.items()},
    }


def _tf():
  import tensorflow as tf
  return tf


def _dtype_enum(array: np.ndarray) -> int:
  tf = _tf()
  if array.dtype.kind == "f":
    return tf.float32.as_datatype_enum
  if array.dtype.kind in "iub":
    return tf.int64.as_datatype_enum
  return tf.string.as_datatype_enum


def _add_feature_schema(features_proto, name: str, array: np.ndarray) -> None:
  feature = features_proto[name]
  feature.dtype = _dtype_enum(array)
  for size in array.shape[1:]:
    feature.shape.dim.add().size = int(size)


def build_schema(graph: Graph):
  """The GraphSchema of `graph`, with each set pointing at its TFRecord file."""
  import tensorflow_gnn as tfgnn
  schema = tfgnn.GraphSchema()
  for name, node_set in graph.node_sets.items():
    proto = schema.node_sets[name]
    for fname, array in node_set.features.items():
      _add_feature_schema(proto.features, fname, array)
    proto.metadata.filename = node_file(name)
    proto.metadata.cardinality = len(node_set)
    if node_set.source_file:
      proto.metadata.extra.add(key="source_file", value=node_set.source_file)
  for name, edge_set in graph.edge_sets.items():
    proto = schema.edge_sets[name]
    proto.source = edge_set.source_set
    proto.target = edge_set.target_set
    # A reversed set reads its forward set's file, features included.
    for fname, array in edge_set.features.items():
      _add_feature_schema(proto.features, fname, array)
    if edge_set.reverse_of is None:
      proto.metadata.filename = edge_file(name)
    else:
      proto.metadata.filename = edge_file(edge_set.reverse_of)
      proto.metadata.extra.add(key="edge_type", value="reversed")
    proto.metadata.cardinality = len(edge_set)
    if edge_set.source_file:
      proto.metadata.extra.add(key="source_file", value=edge_set.source_file)
  return schema


def node_file(name: str) -> str:
  return f"nodes_{name}.tfrecords"


def edge_file(name: str) -> str:
  return f"edges_{name}.tfrecords"


def seeds_file(graph_dir: str, split: str) -> str:
  return os.path.join(graph_dir, SEEDS_DIR, f"{split}.csv")


def read_seeds(graph_dir: str, split: str) -> list[str]:
  """The seed ids of one split (`seeds/<split>.csv`, column `id`)."""
  path = seeds_file(graph_dir, split)
  with _tf().io.gfile.GFile(path) as f:
    rows = list(csv.reader(io.StringIO(f.read())))
  if not rows or rows[0][:1] != ["id"]:
    raise ValueError(f"{path}: expected a header row `id`")
  return [row[0] for row in rows[1:]]


# ------------------------------------------------------------ the Model artifact
# A second SavedModel beside the serving one, `<Format-Serving>/integrated_gradients/`, whose
# `integrated_gradients` signature returns a GraphTensor of summed gradients named
# IG_OUTPUT_NAME (the trainer writes it, Attribution reads it), the preprocessed inputs they were
# taken at (IG_INPUTS_OUTPUT: floating-point features and structure) and, for a single task,
# the labels (IG_LABELS_OUTPUT); a subdirectory because TF-GNN's IG exporter cannot name serving
# outputs.
IG_SUBDIR = "integrated_gradients"
IG_OUTPUT_NAME = "gradients"
IG_INPUTS_OUTPUT = "inputs"
IG_LABELS_OUTPUT = "labels"


# ------------------------------------------------------------ the subgraph Examples artifact
SUBGRAPH_SCHEMA_FILE = "schema.pbtxt"  # the sampled subgraphs' GraphSchema, in the artifact


def subgraph_schema_path(examples_uri: str) -> str:
  return os.path.join(examples_uri, SUBGRAPH_SCHEMA_FILE)


def split_files(examples, split: str) -> list[str]:
  """The data files of one split of an Examples artifact ([] if it has no such split)."""
  from tfx.types import artifact_utils
  if split not in artifact_utils.decode_split_names(examples.split_names):
    return []
  return sorted(_tf().io.gfile.glob(os.path.join(
      artifact_utils.get_split_uri([examples], split), "*")))


def write_examples(path: str, keys: dict[str, np.ndarray],
                   features: dict[str, np.ndarray]) -> None:
  """Writes one tf.Example per row to `path`, atomically (temp file, then rename).

  The Examples' bytes are assembled column by column from numpy buffers by the fast sampler's
  protobuf wire-format encoder (the same bytes protobuf would write; building a tf.train.Example
  per row cost about 40 us a row, many minutes for OGBN-MAG's 21M edges)."""
  from tfx_gnn.components import example_encoder as encoder
  tf = _tf()
  tmp = path + ".tmp"
  rows = len(next(iter(keys.values())))
  chunk = 1 << 18  # rows per encoded batch: bounds the extra memory to a few hundred MB
  with tf.io.TFRecordWriter(tmp) as writer:
    for lo in range(0, rows, chunk):
      hi = min(rows, lo + chunk)
      n = hi - lo
      ones = np.ones(n, np.int64)
      columns = [encoder.StringTable(np.asarray(column[lo:hi], dtype=object)).column(
          key, np.arange(n), ones) for key, column in keys.items()]
      for fname, array in features.items():
        values = np.asarray(array[lo:hi])
        per_row = int(np.prod(values.shape[1:], dtype=np.int64))
        if values.dtype.kind == "f":
          columns.append(encoder.packed_column(fname, encoder.FLOAT_LIST, values, ones * per_row))
        elif values.dtype.kind in "iub":
          columns.append(encoder.packed_column(fname, encoder.INT64_LIST,
                                              values.astype(np.int64), ones * per_row))
        else:
          flat = np.array([str(v) for v in values.reshape(-1)], dtype=object)
          columns.append(encoder.StringTable(flat).column(
              fname, np.arange(len(flat)), ones * per_row))
      for example in encoder.examples_from_columns(columns, n):
        writer.write(example)
  tf.io.gfile.rename(tmp, path, overwrite=True)


def write_text(path: str, text: str) -> None:
  """Writes a text file atomically: a temporary name, then a rename."""
  tf = _tf()
  tmp = path + ".tmp"
  with tf.io.gfile.GFile(tmp, "w") as f:
    f.write(text)
  tf.io.gfile.rename(tmp, path, overwrite=True)


def write_graph(graph: Graph, graph_dir: str) -> None:
  """Writes `graph` as a unigraph directory (plus seeds and graph_info.json).

  Every file is written to a temporary name and renamed into place; the schema is written
  last, so a directory with a schema is complete.
  """
  _tf().io.gfile.makedirs(graph_dir)
  for name, node_set in graph.node_sets.items():
    write_examples(os.path.join(graph_dir, node_file(name)), {ID: node_set.ids},
                   node_set.features)
  for name, edge_set in graph.edge_sets.items():
    if edge_set.reverse_of is None:
      write_examples(os.path.join(graph_dir, edge_file(name)),
                     {SOURCE: edge_set.sources, TARGET: edge_set.targets},
                     edge_set.features)
  write_graph_metadata(graph, graph_dir)


def write_graph_metadata(graph: Graph, graph_dir: str) -> None:
  """Writes all of `graph` but its sets' TFRecord files: seeds, graph_info.json, and the
  schema last. (GraphIngest's Beam path writes the sets' files itself; for it, a set's
  arrays need only the right length and a feature's dtype and shape[1:].)"""
  tf = _tf()
  from google.protobuf import text_format
  tf.io.gfile.makedirs(os.path.join(graph_dir, SEEDS_DIR))
  for split, ids in graph.splits.items():
    # Quoted as CSV: TF-GNN's `read_seeds` parses the file with csv.reader.
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([["id"]] + [[i] for i in ids])
    write_text(seeds_file(graph_dir, split), buffer.getvalue())
  info = {
      "label": ({"node_set": graph.label.node_set, "feature": graph.label.feature,
                 "num_classes": int(graph.label.num_classes),
                 # Only real-valued labels say so: class labels' info stays as it was.
                 **({"dtype": graph.label.dtype} if graph.label.real_valued else {})}
                if graph.label else None),
      "splits": {k: len(v) for k, v in graph.splits.items()},
  }
  write_text(os.path.join(graph_dir, INFO_FILE), json.dumps(info, indent=2))
  write_text(os.path.join(graph_dir, SCHEMA_FILE),
              text_format.MessageToString(build_schema(graph)))


def read_schema_file(path: str):
  import tensorflow_gnn as tfgnn
  return tfgnn.read_schema(path)


def read_schema(graph_dir: str):
  return read_schema_file(os.path.join(graph_dir, SCHEMA_FILE))


def read_info(graph_dir: str) -> dict:
  with _tf().io.gfile.GFile(os.path.join(graph_dir, INFO_FILE)) as f:
    return json.load(f)


def read_label(graph_dir: str) -> Optional[Label]:
  label = read_info(graph_dir)["label"]
  return Label(**label) if label else None


def read_examples(paths, keys: tuple[str, ...], features) -> tuple[list, dict]:
  """Reads TFRecord files (a path or a list) of tf.Examples into numpy columns: `keys` (string
  ids, one per record) and `features` (a GraphSchema feature map), parsed in batches."""
  tf = _tf()
  spec = {k: tf.io.FixedLenFeature([], tf.string) for k in keys}
  for fname, feature in features.items():
    shape = [d.size for d in feature.shape.dim]
    spec[fname] = tf.io.FixedLenFeature(shape, tf.dtypes.as_dtype(feature.dtype))
  columns: dict[str, list] = {k: [] for k in spec}
  dataset = tf.data.TFRecordDataset(paths).batch(4096).map(
      lambda x: tf.io.parse_example(x, spec))
  for batch in dataset.as_numpy_iterator():
    for k, v in batch.items():
      columns[k].append(v)
  out = {}
  for k, parts in columns.items():
    if parts:
      out[k] = np.concatenate(parts)
    else:
      dtype = object if spec[k].dtype == tf.string else spec[k].dtype.as_numpy_dtype
      out[k] = np.zeros([0] + list(spec[k].shape), dtype=dtype)
    if spec[k].dtype == tf.string:
      values = out[k]
      out[k] = np.array([v.decode() for v in values.reshape(-1)],
                        dtype=object).reshape(values.shape)
  return [out.pop(k) for k in keys], out


def source_file(set_proto) -> str:
  for kv in set_proto.metadata.extra:
    if kv.key == "source_file":
      return kv.value
  return ""


def read_graph(graph_dir: str) -> Graph:
  """Reads a Graph artifact's directory back into memory (numpy arrays)."""
  from tensorflow_gnn.data import unigraph
  tf = _tf()
  schema = read_schema(graph_dir)
  node_sets = {}
  for name, proto in schema.node_sets.items():
    (ids,), feats = read_examples(os.path.join(graph_dir, proto.metadata.filename), (ID,),
                                   proto.features)
    node_sets[name] = NodeSet(ids, feats, source_file(proto))
  edge_sets = {}
  forward_by_file = {}
  for name, proto in schema.edge_sets.items():
    if not unigraph.is_edge_reversed(proto):
      (src, tgt), feats = read_examples(os.path.join(graph_dir, proto.metadata.filename),
                                         (SOURCE, TARGET), proto.features)
      edge_sets[name] = EdgeSet(proto.source, proto.target, src, tgt, feats,
                                source_file(proto))
      forward_by_file[proto.metadata.filename] = name
  for name, proto in schema.edge_sets.items():
    if unigraph.is_edge_reversed(proto):
      forward = forward_by_file[proto.metadata.filename]
      fwd = edge_sets[forward]
      edge_sets[name] = EdgeSet(proto.source, proto.target, fwd.targets, fwd.sources,
                                dict(fwd.features), source_file(proto), reverse_of=forward)
  splits = {}
  for split in SPLITS:
    path = seeds_file(graph_dir, split)
    if tf.io.gfile.exists(path):
      with tf.io.gfile.GFile(path) as f:
        rows = list(csv.reader(io.StringIO(f.read())))[1:]
      splits[split] = np.array([row[0] for row in rows], dtype=object)
  return Graph(node_sets, edge_sets, splits, read_label(graph_dir))
