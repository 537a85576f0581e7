"""GraphIngest's logic: tables and unigraphs in, `graph_io.Graph` out (no TFX)."""
import gzip
import os
import sys
import types

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tfx_gnn.components import graph_io
from tfx_gnn.components.graph_ingest import ingest
from tfx_gnn.pipelines import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "pipelines", "configs")
ACM_DIR = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "acm"))
CORA_DIR = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "cora"))


def _write(path, text):
  opener = gzip.open if str(path).endswith(".gz") else open
  with opener(path, "wt") as f:
    f.write(text)
  return str(path)


def _spec(directory, **overrides) -> config_lib.TablesSource:
  raw = {
      "directory": str(directory),
      "node_sets": {
          "paper": {"file": "papers.csv", "label_column": "label"},
          "author": {"file": "authors.csv"},
      },
      "edge_sets": {
          "writes": {"file": "writes.csv", "source": "author", "target": "paper",
                     "reverse": "written_by"},
      },
      "splits": {"file": "split.csv"},
  }
  raw.update(overrides)
  return config_lib.TablesSource.model_validate(raw)


@pytest.fixture
def tables(tmp_path):
  """A tiny heterogeneous graph as CSV tables."""
  _write(tmp_path / "papers.csv",
         "id,label,year,score,vec\n"
         "007,0,2001,0.5,1 2 3\n"
         "p1,1,2002,,4 5 6\n"
         "p2,2,2003,1.5, 7  8 nan \n")
  _write(tmp_path / "authors.csv", "id\na\nb\n")
  _write(tmp_path / "writes.csv", "source,target\na,007\nb,p1\nb,p2\n")
  _write(tmp_path / "split.csv", "id,split\n007,train\np1,VAL\np2,Test\n")
  return tmp_path


def _message(excinfo) -> str:
  return str(excinfo.value)


# ---------------------------------------------------------------- reading tables
def test_csv_tables_dtypes_shapes_and_labels(tables):
  graph = ingest.tables_to_graph(_spec(tables))
  paper = graph.node_sets["paper"]
  assert list(paper.ids) == ["007", "p1", "p2"]  # ids stay strings: "007" is not 7
  assert paper.features["year"].dtype == np.int64
  assert paper.features["score"].dtype == np.float32
  assert np.isnan(paper.features["score"][1])  # NaN is kept, the validator reports it
  assert paper.features["vec"].dtype == np.float32
  assert paper.features["vec"].shape == (3, 3)
  np.testing.assert_array_equal(paper.features["vec"][:2], [[1, 2, 3], [4, 5, 6]])
  assert np.isnan(paper.features["vec"][2, 2])
  assert paper.features["label"].dtype == np.int64
  assert set(paper.features) == {"year", "score", "vec", "label"}
  assert graph.label == graph_io.Label("paper", "label", 3)
  assert isinstance(graph.label.num_classes, int)
  assert graph.node_sets["author"].features == {}
  assert paper.source_file == str(tables / "papers.csv")
  assert {k: list(v) for k, v in graph.splits.items()} == {
      "train": ["007"], "eval": ["p1"], "test": ["p2"]}


def test_listed_features_and_num_classes(tables):
  spec = _spec(tables, num_classes=10, node_sets={
      "paper": {"file": "papers.csv", "label_column": "label", "features": ["vec"]},
      "author": {"file": "authors.csv"}})
  graph = ingest.tables_to_graph(spec)
  assert set(graph.node_sets["paper"].features) == {"vec", "label"}
  assert graph.label.num_classes == 10


