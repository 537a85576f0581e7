"""GraphValidator logic on small hand-built graphs (no TFX)."""
import os
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import pytest

from tfx_gnn.components import graph_io
from tfx_gnn.components.graph_validator import validation as v
from tfx_gnn.pipelines.config import ValidationConfig


def _ids(*names):
  return np.array(names, dtype=object)


def make_graph() -> graph_io.Graph:
  """A clean graph whose degrees are known.

  papers p0..p3 (3 classes), authors a0..a2;
  cites:   p0->p1, p0->p2, p1->p2, p3->p0           (out: 2,1,0,1  in: 1,1,2,0)
  writes:  a0->p0, a0->p1, a1->p2, a2->p3, a2->p0   (out: 2,1,2    in: 2,1,1,1)
  written: writes reversed.
  """
  paper = graph_io.NodeSet(
      _ids("p0", "p1", "p2", "p3"),
      {"feat": np.arange(8, dtype=np.float32).reshape(4, 2),
       "year": np.array([2000, 2001, 2002, 2003], dtype=np.int64),
       "label": np.array([0, 1, 2, 1], dtype=np.int64)},
      source_file="papers.csv")
  author = graph_io.NodeSet(_ids("a0", "a1", "a2"), {}, source_file="authors.csv")
  cites = graph_io.EdgeSet("paper", "paper", _ids("p0", "p0", "p1", "p3"),
                           _ids("p1", "p2", "p2", "p0"),
                           {"weight": np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)},
                           source_file="cites.csv")
  writes = graph_io.EdgeSet("author", "paper", _ids("a0", "a0", "a1", "a2", "a2"),
                            _ids("p0", "p1", "p2", "p3", "p0"), source_file="writes.csv")
  written = graph_io.EdgeSet("paper", "author", writes.targets, writes.sources,
                             source_file="writes.csv", reverse_of="writes")
  return graph_io.Graph(
      {"paper": paper, "author": author},
      {"cites": cites, "writes": writes, "written": written},
      {"train": _ids("p0", "p1"), "eval": _ids("p2"), "test": _ids("p3")},
      graph_io.Label("paper", "label", 3))


def anomalies(graph, config=None, schema="build"):
  if schema == "build":
    schema = graph_io.build_schema(graph)
  return v.find_anomalies(graph, schema, config or ValidationConfig())


def only(found, kind):
  """The single anomaly of `kind`, asserting there is exactly one."""
  matching = [a for a in found if a.kind == kind]
  assert len(matching) == 1, v.format_report(found)
  return matching[0]


def assert_names(anomaly, *words):
  for word in words:
    assert word in anomaly.message, (word, anomaly.message)
  report = v.format_report([anomaly])
  for word in words:
    assert word in report, (word, report)


def with_edges(graph, name, sources, targets, **features):
  edge_set = graph.edge_sets[name]
  edge_set.sources = np.concatenate([edge_set.sources, _ids(*sources)])
  edge_set.targets = np.concatenate([edge_set.targets, _ids(*targets)])
  for fname, values in features.items():
    edge_set.features[fname] = np.concatenate(
        [edge_set.features[fname], np.asarray(values, edge_set.features[fname].dtype)])
  return graph


# ---------------------------------------------------------------- clean graph
def test_clean_graph_has_no_anomalies():
  graph = make_graph()
  found = anomalies(graph, ValidationConfig(allow_self_loops=False, allow_duplicate_edges=False,
                                            max_isolated_fraction=0.0))
  assert found == [], v.format_report(found)
  v.check(found)  # does not raise
  assert v.format_report(found) == "Graph validation found no anomalies."


def test_validate_shares_work_and_matches():
  graph = make_graph()
  stats, found = v.validate(graph, graph_io.build_schema(graph))
  assert found == []
  assert stats == v.compute_statistics(graph)


