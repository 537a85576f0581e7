"""Reading tables wherever they live: one layer under GraphIngest (and its OGB reader).

A table is a URL that fsspec understands: a local path, `s3://bucket/key` (s3fs) or
`gs://bucket/key` (gcsfs), naming a file, a glob (`s3://b/edges/*.parquet`) or a directory
(a partitioned Parquet dataset: `year=2019/part-0.parquet`; hive-style `key=value` folders
become columns). Formats, from the name or an explicit `format`:

- CSV (`.csv`, `.csv.gz`), with a header row, or without one (`header=False`: columns `0`,
  `1`, ... as OGB's files);
- Parquet (`.parquet`, `.pq`);
- TFRecord of tf.Example (`.tfrecord`, `.tfrecords`, either `.gz`): each feature becomes a
  column (one value per record: a scalar; several: a list), and every file of a glob must hold
  the same features with the same kinds.

Credentials come from the environment, as the underlying libraries read it: for S3,
`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`, or `AWS_PROFILE`), and
`AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`) for an S3-compatible server such as MinIO or Ceph;
for GCS, `GOOGLE_APPLICATION_CREDENTIALS` or the machine's default credentials. They never
appear in messages: every error passes through `secrets.redact`.

Every problem is an `IngestError` that names the URL (and the file of a glob or directory).
`open_url` and `list_files` give the filesystem and paths, so callers can also read each file's
size, modification time or ETag (`fs.info(path)`).
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import posixpath
import re
import struct
from typing import Iterator, Optional, Sequence

import fsspec
import numpy as np
import pyarrow as pa

from tfx_gnn.components import secrets

FORMATS = ("csv", "parquet", "tfrecord")
_SUFFIXES = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet",
             ".tfrecord": "tfrecord", ".tfrecords": "tfrecord", ".tfrecord.gz": "tfrecord",
             ".tfrecords.gz": "tfrecord"}
# Files a directory dataset leaves out, as Spark, Hadoop and pyarrow do (_SUCCESS, .crc, ...).
_HIDDEN_PREFIXES = ("_", ".")


class IngestError(ValueError):
  """Input that cannot be ingested; the message names the file, and the column and line."""


# ---------------------------------------------------------------- URLs and filesystems
def is_url(path: str) -> bool:
  return "://" in path


def join(directory: str, file: str) -> str:
  """`file` relative to `directory` (a path or a URL); an absolute path or a URL stays as is."""
  if is_url(file) or os.path.isabs(file):
    return file
  if is_url(directory):
    return posixpath.join(directory, file)
  return os.path.join(directory, file)


def _is_local(fs) -> bool:
  return "file" in fs.protocol if isinstance(fs.protocol, tuple) else fs.protocol == "file"


# What a remote filesystem's credentials and endpoint come from: an instance is reused only
# while these are unchanged (a fresh client costs ~0.3 s; a stale one would use old keys).
_CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                   "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION",
                   "AWS_DEFAULT_REGION", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
                   "GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST")
_filesystems: dict = {}


def open_url(url: str):
  """(fsspec filesystem, path within it) for a path or URL. A remote filesystem reads its
  credentials from the environment; it is reused only while they are unchanged, and its
  cached listings are dropped first (a changed object must never look unchanged)."""
  try:
    if not is_url(url) or url.startswith("file://"):
      return fsspec.core.url_to_fs(url)
    protocol = url.split("://", 1)[0]
    state = hashlib.sha256(repr([os.getpid(), protocol] + [
        os.environ.get(k) for k in _CREDENTIAL_ENV]).encode()).hexdigest()
    fs = _filesystems.get(state)
    if fs is None:
      fs = _filesystems[state] = fsspec.filesystem(protocol, skip_instance_cache=True)
    fs.invalidate_cache()
    return fs, fs._strip_protocol(url)
  except (ImportError, ValueError) as e:
    raise IngestError(f"{url}: cannot open this location: {secrets.redact(str(e))}") from None


def display(fs, path: str) -> str:
  """The path as the user writes it: plain for local files, with its scheme otherwise."""
  return path if _is_local(fs) else fs.unstrip_protocol(path)


def _storage_error(url: str, error: Exception) -> IngestError:
  """A storage library's error as a message naming the URL (never a credential)."""
  message = secrets.redact(str(error) or type(error).__name__)
  if isinstance(error, FileNotFoundError):
    # s3fs says which of bucket and object is missing; a bare path adds nothing.
    detail = f" ({message})" if "bucket" in message.lower() else ""
    return IngestError(f"{url}: file not found{detail}")
  if isinstance(error, PermissionError):
    hint = ("check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and "
            "AWS_ENDPOINT_URL for an S3-compatible server" if url.startswith(("s3://", "s3a://"))
            else "check GOOGLE_APPLICATION_CREDENTIALS" if url.startswith(("gs://", "gcs://"))
            else "check the file's permissions")
    return IngestError(f"{url}: access denied ({message}); {hint}")
  return IngestError(f"{url}: cannot read: {type(error).__name__}: {message}")


