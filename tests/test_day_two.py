"""Day two of continuous training, on one small table graph that the test writes: the real
pipeline run again and again on the same root as its data changes.

The tables arrive in numbered folders (`{SPAN}/papers.csv`). Run 1 blesses and pushes span 1.
Then (a) one row of span 1 edited: ingest, validation, sampling and training run again, never
served from the cache; (b) an unchanged rerun: everything up to the trainer is cached; (c) span
2 arrives with one numeric feature shifted beyond validation.drift: the run fails at validation
naming the feature and the distance, and nothing is trained or pushed.
"""
import json
import os

import numpy as np
import pytest

import mlflow_template
from tfx_gnn.components import lineage
from tfx_gnn.pipelines import config as config_lib
from tfx_gnn.pipelines import local_runner

pytestmark = pytest.mark.slow

NUM_PAPERS = 240
UP_TO_TRAINER = ("GraphIngest", "GraphValidator", "SubgraphSampler", "GnnTrainer")


def write_tables(directory, score_shift: float = 0.0, edit_row: bool = False) -> None:
  """Papers whose label (3 classes) shows in a feature and in whom they cite; a scalar `score`
  that the label does not depend on."""
  directory.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 3, NUM_PAPERS)
  signal = labels + rng.normal(0, 0.3, NUM_PAPERS)
  scores = rng.uniform(0, 1, NUM_PAPERS) + score_shift
  if edit_row:
    scores[17] = 0.99 if scores[17] < 0.5 else 0.01  # one cell of one row, to another bucket
  lines = ["id,label,signal,score"] + [f"p{i},{labels[i]},{signal[i]:.4f},{scores[i]:.4f}"
                                       for i in range(NUM_PAPERS)]
  (directory / "papers.csv").write_text("\n".join(lines) + "\n")
  cites = ["src,dst"]
  for i in range(NUM_PAPERS):
    same = np.flatnonzero(labels == labels[i])
    for j in rng.choice(same, 3, replace=False):
      if j != i:
        cites.append(f"p{i},p{j}")
  (directory / "cites.csv").write_text("\n".join(cites) + "\n")


def day_two_config(tmp_path) -> config_lib.Config:
  return config_lib.parse_config({
      "pipeline": {"name": "day-two", "root": str(tmp_path / "run")},
      "data": {"tables": {
          "directory": str(tmp_path / "data"),
          # Tables arrive in numbered folders (TFX's span convention); the latest is read.
          "node_sets": {"paper": {"file": "{SPAN}/papers.csv", "label_column": "label"}},
          "edge_sets": {"cites": {"file": "{SPAN}/cites.csv", "source": "paper",
                                  "target": "paper",
                                  "source_column": "src", "target_column": "dst",
                                  "reverse": "cited_by"}},
          "splits": {"ratios": {"train": 0.6, "eval": 0.2, "test": 0.2}}}},
      "sampling": {"hops": 2, "fanouts": {"cites": 3, "cited_by": 3}},
      # One round of message passing: a cheaper model to trace, export and load in each run.
      "model": {"template": "mt_albis", "num_rounds": 1, "units": 16, "message_dim": 16},
      "trainer": {"epochs": 6, "batch_size": 16},
      "evaluation": {"metric": "accuracy", "lower_bound": 0.0, "max_regression": 1.0},
      # Nothing here reads attributions or bulk predictions (their own tests do).
      "attribution": {"enabled": False},
      "bulk_inference": {"enabled": False},
  })


def pushed_versions(config) -> list[str]:
  return sorted(os.listdir(config.serving_dir)) if os.path.isdir(config.serving_dir) else []


