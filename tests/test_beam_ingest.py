"""GraphIngest's Beam path (tables above data.beam_threshold_mb, read file by file on Beam's
workers) against the in-memory path: the same Graph artifact, byte for byte, and the same
anomalies; bad input still names the file, and nothing is published."""
import glob
import json
import os

import numpy as np
import pandas as pd
import pytest

from tfx_gnn.components import graph_io
from tfx_gnn.components.graph_ingest import ingest
from tfx_gnn.components.graph_ingest.config import DataConfig

pytestmark = pytest.mark.slow  # runs Beam pipelines

IN_PROCESS = ["--runner=FnApiRunner", "--direct_num_workers=1", "--sdk_container_image=unused"]


def beam_pipeline(args=IN_PROCESS):
  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions
  return lambda: beam.Pipeline(options=PipelineOptions(args))


def write_tables(root) -> dict:
  """A small graph over several files per table (a CSV glob, a Parquet directory), with one
  edge to an unknown author and one paper id used twice; returns its `data` config."""
  rng = np.random.default_rng(0)
  os.makedirs(root / "papers")
  papers = pd.DataFrame({
      "id": [f"p{i}" for i in range(60)],
      "feat": [" ".join(f"{v:.3f}" for v in rng.normal(size=4)) for _ in range(60)],
      "year": rng.integers(2015, 2020, 60),
      "label": rng.integers(0, 3, 60)})
  papers.loc[41, "id"] = "p7"  # a duplicate id
  for i, part in enumerate(np.array_split(papers, 3)):
    part.to_csv(root / "papers" / f"part-{i}.csv", index=False)
  authors = pd.DataFrame({"id": [f"a{i}" for i in range(25)], "h": rng.normal(size=25)})
  os.makedirs(root / "authors")
  for i, part in enumerate(np.array_split(authors, 2)):
    part.to_parquet(root / "authors" / f"part-{i}.parquet")
  writes = pd.DataFrame({"source": [f"a{i % 25}" for i in range(90)],
                         "target": [f"p{rng.integers(60)}" for _ in range(90)],
                         "w": rng.random(90)})
  writes.loc[17, "source"] = "a_unknown"  # a dangling edge
  os.makedirs(root / "writes")
  for i, part in enumerate(np.array_split(writes, 2)):
    part.to_csv(root / "writes" / f"part-{i}.csv", index=False)
  cites = pd.DataFrame({"source": [f"p{rng.integers(60)}" for _ in range(70)],
                        "target": [f"p{rng.integers(60)}" for _ in range(70)]})
  cites.to_csv(root / "cites.csv", index=False)
  return {"tables": {
      "directory": str(root),
      "node_sets": {"paper": {"file": "papers/*.csv", "label_column": "label"},
                    "author": {"file": "authors"}},
      "edge_sets": {"writes": {"file": "writes/*.csv", "source": "author", "target": "paper",
                               "reverse": "written"},
                    "cites": {"file": "cites.csv", "source": "paper", "target": "paper",
                              "undirected": True}},
      "splits": {"feature": "year", "boundaries": {"eval": 2018, "test": 2019}}}}


def artifact_files(graph_dir) -> dict[str, bytes]:
  out = {}
  for path in sorted(glob.glob(os.path.join(graph_dir, "**", "*"), recursive=True)):
    if os.path.isfile(path):
      with open(path, "rb") as f:
        out[os.path.relpath(path, graph_dir)] = f.read()
  return out


@pytest.fixture(scope="module")
def both(tmp_path_factory):
  """The same tables ingested in memory and on Beam (threshold 0)."""
  root = tmp_path_factory.mktemp("beam_ingest")
  data = write_tables(root / "tables")
  memory = ingest.ingest(DataConfig.model_validate(data), str(root / "memory"), str(root / "s"),
                         make_pipeline=beam_pipeline())
  on_beam = ingest.ingest(DataConfig.model_validate({**data, "beam_threshold_mb": 0}),
                          str(root / "beam"), str(root / "s"), make_pipeline=beam_pipeline())
  return data, root, memory, on_beam


