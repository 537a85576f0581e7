"""GraphIngest's inputs without a pipeline: TFX's {SPAN}/{VERSION} patterns, the fingerprint
that keys ingest's cache, and the driver's execution properties."""
import json
import os

import pytest

from tfx_gnn.components.graph_ingest import driver, inputs
from tfx_gnn.components.graph_ingest.config import DataConfig

PAPERS = "id,label,year\np0,0,1\np1,1,2\np2,0,3\n"
CITES = "src,dst\np0,p1\np1,p2\n"


def tables(directory, papers="papers.csv", cites="cites.csv", **extra) -> DataConfig:
  return DataConfig.model_validate({"tables": {
      "directory": str(directory),
      "node_sets": {"paper": {"file": papers, "label_column": "label"}},
      "edge_sets": {"cites": {"file": cites, "source": "paper", "target": "paper",
                              "source_column": "src", "target_column": "dst"}},
      "splits": {"ratios": {"train": 0.5, "eval": 0.25, "test": 0.25}}, **extra}})


def write_span(directory, span: str, papers=PAPERS, cites=CITES):
  os.makedirs(directory / span, exist_ok=True)
  (directory / span / "papers.csv").write_text(papers)
  (directory / span / "cites.csv").write_text(cites)


def test_fingerprint_changes_with_one_edited_byte_and_not_with_a_touch(tmp_path):
  write_span(tmp_path, ".")
  data = tables(tmp_path)
  before = inputs.fingerprint(data)
  assert len(before.files) == 2 and all(len(f["sha256"]) == 64 for f in before.files)
  assert str(tmp_path / "papers.csv") in before.text
  path = tmp_path / "papers.csv"
  os.utime(path, ns=(1, 1))  # same bytes, another mtime: the same data
  touched = inputs.fingerprint(data)
  assert touched.text == before.text
  assert touched.files[0]["mtime_ns"] == 1 != before.files[0]["mtime_ns"]
  # One label edited, same size: only a content hash can tell.
  path.write_text(PAPERS.replace("p1,1,2", "p1,0,2"))
  after = inputs.fingerprint(data)
  assert after.text != before.text
  assert inputs.changed_files(before.text, after.text) == [
      line for line in after.text.splitlines() if "papers.csv" in line]


def test_synthetic_fingerprint_is_its_parameters():
  one = inputs.fingerprint(DataConfig.model_validate({"synthetic": {"num_papers": 50}}))
  two = inputs.fingerprint(DataConfig.model_validate({"synthetic": {"num_papers": 51}}))
  assert one.text.startswith("synthetic:") and '"num_papers": 50' in one.text
  assert one.text != two.text and one.files == []


def test_latest_span_and_version_are_found_with_tfx_matching(tmp_path):
  for span in ("span-1", "span-2", "span-10"):
    write_span(tmp_path, span)
  data, span, version = inputs.resolve_spans(
      tables(tmp_path, "span-{SPAN}/papers.csv", "span-{SPAN}/cites.csv"))
  assert (span, version) == (10, None)  # numeric order, not text order
  assert data.tables.node_sets["paper"].file == "span-10/papers.csv"
  assert data.tables.edge_sets["cites"].file == "span-10/cites.csv"
  pinned, span, _ = inputs.resolve_spans(
      tables(tmp_path, "span-{SPAN}/papers.csv", "span-{SPAN}/cites.csv", span=2))
  assert span == 2 and pinned.tables.node_sets["paper"].file == "span-2/papers.csv"
  # Resolved data has no spec left: resolving again is a no-op.
  assert inputs.resolve_spans(data)[0] == data
  write_span(tmp_path, "v/3/1")
  write_span(tmp_path, "v/3/4")
  data, span, version = inputs.resolve_spans(
      tables(tmp_path, "v/{SPAN}/{VERSION}/papers.csv", "v/{SPAN}/{VERSION}/cites.csv"))
  assert (span, version) == (3, 4) and data.tables.node_sets["paper"].file == "v/3/4/papers.csv"


def test_tables_without_a_span_spec_are_span_zero(tmp_path):
  write_span(tmp_path, ".")
  data = tables(tmp_path)
  assert inputs.resolve_spans(data) == (data, 0, None)