# Libraries whose own exception classes (no credentials, no connection, ...) mean "the store
# cannot be read", beside the OSErrors that fsspec raises for missing files and denied access.
_STORAGE_MODULES = ("botocore", "aiobotocore", "s3fs", "gcsfs", "google", "aiohttp", "fsspec")


@contextlib.contextmanager
def _storage_errors(url: str):
  """Turns a storage library's exceptions into IngestErrors naming `url`."""
  try:
    yield
  except IngestError:
    raise
  except Exception as e:
    if isinstance(e, (OSError, EOFError)) or type(e).__module__.split(".")[0] in _STORAGE_MODULES:
      raise _storage_error(url, e) from None
    raise


def exists(url: str) -> bool:
  """Whether `url` names a file or directory; a store that refuses to say (wrong credentials,
  no connection) is an error, not a "no"."""
  fs, path = open_url(url)
  with _storage_errors(url):
    return bool(fs.exists(path))


def listdir(url: str) -> list[str]:
  """The names (not paths) of the entries of directory `url`, sorted."""
  fs, path = open_url(url)
  with _storage_errors(url):
    return sorted(posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False))


# ---------------------------------------------------------------- formats and files
def table_format(url: str, fmt: Optional[str] = None) -> str:
  """The table's format: `fmt` when given, else from the name's suffix."""
  if fmt is not None:
    if fmt not in FORMATS:
      raise IngestError(f"{url}: unknown format {fmt!r} (formats: {', '.join(FORMATS)})")
    return fmt
  lower = url.lower().rstrip("/")
  for suffix in sorted(_SUFFIXES, key=len, reverse=True):
    if lower.endswith(suffix):
      return _SUFFIXES[suffix]
  return ""  # a directory (or a glob without a suffix): decided by its files


def _compression(path: str) -> Optional[str]:
  return "gzip" if path.lower().endswith(".gz") else None


def list_files(url: str, fmt: Optional[str] = None) -> tuple[object, list[str], str]:
  """(filesystem, the data files `url` names, their format): one file, a glob's matches, or a
  directory's files (recursively, leaving out `_*` and `.*`), sorted."""
  fs, _, files, found = _list(url, fmt)
  return fs, files, found


def _list(url: str, fmt: Optional[str]):
  fs, path = open_url(url)
  with _storage_errors(url):
    if fsspec.core.has_magic(path):
      files = sorted(p for p in fs.glob(path) if fs.isfile(p))
      if not files:
        raise IngestError(f"{url}: no files match")
    elif fs.isdir(path):
      files = sorted(p for p in fs.find(path) if not any(
          part.startswith(_HIDDEN_PREFIXES) for part in posixpath.relpath(p, path).split("/")))
      if not files:
        raise IngestError(f"{url}: the directory has no data files")
    else:
      fs.info(path)  # FileNotFoundError, naming a missing bucket
      files = [path]
  found = table_format(url, fmt) or table_format(files[0])  # "": unknown
  if len(files) > 1 and fmt is None and found:
    # A directory of mixed files is refused rather than guessed at.
    other = next((f for f in files if table_format(f) not in ("", found)), None)
    if other is not None:
      raise IngestError(f"{url}: holds {found} files and {display(fs, other)}; give the "
                        "table's `format`, or keep one format per table")
  return fs, path, files, found


def _partition_values(base: str, path: str) -> dict[str, str]:
  """Hive-style `key=value` folders between a directory and one of its files."""
  parts = posixpath.relpath(path, base).split("/")[:-1]
  return dict(p.split("=", 1) for p in parts if re.fullmatch(r"[^=]+=.*", p))