# ---------------------------------------------------------------- referential integrity
def test_dangling_target_names_edge_set_file_rows_and_ids():
  graph = with_edges(make_graph(), "cites", ["p1", "p2", "p0"], ["p99", "p98", "p99"],
                     weight=[1, 1, 1])
  a = only(anomalies(graph), v.DANGLING_EDGE)
  assert a.set_name == "cites" and a.file == "cites.csv" and a.count == 3
  assert a.examples == [{"row": 4, "id": "p99"}, {"row": 5, "id": "p98"},
                        {"row": 6, "id": "p99"}]
  assert_names(a, "'cites'", "cites.csv", "target", "'paper'", "row 4: 'p99'", "row 5: 'p98'",
               "2 distinct ids")


def test_dangling_source_in_forward_set_is_not_repeated_for_its_reverse():
  graph = make_graph()
  graph.edge_sets["writes"].sources[1] = "a7"  # `written` shares this array as its targets
  found = anomalies(graph)
  a = only(found, v.DANGLING_EDGE)
  assert a.set_name == "writes" and a.count == 1
  assert_names(a, "'writes'", "writes.csv", "source", "'author'", "row 1: 'a7'")


def test_dangling_examples_are_capped_but_counted():
  graph = make_graph()
  n = 25
  graph = with_edges(graph, "cites", ["p0"] * n, [f"x{i}" for i in range(n)], weight=[0] * n)
  a = only(anomalies(graph), v.DANGLING_EDGE)
  assert a.count == n and len(a.examples) == v.MAX_EXAMPLES
  assert "(15 more)" in a.message


def test_unknown_node_set():
  graph = make_graph()
  graph.edge_sets["cites"].target_set = "venue"
  found = anomalies(graph, schema=None)
  assert_names(only(found, v.UNKNOWN_NODE_SET), "'cites'", "cites.csv", "'venue'")
  assert not [a for a in found if a.kind == v.DANGLING_EDGE]


# ---------------------------------------------------------------- node sets
def test_duplicate_node_ids():
  graph = make_graph()
  graph.node_sets["author"].ids = _ids("a0", "a1", "a0", "a2", "a1", "a0")
  a = only(anomalies(graph, schema=None), v.DUPLICATE_NODE_ID)
  assert a.set_name == "author" and a.file == "authors.csv" and a.count == 2
  assert a.examples == [{"id": "a0", "rows": [0, 2, 5]}, {"id": "a1", "rows": [1, 4]}]
  assert_names(a, "'author'", "authors.csv", "'a0' at rows [0, 2, 5]", "'a1' at rows [1, 4]",
               "3 extra rows")


def test_nan_and_inf_node_feature():
  graph = make_graph()
  graph.node_sets["paper"].features["feat"][1, 0] = np.nan
  graph.node_sets["paper"].features["feat"][3, 1] = np.inf
  a = only(anomalies(graph), v.NON_FINITE_FEATURE)
  assert a.set_name == "paper" and a.count == 2 and a.examples == ["p1", "p3"]
  assert_names(a, "'paper'", "papers.csv", "'feat'", "'p1'", "'p3'")


def test_nan_edge_feature_names_edge_rows_once_for_reversed():
  graph = make_graph()
  graph.edge_sets["writes"].features["w"] = np.array([1, 2, np.nan, 4, 5], np.float32)
  graph.edge_sets["written"].features["w"] = graph.edge_sets["writes"].features["w"]
  a = only(anomalies(graph), v.NON_FINITE_FEATURE)
  assert a.set_name == "writes" and a.examples == [{"row": 2, "source": "a1", "target": "p2"}]
  assert_names(a, "'writes'", "writes.csv", "'w'", "row 2: 'a1' -> 'p2'")


def test_empty_node_set_and_edge_set():
  graph = make_graph()
  graph.node_sets["venue"] = graph_io.NodeSet(_ids(), {}, source_file="venues.csv")
  graph.edge_sets["cites"] = graph_io.EdgeSet("paper", "paper", _ids(), _ids(),
                                              {"weight": np.zeros([0], np.float32)},
                                              source_file="cites.csv")
  found = anomalies(graph)
  assert_names(only(found, v.EMPTY_NODE_SET), "'venue'", "venues.csv", "empty")
  assert_names(only(found, v.EMPTY_EDGE_SET), "'cites'", "cites.csv", "empty")