def test_reverse_edges(tables, tmp_path):
  graph = ingest.tables_to_graph(_spec(tables))
  forward, reverse = graph.edge_sets["writes"], graph.edge_sets["written_by"]
  assert (forward.source_set, forward.target_set) == ("author", "paper")
  assert (reverse.source_set, reverse.target_set) == ("paper", "author")
  assert reverse.reverse_of == "writes" and forward.reverse_of is None
  np.testing.assert_array_equal(reverse.sources, forward.targets)
  np.testing.assert_array_equal(reverse.targets, forward.sources)
  schema = graph_io.build_schema(graph)
  extra = {kv.key: kv.value for kv in schema.edge_sets["written_by"].metadata.extra}
  assert extra["edge_type"] == "reversed"
  assert (schema.edge_sets["written_by"].metadata.filename
          == schema.edge_sets["writes"].metadata.filename)


def test_csv_gz_and_parquet(tmp_path):
  _write(tmp_path / "papers.csv.gz", "id,label,f\n1,0,0.5\n2,1,1.5\n")
  pq.write_table(pa.table({
      "id": pa.array([10, 11]),
      "emb": pa.array([[1.0, 2.0], [3.0, 4.0]], pa.list_(pa.float64())),
      "tok": pa.array([[1, 2, 3], [4, 5, 6]], pa.list_(pa.int64())),
      "txt": pa.array(["1 2", "3 4"]),
  }), tmp_path / "authors.parquet")
  _write(tmp_path / "writes.csv", "source,target\n10,1\n11,2\n")
  _write(tmp_path / "split.csv", "id,split\n1,train\n2,test\n")
  spec = _spec(tmp_path, node_sets={
      "paper": {"file": "papers.csv.gz", "label_column": "label"},
      "author": {"file": "authors.parquet"}})
  graph = ingest.tables_to_graph(spec)
  assert graph.node_sets["paper"].features["f"].tolist() == [0.5, 1.5]
  author = graph.node_sets["author"]
  assert list(author.ids) == ["10", "11"]
  assert author.features["emb"].dtype == np.float32 and author.features["emb"].shape == (2, 2)
  assert author.features["tok"].dtype == np.int64 and author.features["tok"].shape == (2, 3)
  assert author.features["txt"].tolist() == [[1, 2], [3, 4]]
  frame = ingest.read_table(str(tmp_path / "authors.parquet"))
  assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["id", "emb", "tok", "txt"]
  assert ingest.read_table(str(tmp_path / "papers.csv.gz")).shape == (2, 3)


# ---------------------------------------------------------------- errors
def test_ragged_vector_row_names_file_line_and_lengths(tables):
  path = _write(tables / "papers.csv",
                "id,label,vec\na,0,1 2 3\nb,1,1 2 3\nc,1,1 2\nd,0,4 5 6\n")
  with pytest.raises(ingest.IngestError) as e:
    ingest.tables_to_graph(_spec(tables))
  assert path in _message(e)
  assert "'vec'" in _message(e) and "line 4" in _message(e)
  assert "2 values" in _message(e) and "3 at line 2" in _message(e)


def test_ragged_parquet_list_names_row(tmp_path):
  pq.write_table(pa.table({"id": ["a", "b"], "label": [0, 1],
                           "emb": [[1.0, 2.0], [3.0]]}), tmp_path / "papers.parquet")
  spec = _spec(tmp_path, edge_sets={}, node_sets={"paper": {"file": "papers.parquet",
                                                            "label_column": "label"}})
  with pytest.raises(ingest.IngestError, match=r"papers.parquet: column 'emb' has 1 values "
                     r"at row 2 but 2 at row 1"):
    ingest.tables_to_graph(spec)


def test_missing_column_names_file_column_and_columns(tables):
  spec = _spec(tables, node_sets={
      "paper": {"file": "papers.csv", "label_column": "category"},
      "author": {"file": "authors.csv"}})
  with pytest.raises(ingest.IngestError) as e:
    ingest.tables_to_graph(spec)
  assert str(tables / "papers.csv") in _message(e)
  assert "'category'" in _message(e)
  assert "id, label, year, score, vec" in _message(e)