@pytest.mark.parametrize("papers,cites,extra,expected", [
    ("{SPAN}/papers.csv", "{SPAN}/cites.csv", {},
     ["data.tables.node_sets.paper.file", "'{SPAN}/papers.csv'", "no file matches it"]),
    ("{SPAN}/papers.csv", "{SPAN}/cites.csv", {"span": 7},
     ["'{SPAN}/papers.csv'", "span 7 (data.tables.span)"]),
    ("{SPAN:x}/papers.csv", "cites.csv", {},
     ["data.tables.node_sets.paper.file", "'{SPAN:x}/papers.csv'", "not a positive integer"]),
    ("{SPAN}/{SPAN}/papers.csv", "cites.csv", {},
     ["data.tables.node_sets.paper.file", "Only one {SPAN} is allowed"]),
    ("{VERSION}/papers.csv", "cites.csv", {},
     ["data.tables.node_sets.paper.file", "Span or Date spec is not present"]),
    ("papers.csv", "cites.csv", {"span": 1}, ["data.tables.span: 1", "no table's file"]),
])
def test_bad_span_patterns_name_the_key_and_the_pattern(tmp_path, papers, cites, extra,
                                                        expected):
  write_span(tmp_path, ".")
  with pytest.raises(inputs.InputError) as info:
    inputs.resolve_spans(tables(tmp_path, papers, cites, **extra))
  for text in expected:
    assert text in str(info.value), str(info.value)


def test_a_span_spec_in_the_directory_is_refused(tmp_path):
  write_span(tmp_path, "1")
  with pytest.raises(inputs.InputError, match=r"data\.tables\.directory: .*put \{SPAN\} in the "
                                              r"tables' file patterns"):
    inputs.resolve_spans(tables(tmp_path / "{SPAN}"))


def test_tables_whose_latest_spans_differ_are_refused(tmp_path):
  write_span(tmp_path, "1")
  write_span(tmp_path, "2")
  os.remove(tmp_path / "2" / "cites.csv")
  with pytest.raises(inputs.InputError, match=r"latest spans differ.*span 2.*span 1"):
    inputs.resolve_spans(tables(tmp_path, "{SPAN}/papers.csv", "{SPAN}/cites.csv"))


def test_driver_keys_the_cache_on_the_resolved_span_and_the_content(tmp_path):
  write_span(tmp_path, "1")
  data = tables(tmp_path, "{SPAN}/papers.csv", "{SPAN}/cites.csv")
  props = driver.resolve_exec_properties({"data_config": data.model_dump_json()})
  assert props["span"] == 1 and "version" not in props
  assert json.loads(props["data_config"])["tables"]["node_sets"]["paper"]["file"] == "1/papers.csv"
  assert "1/papers.csv,size:" in props["input_fingerprint"]
  write_span(tmp_path, "2")  # a new day's tables: same bytes, new span, another key
  again = driver.resolve_exec_properties({"data_config": data.model_dump_json()})
  assert again["span"] == 2 and again["input_fingerprint"] != props["input_fingerprint"]
  # A pattern that matches nothing: the driver does not raise (the executor will, as a FAILED
  # execution); its fingerprint matches no successful run.
  bad = tables(tmp_path, "{SPAN}/none.csv", "{SPAN}/cites.csv")
  failed = driver.resolve_exec_properties({"data_config": bad.model_dump_json()})
  assert failed["input_fingerprint"].startswith(driver.UNRESOLVED)
  assert "none.csv" in failed["input_fingerprint"]


def test_executor_refuses_files_changed_after_the_cache_check(tmp_path):
  """The driver keyed the cache on one content; if the files differ when the executor starts,
  it fails naming the file, and publishes nothing."""
  from tfx_gnn.components import types
  from tfx_gnn.components.graph_ingest import executor
  (tmp_path / "data").mkdir()
  write_span(tmp_path / "data", ".")
  data = tables(tmp_path / "data")
  props = driver.resolve_exec_properties({"data_config": data.model_dump_json()})
  (tmp_path / "data" / "cites.csv").write_text(CITES + "p2,p0\n")
  graph = types.Graph()
  graph.uri = str(tmp_path / "graph")
  os.makedirs(graph.uri)
  with pytest.raises(inputs.InputError, match=r"changed while .*cites\.csv,size:"):
    executor.Executor().Do({}, {"graph": [graph]}, props)
  assert os.listdir(tmp_path / "graph") == []
  assert not [p for p in os.listdir(tmp_path) if p.endswith(".incomplete")]