def test_isolated_fraction_above_threshold():
  graph = make_graph()
  graph.node_sets["author"].ids = _ids("a0", "a1", "a2", "a3", "a4")  # a3, a4: no edges
  found = anomalies(graph, ValidationConfig(max_isolated_fraction=0.3), schema=None)
  a = only(found, v.ISOLATED_NODES)
  assert a.set_name == "author" and a.count == 2 and a.examples == ["a3", "a4"]
  assert_names(a, "'author'", "authors.csv", "2 of 5", "40.0%", "'a3'", "'a4'")
  assert not anomalies(graph, ValidationConfig(max_isolated_fraction=0.4), schema=None)


# ---------------------------------------------------------------- edge sets
def test_self_loops_only_when_disallowed():
  graph = with_edges(make_graph(), "cites", ["p2", "p3"], ["p2", "p1"], weight=[0, 0])
  assert anomalies(graph) == []
  a = only(anomalies(graph, ValidationConfig(allow_self_loops=False)), v.SELF_LOOP)
  assert a.count == 1 and a.examples == [{"row": 4, "source": "p2", "target": "p2"}]
  assert_names(a, "'cites'", "cites.csv", "row 4: 'p2' -> 'p2'", "allow_self_loops")


def test_same_ids_across_node_sets_are_not_self_loops():
  graph = make_graph()
  graph.node_sets["author"].ids = _ids("a0", "a1", "a2", "p0")
  graph = with_edges(graph, "writes", ["p0"], ["p0"])
  assert anomalies(graph, ValidationConfig(allow_self_loops=False)) == []


def test_duplicate_edges_only_when_disallowed():
  graph = with_edges(make_graph(), "cites", ["p0", "p1", "p0"], ["p1", "p3", "p1"],
                     weight=[0, 0, 0])
  assert anomalies(graph) == []
  a = only(anomalies(graph, ValidationConfig(allow_duplicate_edges=False)), v.DUPLICATE_EDGE)
  # Rows 4 and 6 repeat row 0 (p0 -> p1); the first copy is not reported.
  assert a.count == 2 and [e["row"] for e in a.examples] == [4, 6]
  assert_names(a, "'cites'", "cites.csv", "row 4: 'p0' -> 'p1'", "row 6: 'p0' -> 'p1'")


def test_invalid_reverse():
  graph = make_graph()
  graph.edge_sets["written"].reverse_of = "wrote"
  assert_names(only(anomalies(graph, schema=None), v.INVALID_REVERSE), "'written'", "'wrote'")
  graph = make_graph()
  graph.edge_sets["written"].target_set = "paper"
  assert_names(only(anomalies(graph, schema=None), v.INVALID_REVERSE), "'written'", "'writes'")


def test_length_mismatch_is_reported_and_row_checks_skip_the_set():
  graph = make_graph()
  graph.node_sets["paper"].features["feat"] = np.zeros([3, 2], np.float32)
  a = only(anomalies(graph, schema=None), v.LENGTH_MISMATCH)
  assert_names(a, "'paper'", "papers.csv", "'feat': 3")


# ---------------------------------------------------------------- labels
def test_labels_out_of_range():
  graph = make_graph()
  graph.node_sets["paper"].features["label"] = np.array([0, 3, -1, 1])
  a = only(anomalies(graph), v.LABEL_OUT_OF_RANGE)
  assert a.count == 2 and a.examples == [{"id": "p1", "label": 3}, {"id": "p2", "label": -1}]
  assert_names(a, "'paper'", "papers.csv", "[0, 3)", "'p1' = 3", "'p2' = -1")


def test_labels_outside_splits_are_not_checked():
  graph = make_graph()
  graph.node_sets["paper"].features["label"] = np.array([0, 1, 2, -1])  # p3: no label
  graph.splits["test"] = _ids()
  assert anomalies(graph) == []