def test_malformed_row_names_line(tables):
  path = _write(tables / "writes.csv", "source,target\na,007\nb,p1,extra\nb,p2\n")
  with pytest.raises(ingest.IngestError) as e:
    ingest.tables_to_graph(_spec(tables))
  assert f"{path}: line 3 has 3 fields, expected 2" in _message(e)


def test_empty_and_missing_files(tables):
  path = _write(tables / "authors.csv", "")
  with pytest.raises(ingest.IngestError, match=f"{path}: the file is empty"):
    ingest.tables_to_graph(_spec(tables))
  os.remove(path)
  with pytest.raises(ingest.IngestError, match=f"{path}: file not found"):
    ingest.tables_to_graph(_spec(tables))
  with pytest.raises(ingest.IngestError, match="empty"):
    ingest.read_table(_write(tables / "empty.csv.gz", ""))


def test_non_numeric_column(tables):
  path = _write(tables / "authors.csv", "id,name\na,Ada Lovelace\nb,Alan Turing\n")
  with pytest.raises(ingest.IngestError) as e:
    ingest.tables_to_graph(_spec(tables))
  assert path in _message(e) and "column 'name' is not numeric" in _message(e)
  assert "'Ada' at line 2" in _message(e)


def test_edge_set_with_unknown_node_set(tables):
  spec = _spec(tables, edge_sets={"writes": {"file": "writes.csv", "source": "person",
                                             "target": "paper"}})
  with pytest.raises(ingest.IngestError, match="edge set 'writes': source node set 'person' "
                     "is not defined"):
    ingest.tables_to_graph(spec)


def test_ambiguous_label_node_set(tables):
  _write(tables / "authors.csv", "id,label\na,0\nb,1\n")
  spec = _spec(tables, node_sets={
      "paper": {"file": "papers.csv", "label_column": "label"},
      "author": {"file": "authors.csv", "label_column": "label"}})
  with pytest.raises(ingest.IngestError, match="set label_node_set"):
    ingest.tables_to_graph(spec)
  graph = ingest.tables_to_graph(spec.model_copy(update={"label_node_set": "paper"}))
  assert graph.label.node_set == "paper"


def test_graph_without_labels_has_no_label_and_no_splits(tables):
  """For link prediction: no label_column anywhere, no splits (the links are split)."""
  node_sets = {"paper": {"file": "papers.csv"}, "author": {"file": "authors.csv"}}
  graph = ingest.tables_to_graph(_spec(tables, node_sets=node_sets, splits=None))
  assert graph.label is None and graph.splits == {}
  assert "label" in graph.node_sets["paper"].features  # an unnamed label is just a column
  with pytest.raises(ingest.IngestError, match="data.tables.splits: splits are of the "
                                               "labelled node set's nodes"):
    ingest.tables_to_graph(_spec(tables, node_sets=node_sets))
  with pytest.raises(ingest.IngestError, match="data.tables.splits: required with a "
                                               "labelled node set \\('paper'"):
    ingest.tables_to_graph(_spec(tables, splits=None))


def test_missing_label(tables):
  path = _write(tables / "papers.csv", "id,label\na,0\nb,\n")
  with pytest.raises(ingest.IngestError, match=f"{path}: label 'label' at line 3 is empty"):
    ingest.tables_to_graph(_spec(tables))


# ---------------------------------------------------------------- splits
def test_bad_split_value(tables):
  path = _write(tables / "split.csv", "id,split\n007,train\np1,holdout\n")
  with pytest.raises(ingest.IngestError) as e:
    ingest.tables_to_graph(_spec(tables))
  assert f"{path}: line 3: split 'holdout' is not one of train" in _message(e)


