"""Drift between two graphs' statistics (GraphValidator's drift.py), without TFX: the
distances, the thresholds in validation.drift, and what the messages name."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import pytest

from tfx_gnn.components import graph_io
from tfx_gnn.components.graph_validator import drift
from tfx_gnn.components.graph_validator import validation as v
from tfx_gnn.components.graph_validator.config import DriftConfig


def _ids(prefix, n):
  return np.array([f"{prefix}{i}" for i in range(n)], dtype=object)


def make_graph(n=200, year_shift=0.0, feat_shift=0.0, labels=None, extra_edges=0,
               drop_feature=None, seed=0) -> graph_io.Graph:
  rng = np.random.default_rng(seed)
  features = {"year": (rng.integers(2000, 2020, n) + year_shift).astype(np.float32),
              "feat": rng.normal(0, 1, (n, 4)).astype(np.float32),
              "label": labels if labels is not None else np.arange(n) % 3}
  features["feat"][:, 2] += feat_shift  # one component of a vector feature
  if drop_feature:
    del features[drop_feature]
  paper = graph_io.NodeSet(_ids("p", n), features, source_file="papers.csv")
  src = rng.integers(0, n, 2 * n + extra_edges)
  dst = rng.integers(0, n, 2 * n + extra_edges)
  cites = graph_io.EdgeSet("paper", "paper", _ids("p", n)[src], _ids("p", n)[dst],
                           source_file="cites.csv")
  cited_by = graph_io.EdgeSet("paper", "paper", cites.targets, cites.sources,
                              source_file="cites.csv", reverse_of="cites")
  ids = _ids("p", n)
  return graph_io.Graph({"paper": paper}, {"cites": cites, "cited_by": cited_by},
                        {"train": ids[:120], "eval": ids[120:160], "test": ids[160:]},
                        graph_io.Label("paper", "label", 3))


def compare(before, after, **config):
  return drift.compare(v.compute_statistics(after), v.compute_statistics(before),
                       DriftConfig(**config))


def by_feature(comparisons):
  return {(c.set_name, c.feature): c for c in comparisons}


def test_statistics_carry_a_histogram_per_component():
  stats = v.compute_statistics(make_graph())
  year = stats["node_sets"]["paper"]["features"]["year"]
  assert len(year["histograms"]) == 1
  assert sum(year["histograms"][0]["counts"]) == 200
  assert year["histograms"][0]["edges"][0] == year["min"]
  assert len(stats["node_sets"]["paper"]["features"]["feat"]["histograms"]) == 4


def test_distances():
  assert drift.jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)
  assert drift.jensen_shannon([3, 1], [3, 1]) == 0.0
  same = {"edges": [0.0, 1.0, 2.0], "counts": [5, 5]}
  # The same distribution with other bucket edges: re-bucketed, no divergence.
  finer = {"edges": [0.0, 0.5, 1.0, 1.5, 2.0], "counts": [25, 25, 25, 25]}
  assert drift.histogram_divergence(same, finer) == pytest.approx(0.0, abs=1e-12)
  disjoint = {"edges": [10.0, 11.0], "counts": [7]}
  assert drift.histogram_divergence(same, disjoint) == pytest.approx(1.0)
  assert drift.l_infinity({"0": 50, "1": 50}, {"0": 80, "1": 20}) == pytest.approx(0.3)
  assert drift.l_infinity({"0": 1}, {"1": 1}) == pytest.approx(1.0)
  assert drift.degree_buckets({"degree": [0, 1, 2, 3, 4, 9], "nodes": [5, 4, 3, 2, 1, 1]}) == {
      "0": 5, "1": 4, "2-3": 5, "4-7": 1, "8-15": 1}


def test_the_same_graph_has_not_moved():
  comparisons = compare(make_graph(), make_graph())
  assert comparisons and not any(c.moved for c in comparisons)
  assert drift.anomalies(comparisons, DriftConfig()) == []


def test_a_shifted_feature_fails_naming_the_set_the_feature_and_the_distance():
  comparisons = compare(make_graph(), make_graph(year_shift=40))
  year = by_feature(comparisons)[("paper", "feature 'year'")]
  assert year.distance == pytest.approx(1.0) and year.exceeded
  assert year.before["mean"] + 40 == pytest.approx(year.after["mean"])
  found = drift.anomalies(comparisons, DriftConfig())
  errors = [a for a in found if a.severity == v.ERROR]
  assert len(errors) == 1 and errors[0].kind == drift.DRIFT
  message = errors[0].message
  for text in ("node set 'paper' (papers.csv)", "feature 'year' drifted",
               "Jensen-Shannon divergence 1.000", "validation.drift.feature_jensen_shannon = 0.1"):
    assert text in message, message
  with pytest.raises(v.GraphValidationError, match="feature 'year' drifted"):
    v.check(found)
  # A higher threshold makes it a warning.
  relaxed = compare(make_graph(), make_graph(year_shift=40), feature_jensen_shannon=1.0)
  assert not any(a.severity == v.ERROR for a in drift.anomalies(relaxed, DriftConfig()))


def test_one_component_of_a_vector_feature_is_named():
  comparisons = compare(make_graph(), make_graph(feat_shift=5))
  feat = by_feature(comparisons)[("paper", "feature 'feat[2]'")]
  assert feat.exceeded


def test_label_counts_and_degrees():
  labels = np.where(np.arange(200) < 150, 0, np.arange(200) % 3)
  comparisons = compare(make_graph(), make_graph(labels=labels, extra_edges=400))
  found = by_feature(comparisons)
  label = found[("paper", "label 'label'")]
  assert label.metric == "L-infinity distance" and label.exceeded
  assert label.distance == pytest.approx(max(abs(np.bincount(labels) / 200 - 1 / 3)), abs=2e-3)
  edges = found[("cites", "count")]
  assert edges.distance == pytest.approx(1.0) and edges.exceeded  # 400 -> 800 edges
  assert found[("cites", "out-degree")].distance > 0
  assert ("cited_by", "count") not in found  # a reversed set is its forward set's data
  assert found[("paper", "count")].distance == 0


def test_a_new_sample_of_the_same_distribution_stays_within_the_defaults():
  comparisons = compare(make_graph(n=2000, seed=0), make_graph(n=2000, seed=1))
  assert any(c.moved for c in comparisons)
  found = drift.anomalies(comparisons, DriftConfig())
  assert found and all(a.severity == v.WARNING and a.kind == drift.DRIFT_BELOW_THRESHOLD
                       for a in found), v.format_report(found)


def test_a_removed_feature_warns_by_default_and_fails_when_asked():
  comparisons = compare(make_graph(), make_graph(drop_feature="year"))
  removed = by_feature(comparisons)[("paper", "feature 'year'")]
  assert removed.threshold is None and "removed" in removed.metric
  warned = drift.anomalies(comparisons, DriftConfig())
  assert [a.severity for a in warned if a.kind == drift.ADDED_OR_REMOVED] == [v.WARNING]
  failed = drift.anomalies(comparisons, DriftConfig(added_or_removed="fail"))
  error, = [a for a in failed if a.severity == v.ERROR]
  assert "feature 'year' was removed" in error.message
  assert "validation.drift.added_or_removed = fail" in error.message


def test_report_lists_what_moved():
  comparisons = compare(make_graph(), make_graph(year_shift=40))
  out = drift.report(comparisons, "/base/statistics")
  assert out["baseline_statistics"] == "/base/statistics"
  assert out["compared"] == len(comparisons)
  assert [m["feature"] for m in out["moved"]] == ["feature 'year'"]
  assert out["moved"][0]["exceeded"] is True


# ---------------------------------------------------------------- the baseline's resolution
class _Store:
  """A real (in-memory) ML Metadata store with a pipeline's history written by hand."""

  def __init__(self):
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as pb
    self.pb = pb
    config = pb.ConnectionConfig()
    config.fake_database.SetInParent()
    self.store = metadata_store.MetadataStore(config)
    self.exec_type = self.store.put_execution_type(pb.ExecutionType(name="component"))

  def artifact(self, cls, **int_properties):
    a = cls()
    a.uri = f"/artifacts/{cls.__name__}/{len(self.store.get_artifacts())}"
    for key, value in int_properties.items():
      a.set_int_custom_property(key, value)
    a.type_id = self.store.put_artifact_type(a.artifact_type)
    a.state = "published"
    [a.id] = self.store.put_artifacts([a.mlmd_artifact])
    return a

  def execution(self, inputs: dict, outputs: dict, state="COMPLETE"):
    pb = self.pb
    [eid] = self.store.put_executions([pb.Execution(
        type_id=self.exec_type, last_known_state=getattr(pb.Execution, state))])
    events = []
    for kind, artifacts in ((pb.Event.INPUT, inputs), (pb.Event.OUTPUT, outputs)):
      for key, a in artifacts.items():
        event = pb.Event(artifact_id=a.id, execution_id=eid, type=kind)
        event.path.steps.add().key = key
        events.append(event)
    self.store.put_events(events)