# ---------------------------------------------------------------- the table
class Table:
  """An Arrow table plus where it came from, so that errors can point into the file."""

  def __init__(self, path: str, data: pa.Table, fmt: str,
               files: Sequence[tuple[str, int]] = ()):
    self.path = path  # the URL as the config names it
    self.data = data
    self.format = fmt
    self.is_csv = fmt == "csv"
    # (file, its first row) when several files make the table.
    self.files = list(files)

  def __len__(self) -> int:
    return self.data.num_rows

  def where(self, row: int) -> str:
    """A row, as the user finds it: the physical CSV line (header = line 1), the Parquet row
    or TFRecord record (1-based), and which file of a glob or directory."""
    name = ""
    if len(self.files) > 1:
      starts = [start for _, start in self.files]
      i = int(np.searchsorted(starts, row, side="right")) - 1
      name, row = f" of {self.files[i][0]}", row - starts[i]
    if self.is_csv:
      return f"line {row + 2}{name}"
    return f"{'record' if self.format == 'tfrecord' else 'row'} {row + 1}{name}"

  def column(self, name: str, role: str) -> pa.ChunkedArray:
    if name not in self.data.column_names:
      raise IngestError(f"{self.path}: no column {name!r} ({role}); the columns are: "
                        f"{', '.join(self.data.column_names) or '(none)'}")
    return self.data.column(name)


def read(url: str, string_columns: Sequence[str] = (), fmt: Optional[str] = None,
         header: bool = True, only_file: Optional[str] = None) -> Optional[Table]:
  """Reads the table `url` names (see the module's docstring); `string_columns` stay strings
  (ids: "007" is not 7); `header=False` reads headerless CSV, columns named 0, 1, ...

  `only_file` (one of `list_files(url)`'s paths) reads that one file of the table, as a table
  of its own named by the file (its partition columns included): GraphIngest's Beam path
  reads a table file by file on its workers. None if that file holds no records."""
  fs, path, files, found = _list(url, fmt)
  if only_file is not None and only_file not in files:
    raise IngestError(f"{url}: {only_file} is no longer one of its files; run again")
  if not found:
    raise IngestError(f"{url}: unsupported table format (expected .csv, .csv.gz, .parquet, "
                      ".tfrecord or .tfrecord.gz, or give the table's `format`)")
  several = fsspec.core.has_magic(path) or files != [path]
  base = path.rstrip("/") if several and not fsspec.core.has_magic(path) else None
  parts, starts, row = [], [], 0
  first_columns, first_file = None, None
  for file in files if only_file is None else [only_file]:
    shown = display(fs, file) if several else url
    with _storage_errors(shown):
      if found == "csv":
        part = _read_csv(fs, file, shown, string_columns, header)
      elif found == "parquet":
        part = _read_parquet(fs, file, shown)
      else:
        part = _read_tfrecord(fs, file, shown)
    if part is None:
      continue  # a TFRecord file without records
    if base is not None:
      for key, value in _partition_values(base, file).items():
        if key not in part.column_names:
          part = part.append_column(key, pa.array([value] * part.num_rows, pa.string()))
    columns = _column_kinds(part, found)
    if first_columns is None:
      first_columns, first_file = columns, shown
    elif columns != first_columns:
      raise IngestError(
          f"{shown}: its columns {_describe(columns)} differ from those of {first_file} "
          f"({_describe(first_columns)}); every file of table {url} needs the same columns")
    parts.append(part)
    starts.append((shown, row))
    row += part.num_rows
  if not parts:
    if only_file is not None:
      return None
    raise IngestError(f"{url}: no records in {len(files)} file(s)")
  data = parts[0] if len(parts) == 1 else _concat(parts, url)
  data = _partition_types(data, base, files)
  if only_file is not None:
    return Table(starts[0][0], data, found)
  return Table(url, data, found, starts)


def _column_kinds(table: pa.Table, fmt: str) -> dict:
  if fmt == "tfrecord":  # names and tf.Example kinds (lengths are checked per column later)
    return {f.name: str(f.metadata[b"kind"].decode()) if f.metadata else str(f.type)
            for f in table.schema}
  return {f.name: None for f in table.schema}  # names only: numeric types may widen


def _describe(columns: dict) -> str:
  return ", ".join(k if v is None else f"{k} ({v})" for k, v in columns.items()) or "(none)"


def _concat(parts: list[pa.Table], url: str) -> pa.Table:
  names = parts[0].column_names
  parts = [p.select(names) for p in parts]
  try:
    return pa.concat_tables(parts, promote_options="permissive")
  except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
    raise IngestError(f"{url}: its files' columns have types that do not combine: {e}") from None