def test_split_with_unknown_or_duplicate_id(tables):
  split = config_lib.SplitTable(file="split.csv")
  ids = np.array(["007", "p1", "p2"], dtype=object)
  _write(tables / "split.csv", "id,split\n007,train\nzz,test\n")
  with pytest.raises(ingest.IngestError, match="line 3: id 'zz' is not a node"):
    ingest.make_splits(split, ids, str(tables))
  _write(tables / "split.csv", "id,split\n007,train\np1,eval\n007,test\n")
  with pytest.raises(ingest.IngestError, match="'007' is listed twice"):
    ingest.make_splits(split, ids, str(tables))


def test_ratio_splits_are_deterministic():
  ids = np.array([f"n{i}" for i in range(1000)], dtype=object)
  split = config_lib.SplitTable(ratios={"train": 0.6, "eval": 0.2, "test": 0.2}, seed=3)
  first = ingest.make_splits(split, ids, ".")
  again = ingest.make_splits(split, ids, ".")
  other = ingest.make_splits(split.model_copy(update={"seed": 4}), ids, ".")
  assert list(first) == ["train", "eval", "test"]
  assert [len(v) for v in first.values()] == [600, 200, 200]
  for name in first:
    np.testing.assert_array_equal(first[name], again[name])
  assert not np.array_equal(first["train"], other["train"])
  assert sorted(np.concatenate(list(first.values()))) == sorted(ids)
  only_two = ingest.make_splits(
      config_lib.SplitTable(ratios={"train": 0.5, "test": 0.5}), ids, ".")
  assert [len(v) for v in only_two.values()] == [500, 0, 500]


# ---------------------------------------------------------------- unigraph and dispatch
def test_unigraph_csv_with_reversed_edges(tmp_path):
  _write(tmp_path / "paper.csv", "id,year,label\np0,2001,0\np1,2002,1\np2,2003,1\n")
  _write(tmp_path / "author.csv", "id\na0\na1\n")
  _write(tmp_path / "writes.csv", "source,target\na0,p0\na1,p1\na1,p2\n")
  _write(tmp_path / "split.csv", "id,split\np0,train\np1,validation\np2,test\n")
  _write(tmp_path / "graph.pbtxt", """
node_sets { key: "paper" value {
  features { key: "year" value { dtype: DT_INT64 } }
  features { key: "label" value { dtype: DT_INT64 } }
  metadata { filename: "paper.csv" } } }
node_sets { key: "author" value { metadata { filename: "author.csv" } } }
edge_sets { key: "writes" value { source: "author" target: "paper"
  metadata { filename: "writes.csv" } } }
edge_sets { key: "written" value { source: "paper" target: "author"
  metadata { filename: "writes.csv" extra { key: "edge_type" value: "reversed" } } } }
""")
  spec = config_lib.UnigraphSource(schema_file=str(tmp_path / "graph.pbtxt"),
                                   label_node_set="paper", splits={"file": "split.csv"})
  graph = ingest.unigraph_to_graph(spec)
  assert list(graph.node_sets["paper"].ids) == ["p0", "p1", "p2"]
  assert graph.node_sets["paper"].features["year"].tolist() == [2001, 2002, 2003]
  assert graph.label == graph_io.Label("paper", "label", 2)
  written = graph.edge_sets["written"]
  assert written.reverse_of == "writes"
  assert list(written.sources) == ["p0", "p1", "p2"]
  assert list(written.targets) == ["a0", "a1", "a1"]
  assert {k: list(v) for k, v in graph.splits.items()} == {
      "train": ["p0"], "eval": ["p1"], "test": ["p2"]}
  bad = spec.model_copy(update={"label_feature": "class"})
  with pytest.raises(ingest.IngestError, match="no feature 'class' .features: label, year"):
    ingest.unigraph_to_graph(bad)


