"""Before a run: are the data files that a `data` config names there, readable, and do they
have the columns it names? (`tfx-gnn check`.) Only headers and schemas are read, so this takes
a moment even for a large graph; ingest reads and validates every row later."""
from __future__ import annotations

import glob
import os

import pyarrow as pa
from pyarrow import csv as pcsv
from pyarrow import parquet as pq

from tfx_gnn.components.graph_ingest import ingest
from tfx_gnn.components.graph_ingest.config import DataConfig, SplitTable, TablesSource


def table_columns(path: str) -> list[str]:
  """The column names of a .csv, .csv.gz or .parquet table, from its header or schema only
  (errors: `ingest.IngestError` naming the file)."""
  lower = path.lower()
  if not lower.endswith((".csv", ".csv.gz", ".parquet", ".pq")):
    raise ingest.IngestError(f"{path}: unsupported table format (expected .csv, .csv.gz or "
                             ".parquet)")
  if not os.path.exists(path):
    raise ingest.IngestError(f"{path}: file not found")
  if os.path.isdir(path):
    raise ingest.IngestError(f"{path}: is a directory, expected a table file")
  try:
    if lower.endswith((".parquet", ".pq")):
      return list(pq.read_schema(path).names)
    # The first block only (pyarrow decompresses .gz by the name).
    return list(pcsv.open_csv(path).schema.names)
  except (pa.ArrowException, OSError, EOFError, UnicodeDecodeError) as e:
    message = str(e)
    if "Empty CSV file" in message:
      message = "the file is empty (not even a header row)"
    raise ingest.IngestError(f"{path}: cannot read it: {message}") from None


def _check_table(path: str, needed: dict[str, str], problems: list[str],
                 checked: list[str]) -> None:
  """`needed`: column -> the config key that names it. A name with a TFX `{SPAN}` /
  `{VERSION}` spec is resolved by GraphIngest when the run starts, not here."""
  if "{" in path:
    return
  try:
    columns = table_columns(path)
  except ingest.IngestError as e:
    problems.append(str(e))
    return
  missing = [f"{column!r} ({key})" for column, key in needed.items() if column not in columns]
  if missing:
    problems.append(f"{path}: no column {', '.join(missing)}; the columns are: "
                    f"{', '.join(columns)}")
  else:
    checked.append(path)


def _split_columns(split: SplitTable, key: str) -> dict[str, str]:
  return {split.id_column: f"{key}.id_column", split.split_column: f"{key}.split_column"}


def _check_tables(tables: TablesSource, problems: list[str], checked: list[str]) -> None:
  key = "data.tables"
  for name, node_set in tables.node_sets.items():
    where = f"{key}.node_sets.{name}"
    needed = {node_set.id_column: f"{where}.id_column"}
    if node_set.label_column:
      needed[node_set.label_column] = f"{where}.label_column"
    needed.update({c: f"{where}.features" for c in node_set.features or ()})
    _check_table(os.path.join(tables.directory, node_set.file), needed, problems, checked)
  for name, edge_set in tables.edge_sets.items():
    where = f"{key}.edge_sets.{name}"
    needed = {edge_set.source_column: f"{where}.source_column",
              edge_set.target_column: f"{where}.target_column"}
    needed.update({c: f"{where}.features" for c in edge_set.features or ()})
    _check_table(os.path.join(tables.directory, edge_set.file), needed, problems, checked)
  if tables.splits is not None and tables.splits.file:
    _check_table(os.path.join(tables.directory, tables.splits.file),
                 _split_columns(tables.splits, f"{key}.splits"), problems, checked)


def _check_unigraph(data: DataConfig, problems: list[str], checked: list[str]) -> None:
  spec = data.unigraph
  if not os.path.exists(spec.schema_file):
    problems.append(f"{spec.schema_file}: schema file not found (data.unigraph.schema_file)")
    return
  from tensorflow_gnn.data import unigraph
  try:
    schema_path = unigraph.find_schema_filename(spec.schema_file)
    schema = unigraph.read_schema(schema_path)
  except Exception as e:  # a parse error of any kind
    problems.append(f"{spec.schema_file}: not a readable GraphSchema: {e}")
    return
  checked.append(schema_path)
  for kind, sets in (("node set", schema.node_sets), ("edge set", schema.edge_sets)):
    for name, proto in sets.items():
      pattern = proto.metadata.filename
      if not pattern:
        problems.append(f"{schema_path}: {kind} {name!r} names no file (metadata.filename)")
      elif not glob.glob(unigraph.expand_sharded_pattern(pattern)):
        problems.append(f"{schema_path}: {kind} {name!r}: no file matches {pattern}")
      elif pattern not in checked:
        checked.append(pattern)
  if spec.splits.file:
    _check_table(os.path.join(os.path.dirname(schema_path), spec.splits.file),
                 _split_columns(spec.splits, "data.unigraph.splits"), problems, checked)


def check_sources(data: DataConfig) -> tuple[list[str], list[str]]:
  """Returns (the files found readable with the columns named, the problems), each problem
  naming the file and the config key. The embedded generators have no files."""
  problems: list[str] = []
  checked: list[str] = []
  if data.tables is not None:
    _check_tables(data.tables, problems, checked)
  elif data.unigraph is not None:
    _check_unigraph(data, problems, checked)
  return checked, problems