def test_the_baseline_is_the_latest_blessed_models_graph_statistics():
  from tfx.types import standard_artifacts
  from tfx_gnn.components import types
  from tfx_gnn.pipelines import resolvers
  s = _Store()
  resolve = resolvers.LatestBlessedGraphStatisticsStrategy().resolve_artifacts
  everything = {}

  def run(graph, baseline=None, state="COMPLETE", bless=True, via_examples=False):
    """ingest -> validator -> [sampler ->] trainer -> evaluator, as the pipeline records it."""
    stats = s.artifact(types.GraphStatistics)
    s.execution({"graph": graph, **({"baseline_statistics": baseline} if baseline else {})},
                {"statistics": stats}, state)
    if state != "COMPLETE":
      return stats, None
    if via_examples:
      examples = s.artifact(standard_artifacts.Examples)
      s.execution({"graph": graph}, {"examples": examples})
      model = s.artifact(standard_artifacts.Model)
      s.execution({"examples": examples}, {"model": model})
    else:
      model = s.artifact(standard_artifacts.Model)
      s.execution({"graph": graph}, {"model": model})
    blessing = s.artifact(standard_artifacts.ModelBlessing, blessed=int(bless),
                          current_model_id=model.id)
    s.execution({"model": model}, {"blessing": blessing})
    for key, a in (("statistics", stats), ("model", model), ("model_blessing", blessing)):
      everything.setdefault(key, []).append(a)
    return stats, model

  def baseline_for(graph):
    out = resolve(s.store, {"graph": [graph], **{k: list(v) for k, v in everything.items()}})
    return [a.id for a in out["statistics"]]

  g1 = s.artifact(types.Graph)
  assert resolve(s.store, {"graph": [g1], "statistics": [], "model": [],
                           "model_blessing": []})["statistics"] == []  # a first run
  s1, _ = run(g1)
  assert baseline_for(g1) == []  # accepted with no baseline: an unchanged rerun keeps none
  g2 = s.artifact(types.Graph)
  assert baseline_for(g2) == [s1.id]  # the latest blessed model was trained on g1
  s2, _ = run(g2, baseline=s1, via_examples=True)
  assert baseline_for(g2) == [s1.id]  # accepted against s1: kept, though g2's model is blessed
  g3 = s.artifact(types.Graph)
  assert baseline_for(g3) == [s2.id]  # found through the sampler's Examples
  run(g3, baseline=s2, state="FAILED")  # drifted: not accepted
  assert baseline_for(g3) == [s2.id]  # judged against the same baseline again
  g4 = s.artifact(types.Graph)
  run(g4, baseline=s2, bless=False)  # its model was not blessed
  assert baseline_for(s.artifact(types.Graph)) == [s2.id]


def test_run_report_shows_before_and_after_of_what_moved():
  from tfx_gnn.components.run_report import report
  comparisons = compare(make_graph(), make_graph(year_shift=40, drop_feature="feat"))
  data = report.RunData(pipeline_name="p", pipeline_run_id="r2",
                        drift=drift.report(comparisons, "/base/statistics"))
  section = report.render_html(data).split('<section id="drift">')[1].split("</section>")[0]
  assert "/base/statistics" in section
  year = section.split("feature &#x27;year&#x27;")[1].split("</tr>")[0]
  assert "Jensen-Shannon divergence 1.0000" in year and "above threshold" in year
  assert "mean: 2010" in year and "mean: 2050" in year  # before, after
  assert "was removed" in section and "added/removed" in section
  first = report.render_html(report.RunData(pipeline_name="p", pipeline_run_id="r1"))
  assert "No drift check in this run" in first