def test_labels_missing():
  graph = make_graph()
  graph.node_sets["paper"].features["label"] = np.array([0, np.nan, 2, 1.5])
  found = anomalies(graph)
  assert_names(only(found, v.LABEL_MISSING), "'paper'", "papers.csv", "NaN", "'p1'")
  assert_names(only(found, v.LABEL_OUT_OF_RANGE), "'p3' = 1.5")
  graph = make_graph()
  del graph.node_sets["paper"].features["label"]
  assert_names(only(anomalies(graph), v.LABEL_MISSING), "'paper'", "papers.csv", "'label'")
  graph = make_graph()
  graph.label = graph_io.Label("venue", "label", 3)
  assert_names(only(anomalies(graph), v.LABEL_MISSING), "'venue'")


def test_label_invalid():
  graph = make_graph()
  graph.node_sets["paper"].features["label"] = _ids("a", "b", "c", "d")
  assert_names(only(anomalies(graph), v.LABEL_INVALID), "'paper'", "papers.csv", "'label'")


# ---------------------------------------------------------------- splits
def test_split_ids_not_in_label_node_set():
  graph = make_graph()
  graph.splits["eval"] = _ids("p2", "a0", "p42")
  a = only(anomalies(graph), v.SPLIT_UNKNOWN_IDS)
  assert a.set_name == "eval" and a.file == "seeds/eval.csv" and a.count == 2
  assert_names(a, "'eval'", "seeds/eval.csv", "'paper'", "row 1: 'a0'", "row 2: 'p42'")


def test_overlapping_and_duplicate_split_ids():
  graph = make_graph()
  graph.splits["test"] = _ids("p3", "p1", "p0", "p3")
  found = anomalies(graph)
  overlap = only(found, v.SPLIT_OVERLAP)
  assert overlap.set_name == "train/test" and overlap.count == 2
  assert_names(overlap, "'train'", "'test'", "seeds/train.csv", "seeds/test.csv", "'p1'", "'p0'")
  assert_names(only(found, v.SPLIT_DUPLICATE_IDS), "'test'", "seeds/test.csv", "'p3'")


def test_empty_or_missing_train_split():
  graph = make_graph()
  graph.splits["train"] = _ids()
  assert_names(only(anomalies(graph), v.SPLIT_EMPTY_TRAIN), "seeds/train.csv", "empty")
  del graph.splits["train"]
  assert_names(only(anomalies(graph), v.SPLIT_EMPTY_TRAIN), "missing")


# ---------------------------------------------------------------- schema
def test_schema_invalid_from_tfgnn():
  graph = make_graph()
  schema = graph_io.build_schema(graph)
  schema.node_sets["paper"].features["feat"].shape.unknown_rank = True
  a = only(anomalies(graph, schema=schema), v.SCHEMA_INVALID)
  assert a.file == graph_io.SCHEMA_FILE
  assert_names(a, "tfgnn.validate_schema", "'paper'", "'feat'")
  with pytest.raises(v.GraphValidationError, match="schema_invalid"):
    v.check([a])


def test_schema_warning_does_not_fail_check():
  graph = make_graph()
  graph.node_sets["paper"].features["one"] = np.zeros([4, 1], np.float32)
  found = anomalies(graph)
  a = only(found, v.SCHEMA_WARNING)
  assert a.severity == v.WARNING and "'one'" in a.message
  v.check(found)  # warnings only
  assert "0 errors and 1 warning" in v.format_report(found)


def test_schema_mismatch():
  graph = make_graph()
  schema = graph_io.build_schema(graph)
  del graph.node_sets["paper"].features["year"]
  del graph.edge_sets["cites"]
  found = anomalies(graph, schema=schema)
  kinds = sorted(a.message for a in found if a.kind == v.SCHEMA_MISMATCH)
  assert len(kinds) == 2, v.format_report(found)
  assert any("'cites'" in m for m in kinds)
  assert any("'paper'" in m and "papers.csv" in m and "'year'" in m for m in kinds)


