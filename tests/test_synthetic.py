"""Tests of the embedded synthetic OGBN-MAG-shaped graph (components/graph_ingest/synthetic.py)."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from tfx_gnn.pipelines import config
from tfx_gnn.components.graph_ingest import synthetic

NODE_SETS = ("paper", "author", "institution", "field_of_study")
EDGE_SETS = {  # name: (source, target, reverse)
    "cites": ("paper", "paper", "cited_by"),
    "writes": ("author", "paper", "written"),
    "affiliated_with": ("author", "institution", "employs"),
    "has_topic": ("paper", "field_of_study", "topic_of"),
}


def _generate(out_dir, num_papers=300, num_classes=8, feature_dim=16, seed=0) -> dict:
  return synthetic.generate_tables(str(out_dir), num_papers=num_papers, num_classes=num_classes,
                                   feature_dim=feature_dim, seed=seed)


def _read(spec: dict, table: dict) -> pd.DataFrame:
  path = os.path.join(spec["directory"], table["file"])
  return pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)


def _file_bytes(out_dir) -> dict[str, bytes]:
  return {name: open(os.path.join(out_dir, name), "rb").read()
          for name in sorted(os.listdir(out_dir))}


def test_same_seed_gives_identical_files(tmp_path):
  _generate(tmp_path / "a", seed=3)
  _generate(tmp_path / "b", seed=3)
  a, b = _file_bytes(tmp_path / "a"), _file_bytes(tmp_path / "b")
  assert sorted(a) == sorted(synthetic.FILES.values())
  assert a == b


def test_different_seed_gives_different_graph(tmp_path):
  _generate(tmp_path / "a", seed=3)
  _generate(tmp_path / "b", seed=4)
  a, b = _file_bytes(tmp_path / "a"), _file_bytes(tmp_path / "b")
  for name in ("paper.parquet", "cites.csv.gz", "writes.csv.gz", "has_topic.csv.gz",
               "splits.csv"):
    assert a[name] != b[name], name


def test_spec_validates_as_tables_source(tmp_path):
  spec = _generate(tmp_path)
  source = config.TablesSource.model_validate(spec)
  assert source.directory == str(tmp_path)
  assert set(source.node_sets) == set(NODE_SETS)
  assert source.label_node_set == "paper" and source.num_classes == 8
  assert source.node_sets["paper"].label_column == "label"
  assert source.node_sets["paper"].features == ["feat"]
  for name, (src, tgt, reverse) in EDGE_SETS.items():
    edge = source.edge_sets[name]
    assert (edge.source, edge.target, edge.reverse) == (src, tgt, reverse)
  assert set(source.edge_sets) == set(EDGE_SETS)
  assert source.splits.file and os.path.exists(os.path.join(tmp_path, source.splits.file))
  # ...and inside a whole run config.
  config.parse_config({"data": {"tables": spec}, "sampling": {"fanouts": {"cites": 4}}})


def test_sizes_endpoints_and_splits(tmp_path):
  num_papers, num_classes, dim = 500, 5, 12
  spec = _generate(tmp_path, num_papers=num_papers, num_classes=num_classes, feature_dim=dim)
  sizes = synthetic.node_set_sizes(num_papers, num_classes)
  ids = {}
  for name in NODE_SETS:
    table = _read(spec, spec["node_sets"][name])
    assert len(table) == sizes[name], name
    assert table["id"].is_unique, name
    ids[name] = set(table["id"])

  # Papers: a fixed-length float32 list feature and labels of every class.
  schema = pq.read_schema(os.path.join(tmp_path, spec["node_sets"]["paper"]["file"]))
  assert str(schema.field("feat").type) == "list<element: float>"
  papers = _read(spec, spec["node_sets"]["paper"])
  assert set(papers.columns) == {"id", "feat", "label"}
  assert {len(f) for f in papers["feat"]} == {dim}
  assert np.isfinite(np.stack(papers["feat"].to_numpy())).all()
  assert set(papers["label"]) == set(range(num_classes))
  # Other node sets have no feature columns.
  for name in ("author", "institution", "field_of_study"):
    assert list(_read(spec, spec["node_sets"][name]).columns) == ["id"]

  degrees = {}
  for name, table in spec["edge_sets"].items():
    edges = _read(spec, table)
    src, tgt = edges[table["source_column"]], edges[table["target_column"]]
    assert len(edges) > 0, name
    assert set(src) <= ids[table["source"]], f"{name}: unknown source ids"
    assert set(tgt) <= ids[table["target"]], f"{name}: unknown target ids"
    assert not edges.duplicated().any(), f"{name}: duplicate edges"
    degrees[name] = (src.value_counts(), tgt.value_counts())
  cites = _read(spec, spec["edge_sets"]["cites"])
  assert not (cites["src"] == cites["dst"]).any(), "cites has self-loops"
  # No orphans where MAG has none.
  assert len(degrees["writes"][0]) == sizes["author"], "an author wrote no paper"
  assert len(degrees["has_topic"][0]) == num_papers, "a paper has no field of study"
  assert len(degrees["has_topic"][1]) == sizes["field_of_study"], "a field has no paper"
  assert len(degrees["affiliated_with"][1]) == sizes["institution"], "an institution is empty"

  splits = pd.read_csv(os.path.join(tmp_path, spec["splits"]["file"]))
  assert list(splits.columns) == ["id", "split"]
  assert sorted(splits["id"]) == sorted(ids["paper"])
  counts = splits["split"].value_counts()
  assert set(counts.index) == {"train", "valid", "test"}
  assert counts.to_dict() == {"train": 300, "valid": 100, "test": 100}


def test_sizes_scale_like_ogbn_mag():
  sizes = synthetic.node_set_sizes(synthetic.MAG_PAPERS, 349)
  assert sizes == {"paper": 736_389, "author": 1_134_649, "institution": 8_740,
                   "field_of_study": 59_965}
  small = synthetic.node_set_sizes(20_000, 8)
  assert small["author"] == 30_817 and small["institution"] == 237
  # Tiny graphs keep a few nodes of each class in every node set.
  tiny = synthetic.node_set_sizes(200, 8)
  assert tiny["institution"] >= 16 and tiny["field_of_study"] >= 16


def test_tiny_graph_is_complete(tmp_path):
  spec = _generate(tmp_path, num_papers=200)
  config.TablesSource.model_validate(spec)
  splits = pd.read_csv(os.path.join(tmp_path, spec["splits"]["file"]))
  labels = _read(spec, spec["node_sets"]["paper"])["label"].to_numpy()
  for split in ("train", "valid", "test"):
    # Every class appears in training; every split is non-empty.
    assert (splits["split"] == split).sum() > 0
  assert set(labels[splits["split"] == "train"]) == set(range(8))


def test_too_few_papers_is_a_clear_error(tmp_path):
  with pytest.raises(ValueError, match="num_papers must be >="):
    _generate(tmp_path, num_papers=10)


def test_informative_features():
  assert synthetic.informative_features(32) == [0, 4, 8, 12, 16, 20, 24, 28]
  assert synthetic.informative_features(1) == [0]
  assert synthetic.noise_features(8) == [1, 2, 3, 5, 6, 7]


# ---------------------------------------------------------------- learnability
@pytest.fixture(scope="module")
def learning_data(tmp_path_factory):
  """Features, labels and train/test masks of a 2,000-paper graph (32-d features)."""
  spec = _generate(tmp_path_factory.mktemp("learn"), num_papers=2000, feature_dim=32, seed=0)
  papers = _read(spec, spec["node_sets"]["paper"])
  n = len(papers)
  assert (papers["id"].to_numpy() == np.arange(n)).all()
  x = np.stack(papers["feat"].to_numpy())
  y = papers["label"].to_numpy()
  cites = _read(spec, spec["edge_sets"]["cites"])
  adj = sp.csr_matrix((np.ones(len(cites)), (cites["src"], cites["dst"])), shape=(n, n))
  adj = adj + adj.T  # cited and citing papers alike
  degree = np.maximum(np.asarray(adj.sum(axis=1)).ravel(), 1)
  neighbour_mean = sp.diags(1.0 / degree) @ adj @ x
  topics = _read(spec, spec["edge_sets"]["has_topic"])
  num_fields = synthetic.node_set_sizes(n, 8)["field_of_study"]
  topic_hot = sp.csr_matrix((np.ones(len(topics)), (topics["paper"], topics["field"])),
                            shape=(n, num_fields))
  split = pd.read_csv(os.path.join(spec["directory"], spec["splits"]["file"]))
  split = split.set_index("id").loc[np.arange(n), "split"].to_numpy()
  with_neighbourhood = sp.hstack([sp.csr_matrix(x), sp.csr_matrix(neighbour_mean),
                                  topic_hot]).tocsr()
  return x, with_neighbourhood, y, split == "train", split == "test"


def _accuracy(features, y, train, test) -> float:
  model = LogisticRegression(max_iter=500).fit(features[train], y[train])
  return float(model.score(features[test], y[test]))


def test_neighbourhood_beats_own_features(learning_data):
  x, with_neighbourhood, y, train, test = learning_data
  own = _accuracy(x, y, train, test)
  neighbourhood = _accuracy(with_neighbourhood, y, train, test)
  message = f"own features: {own:.3f}, with neighbourhood: {neighbourhood:.3f}"
  assert own > 1.5 / 8, "own features carry no class signal; " + message
  assert neighbourhood - own >= 0.15, message
  assert neighbourhood >= 0.65, message


def test_only_planted_features_carry_signal(learning_data):
  x, _, y, train, test = learning_data
  planted = synthetic.informative_features(x.shape[1])
  noise = synthetic.noise_features(x.shape[1])
  majority = np.bincount(y[test]).max() / test.sum()
  on_planted = _accuracy(x[:, planted], y, train, test)
  on_noise = _accuracy(x[:, noise], y, train, test)
  message = f"planted: {on_planted:.3f}, noise: {on_noise:.3f}, majority: {majority:.3f}"
  assert on_noise < majority + 0.05, message
  assert on_planted > on_noise + 0.1, message


@pytest.mark.parametrize("signal_hops", [2, 4])
def test_author_venue_graph_hides_the_signal_where_it_says(tmp_path, signal_hops):
  """Labels on featureless authors; with 4 signal hops venues have no features either, so the
  class shows only through the venue's other papers. The rule's accuracy per split averages
  to its accuracy over all authors, and is a ceiling well above chance (4 classes)."""
  from tfx_gnn.components.graph_ingest.config import TablesSource
  tables, rule, by_split = synthetic.generate_author_venue_tables(
      str(tmp_path), signal_hops=signal_hops, num_authors=400, train_per_class=10)
  TablesSource.model_validate(tables)
  assert "features" not in tables["node_sets"]["author"]
  assert ("features" in tables["node_sets"]["venue"]) == (signal_hops == 2)
  splits = pd.read_csv(tmp_path / synthetic.AUTHOR_VENUE_FILES["splits"])["split"]
  assert (splits == "train").sum() == 40
  weighted = sum(by_split[s] * (splits == s).sum() for s in by_split) / len(splits)
  assert weighted == pytest.approx(rule)
  assert 0.6 < rule <= 1.0
