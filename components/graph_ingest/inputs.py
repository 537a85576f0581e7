"""What GraphIngest is about to read, pinned down before it reads it (no TFX orchestration here).

- Spans: a table's `file` may hold TFX's `{SPAN}` (and `{VERSION}`, or the date specs `{YYYY}`
  `{MM}` `{DD}`), as FileBasedExampleGen's split patterns do, for tables that arrive in dated
  folders (`file: "{SPAN}/papers.csv"`). `resolve_spans` finds the latest span (or the one
  pinned by `data.tables.span`) with TFX's own helpers and replaces the specs by it; every
  table with a span spec must have that span.
- Fingerprint: `fingerprint` lists every file that ingest will read with its size and sha256
  (the synthetic sources: their parameters). GraphIngest's driver records it as the execution
  property `input_fingerprint` before TFX computes the cache key, so the cache misses exactly
  when the data changed. The modification time is recorded on the Graph artifact (`input_files`)
  but kept out of the key: a file touched or copied with the same bytes holds the same data.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from typing import Optional

from tfx_gnn.components.graph_ingest import tables as table_io
from tfx_gnn.components.graph_ingest.config import DataConfig, TablesSource

# The names TFX's ExampleGen gives these properties (tfx.components.example_gen.utils).
FINGERPRINT_PROPERTY = "input_fingerprint"
SPAN_PROPERTY = "span"
VERSION_PROPERTY = "version"
FILES_PROPERTY = "input_files"  # on the Graph artifact: each file's path, size, mtime, sha256

# Any of TFX's span, version or date specs (a `{` that TFX would act on).
_SPEC = re.compile(r"\{(SPAN|VERSION)(:[^}]*)?\}|\{YYYY\}|\{MM\}|\{DD\}")
_CHUNK = 1 << 20


class InputError(ValueError):
  """A table pattern that cannot be resolved; the message names the config key and pattern."""


def has_spec(pattern: str) -> bool:
  return bool(_SPEC.search(pattern))


def _table_patterns(tables: TablesSource) -> list[tuple[tuple[str, ...], str]]:
  """(path of the config key under data.tables, file pattern) of every table, in config order."""
  out = [(("node_sets", k), v.file) for k, v in tables.node_sets.items()]
  out += [(("edge_sets", k), v.file) for k, v in tables.edge_sets.items()]
  if tables.splits is not None and tables.splits.file:
    out.append((("splits",), tables.splits.file))
  return out


def _key(path: tuple[str, ...]) -> str:
  return ".".join(("data.tables",) + path + ("file",))


def _resolve_one(directory: str, key: str, pattern: str, pinned: Optional[int]):
  """(resolved file, span, version) of one table pattern, with TFX's span matching."""
  from tfx.components.example_gen import utils
  from tfx.proto import example_gen_pb2, range_config_pb2
  split = example_gen_pb2.Input.Split(name=key, pattern=pattern)
  range_config = None
  if pinned is not None:
    range_config = range_config_pb2.RangeConfig(static_range=range_config_pb2.StaticRange(
        start_span_number=pinned, end_span_number=pinned))
  try:
    # TFX's own matcher (FileBasedExampleGen's driver uses it through
    # calculate_splits_fingerprint_span_and_version); it rewrites split.pattern.
    span, version = utils._get_target_span_version(
        directory, split, range_config=range_config)
  except ValueError as e:
    message = str(e)
    if message.startswith("Cannot find matching"):
      which = f"span {pinned} (data.tables.span)" if pinned is not None else "any span"
      message = f"no file matches it for {which}"
    raise InputError(f"{key}: pattern {pattern!r} under {directory}: {message}") from None
  return split.pattern, span, version


def resolve_spans(data: DataConfig) -> tuple[DataConfig, int, Optional[int]]:
  """`data` with every table's `{SPAN}`/`{VERSION}` replaced by the latest span (or
  `data.tables.span`) and its latest version, and that (span, version); span 0 and version
  None when no table has a span spec (TFX's convention)."""
  tables = data.tables
  if tables is None:
    return data, 0, None
  if has_spec(tables.directory):
    raise InputError(f"data.tables.directory: {tables.directory!r} holds a span spec; put "
                     "{SPAN} in the tables' file patterns instead (e.g. file: "
                     "'{SPAN}/papers.csv'), as TFX's input_base and split patterns do")
  spanned = [(key, pattern) for key, pattern in _table_patterns(tables) if has_spec(pattern)]
  if not spanned:
    if tables.span is not None:
      raise InputError(f"data.tables.span: {tables.span}, but no table's file has a {{SPAN}} "
                       "spec")
    return data, 0, None
  resolved, found = {}, {}
  for path, pattern in spanned:
    resolved[path], span, version = _resolve_one(tables.directory, _key(path), pattern,
                                                 tables.span)
    found[path] = (span, version)
  (first_path, first), *rest = found.items()
  for path, other in rest:
    if other != first:
      raise InputError(
          f"the tables' latest spans differ: {_key(first_path)} {spanned[0][1]!r} has span "
          f"{first[0]}, version {first[1]}, but {_key(path)} {dict(spanned)[path]!r} has span "
          f"{other[0]}, version {other[1]}; every table with {{SPAN}} must have the same span "
          "(pin one with data.tables.span)")
  update = tables.model_dump()
  for path, file in resolved.items():
    node = update
    for part in path:
      node = node[part]
    node["file"] = file
  update["span"] = None  # resolved: the pattern now names the span's files
  return data.model_copy(update={"tables": TablesSource.model_validate(update)}), first[0], first[1]