def _partition_types(data: pa.Table, base: Optional[str], files: list[str]) -> pa.Table:
  """Partition columns (`year=2019`) are integers when every value is one, as pyarrow's own
  hive partitioning infers; otherwise strings."""
  if base is None:
    return data
  keys = {k for f in files for k in _partition_values(base, f)}
  for key in keys:
    i = data.column_names.index(key)
    column = data.column(i)
    if not pa.types.is_string(column.type):
      continue
    try:
      data = data.set_column(i, key, column.cast(pa.int64()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
      pass
  return data


# ---------------------------------------------------------------- CSV
def _open_binary(fs, path: str):
  return fs.open(path, "rb", compression=_compression(path))


def _find_malformed_line(fs, path: str, shown: str, header: bool) -> Optional[str]:
  """The first CSV row whose field count differs from the first row's, as a message.

  Only called after pyarrow has refused the file (its own messages lack line numbers when it
  reads with several threads), so the slow Python scan costs nothing on good files.
  """
  with _open_binary(fs, path) as raw, io.TextIOWrapper(raw, newline="") as f:
    reader = csv.reader(f)
    first = next(reader, None)
    if first is None:
      return None
    for row in reader:
      if row and len(row) != len(first):
        what = f"as in the header ({','.join(first)})" if header else "as on line 1"
        return (f"{shown}: line {reader.line_num} has {len(row)} fields, expected "
                f"{len(first)} {what}")
  return None


def _read_csv(fs, path: str, shown: str, string_columns: Sequence[str],
              header: bool) -> pa.Table:
  from pyarrow import csv as pcsv
  # pyarrow ignores names the file does not have.
  convert = pcsv.ConvertOptions(column_types={c: pa.string() for c in string_columns})
  read_options = pcsv.ReadOptions(autogenerate_column_names=not header)
  if fs.size(path) == 0:
    raise IngestError(f"{shown}: the file is empty")
  try:
    if _is_local(fs):
      source = path  # pyarrow's own reader: memory-mapped, gzip by the name
    else:
      source = pa.input_stream(fs.open(path, "rb"), compression=_compression(path))
    table = pcsv.read_csv(source, read_options=read_options, convert_options=convert)
  except pa.ArrowInvalid as e:
    message = str(e)
    if "Empty CSV file" in message:
      raise IngestError(f"{shown}: the file is empty (not even a header row)") from None
    malformed = _find_malformed_line(fs, path, shown, header)
    if malformed:
      raise IngestError(malformed) from None
    raise IngestError(f"{shown}: cannot parse CSV: {message}") from None
  except (OSError, EOFError, UnicodeDecodeError) as e:
    if isinstance(e, (FileNotFoundError, PermissionError)):
      raise
    raise IngestError(f"{shown}: cannot read csv: {e}") from None
  if not header:  # f0, f1, ... -> 0, 1, ... as OGB's reader (pandas, header=None) names them
    table = table.rename_columns([str(i) for i in range(table.num_columns)])
  return table


# ---------------------------------------------------------------- Parquet
def _read_parquet(fs, path: str, shown: str) -> pa.Table:
  from pyarrow import parquet as pq
  if fs.size(path) == 0:
    raise IngestError(f"{shown}: the file is empty")
  try:
    with fs.open(path, "rb") as f:
      table = pq.read_table(f)
  except (pa.ArrowException, OSError, EOFError) as e:
    if isinstance(e, (FileNotFoundError, PermissionError)):
      raise
    raise IngestError(f"{shown}: cannot read parquet (truncated or not a Parquet file?): "
                      f"{e}") from None
  # Dictionary-encoded columns (e.g. categories written by pandas) read as plain values.
  for i, field in enumerate(table.schema):
    if pa.types.is_dictionary(field.type):
      table = table.set_column(i, field.name, table.column(i).cast(field.type.value_type))
  return table


# ---------------------------------------------------------------- TFRecord of tf.Example
def _masked_crc(data: bytes) -> int:
  import google_crc32c
  crc = google_crc32c.value(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class _Chunked:
  """Reads of any size served from large reads of `f`: one request per chunk, whatever the
  store's own buffering (gcsfs against an emulator made one request per 12-byte header)."""

  def __init__(self, f, chunk_size: int = 1 << 23):
    self._f, self._size = f, chunk_size
    self._buffer, self._pos = b"", 0

  def read(self, n: int) -> bytes:
    while len(self._buffer) - self._pos < n:
      chunk = self._f.read(max(self._size, n))
      if not chunk:
        break
      self._buffer, self._pos = self._buffer[self._pos:] + chunk, 0
    out = self._buffer[self._pos:self._pos + n]
    self._pos += len(out)
    return out


def tfrecord_records(fs, path: str, shown: str) -> Iterator[bytes]:
  """The records of a TFRecord file (gzip by the name), checking each frame's CRCs: a
  truncated or corrupt file is an error naming the record. TF's own reader needs a
  filesystem TF knows (it has no s3://); this one reads anything fsspec opens."""
  with _open_binary(fs, path) as raw:
    f = _Chunked(raw)
    index = 0
    while True:
      head = f.read(12)
      if not head:
        return
      if len(head) < 12:
        raise IngestError(f"{shown}: truncated TFRecord file (record {index + 1} is cut short)")
      length, length_crc = struct.unpack("<QI", head)
      if _masked_crc(head[:8]) != length_crc:
        raise IngestError(f"{shown}: not a TFRecord file, or corrupt at record {index + 1} "
                          "(its length fails its checksum)")
      data = f.read(length)
      tail = f.read(4)
      if len(data) < length or len(tail) < 4:
        raise IngestError(f"{shown}: truncated TFRecord file (record {index + 1} is cut short)")
      if _masked_crc(data) != struct.unpack("<I", tail)[0]:
        raise IngestError(f"{shown}: corrupt TFRecord file (record {index + 1} fails its "
                          "checksum)")
      yield data
      index += 1


_KINDS = ("int64_list", "float_list", "bytes_list")


def _example_kinds(record: bytes, shown: str) -> dict[str, str]:
  import tensorflow as tf
  try:
    example = tf.train.Example.FromString(record)
  except Exception as e:  # protobuf's DecodeError
    raise IngestError(f"{shown}: record 1 is not a tf.Example: {e}") from None
  kinds = {}
  for name, feature in sorted(example.features.feature.items()):
    kind = feature.WhichOneof("kind")
    if kind is None:
      raise IngestError(f"{shown}: record 1: feature {name!r} holds no value list")
    kinds[name] = kind
  if not kinds:
    raise IngestError(f"{shown}: record 1 has no features")
  return kinds


def _read_tfrecord(fs, path: str, shown: str, batch_size: int = 4096) -> Optional[pa.Table]:
  """The file's tf.Examples as columns, the first record's features deciding the columns and
  their kinds (int64 -> int64, float -> float32, bytes -> string, or binary when not UTF-8)."""
  import tensorflow as tf
  records = tfrecord_records(fs, path, shown)
  first = next(records, None)
  if first is None:
    return None
  kinds = _example_kinds(first, shown)
  dtypes = {"int64_list": tf.int64, "float_list": tf.float32, "bytes_list": tf.string}
  spec = {name: tf.io.VarLenFeature(dtypes[kind]) for name, kind in kinds.items()}
  lengths = {name: [] for name in kinds}
  values = {name: [] for name in kinds}
  batch, done = [first], 0

  def parse(batch):
    try:
      parsed = tf.io.parse_example(tf.constant(batch), spec)
    except tf.errors.InvalidArgumentError as e:
      detail = e.message.splitlines()[0]
      raise IngestError(f"{shown}: records {done + 1}-{done + len(batch)} do not match record "
                        f"1's features ({_describe(kinds)}): {detail}") from None
    for name, sparse in parsed.items():
      rows = sparse.indices.numpy()[:, 0]
      lengths[name].append(np.bincount(rows, minlength=len(batch)))
      values[name].append(sparse.values.numpy())

  for record in records:
    batch.append(record)
    if len(batch) == batch_size:
      parse(batch)
      done += len(batch)
      batch = []
  if batch:
    parse(batch)
  fields, arrays = [], []
  for name, kind in kinds.items():
    counts = np.concatenate(lengths[name])
    flat = np.concatenate(values[name])
    if kind == "bytes_list":
      flat = _bytes_array(flat)
    else:
      flat = pa.array(flat)
    if counts.max(initial=0) <= 1:  # scalars; a record without the feature is null
      missing = counts == 0
      array = flat
      if missing.any():
        index = np.zeros(len(counts), np.int64)
        index[~missing] = np.arange(len(flat))
        array = flat.take(pa.array(index, mask=missing))  # a null index takes a null
    else:
      offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
      array = pa.ListArray.from_arrays(pa.array(offsets), flat)
    fields.append(pa.field(name, array.type, metadata={"kind": kind}))
    arrays.append(array)
  return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _bytes_array(values: np.ndarray) -> pa.Array:
  binary = pa.array(list(values), pa.binary())
  try:
    return binary.cast(pa.string())  # ids and text; validates UTF-8
  except pa.ArrowInvalid:
    return binary


# ---------------------------------------------------------------- sizes (memory estimates)
def file_sizes(url: str, fmt: Optional[str] = None) -> tuple[object, dict[str, int], str]:
  """(filesystem, {path: bytes}, format) of the files `url` names (one listing, no reads)."""
  fs, files, found = list_files(url, fmt)
  with _storage_errors(url):
    return fs, {f: int(fs.size(f)) for f in files}, found