def test_same_artifact_byte_for_byte(both):
  _, root, memory, on_beam = both
  in_memory, beam = artifact_files(root / "memory"), artifact_files(root / "beam")
  assert sorted(beam) == sorted(in_memory)
  assert {"schema.pbtxt", "nodes_paper.tfrecords", "edges_writes.tfrecords",
          "edges_cites.tfrecords", "seeds/train.csv"} <= set(in_memory)
  for name in in_memory:
    assert beam[name] == in_memory[name], name
  assert on_beam.counts() == memory.counts()
  assert on_beam.counts()["edge_sets"]["cites"] == 140  # undirected: both directions
  assert on_beam.label == memory.label
  assert not os.path.exists(root / "beam" / ".parts")


def test_same_anomalies(both):
  """The injected duplicate id and dangling edge, found the same in both artifacts."""
  from tfx_gnn.components.graph_validator import validation
  from tfx_gnn.components.graph_validator.config import ValidationConfig
  _, root, _, _ = both
  found = {}
  for name in ("memory", "beam"):
    graph_dir = str(root / name)
    stats, anomalies = validation.validate(graph_io.read_graph(graph_dir),
                                           graph_io.read_schema(graph_dir), ValidationConfig())
    found[name] = (stats, [a.to_dict() for a in anomalies])
  assert found["beam"] == found["memory"]
  kinds = {a["kind"] for a in found["beam"][1]}
  assert {validation.DUPLICATE_NODE_ID, validation.DANGLING_EDGE} <= kinds


def test_below_threshold_stays_in_memory(both, tmp_path):
  """The default threshold (1 GB) keeps these tables in memory: no Beam pipeline is made."""
  data, _, _, _ = both

  def no_pipeline():
    raise AssertionError("a Beam pipeline was made below the threshold")
  ingest.ingest(DataConfig.model_validate(data), str(tmp_path / "g"), str(tmp_path / "s"),
                make_pipeline=no_pipeline)
  assert os.path.exists(tmp_path / "g" / "schema.pbtxt")


def test_bad_input_on_beam_names_the_file(both, tmp_path):
  """A missing table and a file of another kind of column: clear errors, nothing published."""
  data, root, _, _ = both
  tables = json.loads(json.dumps(data["tables"]))
  tables["node_sets"]["author"]["file"] = "missing_authors.parquet"
  with pytest.raises(ingest.IngestError, match="missing_authors.parquet: file not found"):
    ingest.ingest(DataConfig.model_validate({"tables": tables, "beam_threshold_mb": 0}),
                  str(tmp_path / "a"), str(tmp_path / "s"), make_pipeline=beam_pipeline())
  assert not os.path.exists(tmp_path / "a" / "schema.pbtxt")

  # One file of the papers glob has text in the label column.
  broken = root / "broken"
  os.makedirs(broken)
  for path in glob.glob(str(root / "tables" / "papers" / "*.csv")):
    frame = pd.read_csv(path)
    if path.endswith("part-1.csv"):
      frame.loc[frame.index[2], "label"] = "oops"
    frame.to_csv(broken / os.path.basename(path), index=False)
  tables = json.loads(json.dumps(data["tables"]))
  tables["node_sets"]["paper"]["file"] = str(broken / "*.csv")
  with pytest.raises(Exception, match=r"part-1\.csv.*'label'.*'oops'"):
    ingest.ingest(DataConfig.model_validate({"tables": tables, "beam_threshold_mb": 0}),
                  str(tmp_path / "b"), str(tmp_path / "s"), make_pipeline=beam_pipeline())
  assert not os.path.exists(tmp_path / "b" / "schema.pbtxt")