@pytest.fixture(scope="module")
def day_two(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp("day_two")
  (tmp_path / "data").mkdir()
  config = day_two_config(tmp_path)
  mlflow_template.copy_into(config)
  runs = {}
  write_tables(tmp_path / "data" / "1")
  runs["first"] = local_runner.run(config)
  write_tables(tmp_path / "data" / "1", edit_row=True)  # a fix, in place
  runs["edited"] = local_runner.run(config)
  versions_after_edit = pushed_versions(config)
  runs["unchanged"] = local_runner.run(config)
  runs["unchanged"]["serving_versions_before"] = versions_after_edit
  pushed_before = pushed_versions(config)
  write_tables(tmp_path / "data" / "2", score_shift=3, edit_row=True)  # the next span
  with pytest.raises(Exception) as failure:
    local_runner.run(config)
  store = lineage.open_store(config.metadata_path)
  runs["shifted"] = lineage.summarize(store, lineage.latest_run_id(store, config.pipeline.name))
  for name, summary in runs.items():
    print(f"run {name}: {json.dumps(summary['components'])}")
  print(f"failure: {failure.value}")
  return config, runs, str(failure.value), pushed_before


def test_first_run_blesses_and_pushes(day_two):
  config, runs, _, _ = day_two
  first = runs["first"]
  assert set(first["components"].values()) == {"COMPLETE"}, first["components"]
  assert first["blessed"] is True and first["pushed"] is True
  store = lineage.open_store(config.metadata_path)
  records = {r.component: r for r in lineage.executions(store, first["run_id"])}
  graph = records["GraphIngest"].outputs[0]
  assert "/1/papers.csv,size:" in graph.properties["input_fingerprint"]
  assert graph.properties["span"] == 1
  # No blessed model before run 1: no drift baseline, validation as on any first run.
  validator = records["GraphValidator"]
  assert "baseline_statistics" not in {ref.key for ref in validator.inputs}
  # The lineage shows what ingest read.
  text = lineage.format_lineage(list(records.values()))
  assert "input_fingerprint file:" in text and "papers.csv" in text


def test_an_edited_row_is_never_served_from_the_cache(day_two):
  config, runs, _, _ = day_two
  edited = runs["edited"]
  for component in UP_TO_TRAINER:
    assert edited["components"][component] == "COMPLETE", edited["components"]
  store = lineage.open_store(config.metadata_path)
  records = {r.component: r for r in lineage.executions(store, edited["run_id"])}
  first = {r.component: r for r in lineage.executions(store, runs["first"]["run_id"])}
  assert (records["GraphIngest"].outputs[0].properties["input_fingerprint"] !=
          first["GraphIngest"].outputs[0].properties["input_fingerprint"])
  # Validated against run 1's graph (the latest blessed model's): drift measured, within
  # the thresholds (a warning), and shown in the run report.
  baseline = [ref for ref in records["GraphValidator"].inputs if ref.key == "baseline_statistics"]
  first_statistics = [ref for ref in first["GraphValidator"].outputs
                      if ref.key == "statistics"][0]
  assert [ref.id for ref in baseline] == [first_statistics.id]
  anomalies = [ref for ref in records["GraphValidator"].outputs if ref.key == "anomalies"][0]
  with open(os.path.join(anomalies.uri, "drift.json")) as f:
    drift = json.load(f)
  moved = {(m["set_name"], m["feature"]): m for m in drift["moved"]}
  assert ("paper", "feature 'score'") in moved
  assert not any(m["exceeded"] for m in drift["moved"])
  with open(edited["report"]) as f:
    page = f.read()
  assert 'id="drift"' in page and "feature &#x27;score&#x27;" in page
  assert edited["blessed"] is True


def test_an_unchanged_rerun_is_cached_up_to_the_trainer(day_two):
  config, runs, _, _ = day_two
  unchanged = runs["unchanged"]
  for component in UP_TO_TRAINER:
    assert unchanged["components"][component] == "CACHED", unchanged["components"]
  # The evaluator reruns (its baseline is now the model it is judging) and blesses it again,
  # but the model is served already: no duplicate version.
  assert unchanged["blessed"] is True and unchanged["pushed"] is True
  assert pushed_versions(config) == unchanged["serving_versions_before"]


def test_a_shifted_feature_fails_validation_and_nothing_is_trained_or_pushed(day_two):
  config, runs, message, pushed_before = day_two
  assert "feature 'score' drifted" in message, message
  assert "Jensen-Shannon divergence" in message and "papers.csv" in message
  assert "validation.drift.feature_jensen_shannon = 0.1" in message
  shifted = runs["shifted"]
  assert shifted["components"]["GraphIngest"] == "COMPLETE"
  store = lineage.open_store(config.metadata_path)
  ingest, = [r for r in lineage.executions(store, shifted["run_id"])
             if r.component == "GraphIngest"]
  assert ingest.outputs[0].properties["span"] == 2  # the new span was read
  assert shifted["components"]["GraphValidator"] == "FAILED", shifted["components"]
  assert not {"SubgraphSampler", "GnnTrainer", "Pusher"} & set(shifted["components"])
  assert "model_uri" not in shifted and "pushed" not in shifted
  assert pushed_versions(config) == pushed_before