def test_check_raises_with_readable_report():
  graph = with_edges(make_graph(), "cites", ["p9"], ["p0"], weight=[0])
  graph.node_sets["paper"].features["label"] = np.array([0, 1, 2, 7])
  found = anomalies(graph)
  with pytest.raises(v.GraphValidationError) as e:
    v.check(found)
  report = str(e.value)
  assert report.startswith("Graph validation found 2 errors and 0 warnings:")
  assert "1. [error] dangling_edge" in report and "2. [error] label_out_of_range" in report
  assert "file:  cites.csv" in report and "'p9'" in report and "'p3' = 7" in report
  assert e.value.anomalies == found
  assert [v.Anomaly.from_dict(a.to_dict()) for a in found] == found


# ---------------------------------------------------------------- statistics
def test_statistics():
  graph = with_edges(make_graph(), "cites", ["p2", "p0", "p0"], ["p2", "p1", "p7"],
                     weight=[np.nan, np.inf, 5.0])
  stats = v.compute_statistics(graph)
  import json
  json.dumps(stats, allow_nan=False)  # JSON-able, no NaN

  paper = stats["node_sets"]["paper"]
  assert paper["count"] == 4 and paper["distinct_ids"] == 4
  # One histogram per component (for drift checks): feat's columns are 0,2,4,6 and 1,3,5,7.
  histograms = paper["features"]["feat"].pop("histograms")
  assert [(h["edges"][0], h["edges"][-1], sum(h["counts"])) for h in histograms] == [
      (0.0, 6.0, 4), (1.0, 7.0, 4)]
  assert paper["features"]["feat"] == {"dtype": "float32", "shape": [2], "min": 0.0,
                                       "max": 7.0, "mean": 3.5, "nan_count": 0, "inf_count": 0}
  assert paper["features"]["year"]["mean"] == 2001.5

  cites = stats["edge_sets"]["cites"]
  assert cites["count"] == 7
  # cites now p0->p1, p0->p2, p1->p2, p3->p0, p2->p2, p0->p1, p0->p7 (dangling)
  # out-degrees over p0..p3: 4, 1, 1, 1 (the dangling edge still leaves p0)
  assert cites["out_degree"] == {"min": 1, "mean": 1.75, "max": 4, "p50": 1.0,
                                 "p90": pytest.approx(3.1),
                                 "p99": pytest.approx(3.91), "isolated": 0,
                                 "histogram": {"degree": [1, 4], "nodes": [3, 1]}}
  # in-degrees: p0 1, p1 2, p2 3, p3 0
  assert cites["in_degree"]["max"] == 3 and cites["in_degree"]["isolated"] == 1
  assert cites["in_degree"]["histogram"] == {"degree": [0, 1, 2, 3], "nodes": [1, 1, 1, 1]}
  assert cites["in_degree"]["mean"] == 1.5
  assert (cites["dangling_edges"], cites["self_loops"], cites["duplicate_edges"]) == (1, 1, 1)
  weight = cites["features"]["weight"]
  assert (weight["nan_count"], weight["inf_count"], weight["max"]) == (1, 1, 5.0)

  writes, written = stats["edge_sets"]["writes"], stats["edge_sets"]["written"]
  assert writes["out_degree"]["max"] == 2 and writes["in_degree"]["isolated"] == 0
  assert written["reverse_of"] == "writes"
  assert written["out_degree"] == writes["in_degree"]
  assert written["in_degree"] == writes["out_degree"]

  assert stats["label"]["histogram"] == {"0": 1, "1": 2, "2": 1}
  assert stats["label"]["split_histograms"] == {"train": {"0": 1, "1": 1}, "eval": {"2": 1},
                                                "test": {"1": 1}}
  assert stats["splits"] == {"train": 2, "eval": 1, "test": 1}