def test_beam_id_checks_equal_in_memory_validation(both, tmp_path):
  """Duplicate ids and dangling edges checked on Beam (ids routed to 7 groups by hash): the
  same anomalies, message for message, and statistics as the in-memory validator's."""
  from tfx_gnn.components.graph_validator import beam_validation, validation
  _, root, _, _ = both
  graph_dir = str(root / "beam")
  stats, anomalies = validation.validate(graph_io.read_graph(graph_dir),
                                         graph_io.read_schema(graph_dir))
  kinds = (validation.DUPLICATE_NODE_ID, validation.DANGLING_EDGE)
  expected = [a.to_dict() for a in anomalies if a.kind in kinds]
  # The duplicate; the unknown author, and authors writing "p41", whose row now says "p7".
  assert [(a["kind"], a["set_name"]) for a in expected] == [
      ("duplicate_node_id", "paper"), ("dangling_edge", "writes"), ("dangling_edge", "writes")]
  beam_stats, beam_anomalies = beam_validation.id_checks(
      graph_dir, graph_io.read_schema(graph_dir), str(tmp_path / "checks"), beam_pipeline(),
      partitions=7)
  assert [a.to_dict() for a in beam_anomalies] == expected
  for name, entry in beam_stats["node_sets"].items():
    assert entry["distinct_ids"] == stats["node_sets"][name]["distinct_ids"]
  for name, entry in beam_stats["edge_sets"].items():
    assert entry["dangling_edges"] == stats["edge_sets"][name]["dangling_edges"]
  assert set(beam_stats["edge_sets"]) == {"writes", "cites"}
  assert not os.path.exists(tmp_path / "checks")


def test_validator_beam_path_finds_the_same_anomalies(both, tmp_path):
  """GraphValidator's Beam path (above validation.beam_threshold_mb): the in-memory path's
  anomalies, and its counts, label and split statistics."""
  from tfx_gnn.components.graph_validator import beam_validation, validation
  from tfx_gnn.components.graph_validator.config import ValidationConfig
  _, root, _, _ = both
  graph_dir = str(root / "beam")
  schema = graph_io.read_schema(graph_dir)
  stats, anomalies = validation.validate(graph_io.read_graph(graph_dir), schema)
  beam_stats, beam_anomalies = beam_validation.validate(
      graph_dir, schema, ValidationConfig(), str(tmp_path / "checks"), beam_pipeline())
  assert [a.to_dict() for a in beam_anomalies] == [a.to_dict() for a in anomalies]
  assert beam_stats["label"] == stats["label"] and beam_stats["splits"] == stats["splits"]
  for kind in ("node_sets", "edge_sets"):
    for name, entry in beam_stats[kind].items():
      assert set(entry) == set(stats[kind][name])
      for key, value in entry.items():
        if value not in (None, {}):  # what the Beam path does not compute
          assert stats[kind][name][key] == value, (kind, name, key)
  assert beam_stats["edge_sets"]["written"]["dangling_edges"] == 3  # its forward set's


def test_ingest_executor_takes_the_components_beam_pipeline_args(both, tmp_path):
  """GraphIngest's executor above the threshold: the artifact from its Beam pipeline (the
  component's beam_pipeline_args), with the in-memory run's counts recorded."""
  from tfx.dsl.components.base import base_beam_executor
  from tfx_gnn.components import types
  from tfx_gnn.components.graph_ingest import driver, executor
  data, root, memory, _ = both
  config = DataConfig.model_validate({**data, "beam_threshold_mb": 0})
  props = driver.resolve_exec_properties({"data_config": config.model_dump_json()})
  graph = types.Graph()
  graph.uri = str(tmp_path / "graph")
  context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=IN_PROCESS,
                                                        tmp_dir=str(tmp_path / "tmp"),
                                                        unique_id="1")
  executor.Executor(context).Do({}, {"graph": [graph]}, props)
  assert artifact_files(tmp_path / "graph") == artifact_files(root / "memory")
  assert json.loads(graph.get_string_custom_property("edge_counts")) == \
      memory.counts()["edge_sets"]
  assert graph.get_int_custom_property("num_classes") == memory.label.num_classes