def test_ingest_synthetic_dispatch(tmp_path, monkeypatch):
  def generate_tables(directory, num_papers, num_classes, feature_dim, seed):
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = "".join(f"{i},{i % num_classes},{' '.join(map(str, rng.random(feature_dim)))}\n"
                   for i in range(num_papers))
    _write(os.path.join(directory, "paper.csv"), "id,label,feat\n" + rows)
    _write(os.path.join(directory, "cites.csv"),
           "source,target\n" + "".join(f"{i},{i + 1}\n" for i in range(num_papers - 1)))
    return {"directory": directory,
            "node_sets": {"paper": {"file": "paper.csv", "label_column": "label"}},
            "edge_sets": {"cites": {"file": "cites.csv", "source": "paper",
                                    "target": "paper"}},
            "splits": {"ratios": {"train": 0.5, "eval": 0.25, "test": 0.25}, "seed": seed}}

  monkeypatch.setitem(sys.modules, "tfx_gnn.components.graph_ingest.synthetic",
                      types.SimpleNamespace(generate_tables=generate_tables))
  data = {"synthetic": {"num_papers": 40, "num_classes": 4, "feature_dim": 5, "seed": 1}}
  graph = ingest.ingest(data, str(tmp_path / "graph"), str(tmp_path / "scratch"))
  assert graph.node_sets["paper"].features["feat"].shape == (40, 5)
  assert graph.label.num_classes == 4
  assert graph_io.read_graph(str(tmp_path / "graph")).counts() == graph.counts()


# ---------------------------------------------------------------- the real data sets
def _data_config(name: str) -> config_lib.DataConfig:
  """The `data` section of pipelines/configs/NAME.yaml, paths resolved as the loader does."""
  path = os.path.join(CONFIGS, f"{name}.yaml")
  with open(path) as f:
    raw = yaml.safe_load(f)
  raw.setdefault("sampling", {"fanouts": {"unused": 1}})  # the section is not ours to test
  return config_lib.parse_config(raw, path, CONFIGS).data


@pytest.fixture(scope="module")
def cora():
  if not os.path.isdir(CORA_DIR):
    pytest.skip(f"Cora is not at {CORA_DIR}")
  return ingest.tables_to_graph(_data_config("cora").tables)


@pytest.fixture(scope="module")
def cora_dir(cora, tmp_path_factory):
  graph_dir = str(tmp_path_factory.mktemp("cora_graph"))
  graph_io.write_graph(cora, graph_dir)
  return graph_dir


def test_cora_counts(cora):
  assert cora.counts() == {
      "node_sets": {"paper": 2708},
      "edge_sets": {"cites": 2 * 5278},  # undirected: both directions in one set
      "splits": {"train": 140, "eval": 500, "test": 1000},
  }
  features = cora.node_sets["paper"].features
  assert features["features"].shape == (2708, 1433)
  assert features["features"].dtype == np.float32
  assert features["features"].sum() == 49216  # the README's nonzeros (binary features)
  assert np.bincount(features["label"]).tolist() == [351, 217, 418, 818, 426, 298, 180]
  assert cora.label == graph_io.Label("paper", "label", 7)
  degree = features["degree"]  # the config's degree_feature: full-graph degrees
  assert degree.sum() == 2 * 5278 and degree.max() == 168 and degree.min() >= 1
  assert list(cora.splits["train"]) == [str(i) for i in range(140)]


def test_cora_round_trip(cora, cora_dir):
  back = graph_io.read_graph(cora_dir)
  assert back.label == cora.label
  assert back.counts() == cora.counts()
  for name, node_set in cora.node_sets.items():
    np.testing.assert_array_equal(back.node_sets[name].ids, node_set.ids)
    assert back.node_sets[name].features.keys() == node_set.features.keys()
    for fname, values in node_set.features.items():
      assert back.node_sets[name].features[fname].dtype == values.dtype
      np.testing.assert_array_equal(back.node_sets[name].features[fname], values)
  for name, edge_set in cora.edge_sets.items():
    other = back.edge_sets[name]
    assert (other.source_set, other.target_set, other.reverse_of) == (
        edge_set.source_set, edge_set.target_set, edge_set.reverse_of)
    np.testing.assert_array_equal(other.sources, edge_set.sources)
    np.testing.assert_array_equal(other.targets, edge_set.targets)
  for split, ids in cora.splits.items():
    np.testing.assert_array_equal(back.splits[split], ids)