def test_statistics_of_empty_sets():
  graph = make_graph()
  graph.node_sets["venue"] = graph_io.NodeSet(_ids(), {"x": np.zeros([0, 3], np.float32)})
  graph.edge_sets["at"] = graph_io.EdgeSet("paper", "venue", _ids(), _ids())
  stats = v.compute_statistics(graph)
  assert stats["node_sets"]["venue"]["features"]["x"]["min"] is None
  assert stats["edge_sets"]["at"]["in_degree"]["max"] is None
  assert stats["edge_sets"]["at"]["out_degree"]["isolated"] == 4


# ---------------------------------------------------------------- through graph_io
def test_round_trip_through_unigraph_directory(tmp_path):
  graph = make_graph()
  graph.splits["eval"] = _ids("p2", "p42")  # survives the round trip, then is reported
  graph_dir = str(tmp_path / "graph")
  graph_io.write_graph(graph, graph_dir)
  back = graph_io.read_graph(graph_dir)
  schema = graph_io.read_schema(graph_dir)

  assert set(back.node_sets) == {"paper", "author"}
  np.testing.assert_array_equal(back.node_sets["paper"].ids, graph.node_sets["paper"].ids)
  np.testing.assert_array_equal(back.node_sets["paper"].features["feat"],
                                graph.node_sets["paper"].features["feat"])
  np.testing.assert_array_equal(back.node_sets["paper"].features["label"], [0, 1, 2, 1])
  assert back.node_sets["paper"].source_file == "papers.csv"
  assert back.edge_sets["written"].reverse_of == "writes"
  np.testing.assert_array_equal(back.edge_sets["written"].sources,
                                graph.edge_sets["writes"].targets)
  assert back.label == graph.label
  assert back.counts() == graph.counts()

  found = v.find_anomalies(back, schema, ValidationConfig())
  a = only(found, v.SPLIT_UNKNOWN_IDS)
  assert_names(a, "seeds/eval.csv", "'p42'")
  assert len(found) == 1, v.format_report(found)
  assert v.compute_statistics(back)["edge_sets"] == v.compute_statistics(graph)["edge_sets"]


def test_round_trip_of_bad_data_keeps_file_names(tmp_path):
  graph = with_edges(make_graph(), "writes", ["a0"], ["p5"])
  graph.node_sets["paper"].features["feat"][0, 0] = np.nan
  graph_dir = str(tmp_path / "graph")
  graph_io.write_graph(graph, graph_dir)
  back = graph_io.read_graph(graph_dir)
  found = v.find_anomalies(back, graph_io.read_schema(graph_dir), ValidationConfig())
  assert sorted(a.kind for a in found) == [v.DANGLING_EDGE, v.NON_FINITE_FEATURE]
  assert_names(only(found, v.DANGLING_EDGE), "'writes'", "writes.csv", "row 5: 'p5'")
  assert_names(only(found, v.NON_FINITE_FEATURE), "papers.csv", "'p0'")


# ---------------------------------------------------------------- scale
def test_scale_is_vectorised():
  rng = np.random.default_rng(0)
  n, e = 100_000, 1_000_000
  ids = np.array([f"n{i}" for i in range(n)], dtype=object)
  graph = graph_io.Graph(
      {"node": graph_io.NodeSet(ids, {"x": rng.random([n, 4], dtype=np.float32)})},
      {"edge": graph_io.EdgeSet("node", "node", ids[rng.integers(0, n, e)],
                                ids[rng.integers(0, n, e)])},
      {"train": ids[:1000]})
  start = time.perf_counter()
  stats, found = v.validate(graph, None, ValidationConfig(allow_self_loops=False,
                                                          allow_duplicate_edges=False))
  elapsed = time.perf_counter() - start
  assert stats["edge_sets"]["edge"]["count"] == e
  assert {a.kind for a in found} <= {v.SELF_LOOP, v.DUPLICATE_EDGE}
  assert elapsed < 20, elapsed  # about 1 s alone on one core; the machine is shared