def input_files(data: DataConfig) -> list[str]:
  """Every file or URL that ingesting `data` reads (spans resolved); none for the synthetic
  sources. A glob or a directory (a partitioned Parquet table, an OGB tree) stands for each
  file in it: a file added to a directory changes the fingerprint too."""
  if data.tables is not None:
    return [f for _, pattern in _table_patterns(data.tables)
            for f in _expand(table_io.join(data.tables.directory, pattern))]
  if data.ogb is not None:
    return [f for folder in ("raw", "split")
            for f in _expand(table_io.join(data.ogb.root, folder), missing_ok=True)]
  if data.unigraph is not None:
    return _unigraph_files(data.unigraph)
  return []


def _expand(url: str, missing_ok: bool = False) -> list[str]:
  """The files `url` names, through the reading layer (local, s3://, gs://). A location that
  cannot be listed stays as it is: ingest reports why, and `describe_file` marks it missing."""
  try:
    fs, files, _ = table_io.list_files(url)
  except table_io.IngestError:
    return [] if missing_ok else [url]
  return [table_io.display(fs, f) for f in files]


def _unigraph_files(spec) -> list[str]:
  """The schema file, every file its node and edge sets name (shards expanded), the split table."""
  files = [spec.schema_file]
  try:
    from tensorflow_gnn.data import unigraph
    import tensorflow as tf
    schema_path = unigraph.find_schema_filename(spec.schema_file)
    schema = unigraph.read_schema(schema_path)  # makes each set's filename absolute
    files = [schema_path]
    patterns = {s.metadata.filename for s in list(schema.node_sets.values())
                + list(schema.edge_sets.values()) if s.metadata.filename}
    for pattern in sorted(patterns):
      files += sorted(tf.io.gfile.glob(unigraph.expand_sharded_pattern(pattern))) or [pattern]
    schema_dir = os.path.dirname(schema_path)
  except Exception:
    # An unreadable schema: ingest reports why; its bytes are in the fingerprint either way.
    schema_dir = os.path.dirname(spec.schema_file)
  if spec.splits.file:
    files.append(os.path.join(schema_dir, spec.splits.file))
  return files


def describe_file(path: str) -> dict:
  """path, size, mtime (ns) and sha256 of a local file; for an object store, its size and the
  store's own content version (ETag, generation or md5: what changes when the bytes do);
  `missing` where there is none."""
  if table_io.is_url(path) and not path.startswith("file://"):
    try:
      fs, key = table_io.open_url(path)
      info = fs.info(key)
    except (FileNotFoundError, table_io.IngestError, OSError):
      return {"path": path, "missing": True}
    version = next((str(info[k]) for k in ("ETag", "etag", "generation", "md5Hash", "md5")
                    if info.get(k)), None)
    if version is None:  # no content version: hash the bytes, as for a local file
      digest = hashlib.sha256()
      with fs.open(key, "rb") as f:
        while chunk := f.read(_CHUNK):
          digest.update(chunk)
      version = digest.hexdigest()
    return {"path": path, "size": int(info.get("size") or 0), "sha256": version}
  if not os.path.isfile(path):
    return {"path": path, "missing": True}
  stat = os.stat(path)
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    while chunk := f.read(_CHUNK):
      digest.update(chunk)
  return {"path": path, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
          "sha256": digest.hexdigest()}


@dataclasses.dataclass
class Fingerprint:
  text: str  # the cache key: one line per input (as TFX's split fingerprints)
  files: list[dict]  # describe_file of each, with mtimes

  def files_json(self) -> str:
    return json.dumps(self.files, sort_keys=True)


def fingerprint(data: DataConfig) -> Fingerprint:
  """The fingerprint of what ingesting `data` (spans resolved) reads."""
  lines = []
  for source in ("synthetic", "synthetic_graphs"):
    params = getattr(data, source)
    if params is not None:
      lines.append(f"{source}:{json.dumps(params.model_dump(), sort_keys=True)}")
  files = [describe_file(path) for path in input_files(data)]
  for f in files:
    lines.append(f"file:{f['path']},missing" if f.get("missing") else
                 f"file:{f['path']},size:{f['size']},sha256:{f['sha256']}")
  return Fingerprint("\n".join(lines), files)


def changed_files(before: str, after: str) -> list[str]:
  """Lines of fingerprint `after` that `before` lacks (what changed), for messages."""
  old = set(before.splitlines())
  return [line for line in after.splitlines() if line not in old]