def test_cora_dir_readable_by_tfgnn(cora, cora_dir):
  import tensorflow_gnn as tfgnn
  from tensorflow_gnn.data import unigraph
  schema = unigraph.read_schema(os.path.join(cora_dir, graph_io.SCHEMA_FILE))
  tfgnn.validate_schema(schema)
  streams = unigraph.DictStreams.iter_graph_via_schema(schema)
  papers = list(streams[tfgnn.NODES]["paper"])
  assert len(papers) == 2708
  node_id, example = papers[5]
  assert node_id == b"5"
  assert len(example.features.feature["features"].float_list.value) == 1433
  cites = list(streams[tfgnn.EDGES]["cites"])
  assert len(cites) == 2 * 5278  # each citation in both directions
  assert (cites[0][0], cites[0][1]) == (cites[5278][1], cites[5278][0])
  # Re-ingesting the written unigraph gives the same graph.
  again = ingest.unigraph_to_graph(config_lib.UnigraphSource(
      schema_file=os.path.join(cora_dir, graph_io.SCHEMA_FILE), label_node_set="paper",
      splits={"file": os.path.join(CORA_DIR, "split.csv")}))
  assert again.counts() == cora.counts() and again.label == cora.label
  np.testing.assert_array_equal(again.node_sets["paper"].features["features"],
                                cora.node_sets["paper"].features["features"])


def test_acm():
  if not os.path.isdir(ACM_DIR):
    pytest.skip(f"the ACM data set is not at {ACM_DIR} (../shared/data/acm from the repo)")
  graph = ingest.tables_to_graph(_data_config("acm").tables)
  assert graph.counts() == {
      "node_sets": {"paper": 4019, "author": 7167, "subject": 60},
      "edge_sets": {"written_by": 13407, "writes": 13407, "has_subject": 4019,
                    "subject_of": 4019},
      "splits": {"train": 60, "eval": 1000, "test": 1000},
  }
  paper = graph.node_sets["paper"]
  assert paper.features["features"].shape == (4019, 1902)
  assert paper.features["features"].sum() == 340377
  assert np.bincount(paper.features["label"]).tolist() == [1993, 965, 1061]
  assert graph.label == graph_io.Label("paper", "label", 3)
  assert graph.node_sets["author"].features == {} == graph.node_sets["subject"].features
  assert graph.edge_sets["writes"].source_set == "author"
  assert graph.edge_sets["subject_of"].reverse_of == "has_subject"


def test_undirected_edges_and_degree_feature(tables):
  _write(tables / "cites.csv", "source,target\n007,p1\n007,p2\n")
  spec = _spec(tables, edge_sets={"cites": {
      "file": "cites.csv", "source": "paper", "target": "paper", "undirected": True,
      "degree_feature": "degree"}})
  graph = ingest.tables_to_graph(spec)
  cites = graph.edge_sets["cites"]
  assert sorted(zip(cites.sources, cites.targets)) == [
      ("007", "p1"), ("007", "p2"), ("p1", "007"), ("p2", "007")]
  papers = graph.node_sets["paper"]
  assert papers.features["degree"].tolist() == [2.0, 1.0, 1.0]  # ids 007, p1, p2
  with pytest.raises(ingest.IngestError, match="degree_feature 'year' is already a feature"):
    ingest.tables_to_graph(_spec(tables, edge_sets={"cites": {
        "file": "cites.csv", "source": "paper", "target": "paper", "degree_feature": "year"}}))
  with pytest.raises(Exception, match="undirected needs one node set at both ends"):
    _spec(tables, edge_sets={"writes": {"file": "writes.csv", "source": "author",
                                        "target": "paper", "undirected": True}})
