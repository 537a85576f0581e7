"""Day two of continuous training, the evaluator's part (issue 16, acceptance (d) and (e)), on
one small table graph run three times on one pipeline root:

  run 1: the graph as it is -> blessed and pushed (registered in MLflow);
  (d)    the `year` column dropped from papers.csv -> the run completes; the latest blessed
         model (run 1's) cannot read the new subgraphs, so the blessing says so and the model
         is judged against the thresholds alone; no traceback;
  (e)    the labels shuffled -> the model cannot beat the majority class -> NOT_BLESSED,
         nothing pushed, the MLflow registry unchanged; `tfx-gnn run` exits with its
         NOT_BLESSED code and says why.

Each changed graph is written to its own directory (the ingest cache then misses whatever
GraphIngest's cache key covers).
"""
import contextlib
import io
import json
import os

import numpy as np
import pytest
import yaml

import mlflow_template
from tfx_gnn.components import lineage
from tfx_gnn.pipelines import cli
from tfx_gnn.pipelines import config as config_lib
from tfx_gnn.pipelines import local_runner

pytestmark = pytest.mark.slow

NUM_PAPERS, NUM_CLASSES = 600, 3


def write_tables(directory, drop_year=False, shuffle_labels=False):
  """Papers whose class shows in their features f0..f2 (noisy one-hot) and, weakly, in the
  classes of the papers they cite; `year` is an informative-looking scalar feature."""
  rng = np.random.default_rng(0)
  labels = rng.integers(0, NUM_CLASSES, NUM_PAPERS)
  features = rng.normal(0, 0.6, [NUM_PAPERS, NUM_CLASSES]) + np.eye(NUM_CLASSES)[labels]
  # Years since 2015, in decades (unscaled years would swamp the other inputs).
  year = (labels * 3 + rng.integers(0, 8, NUM_PAPERS)) / 10
  cites = [(i, j) for i in range(NUM_PAPERS) for j in rng.choice(
      np.flatnonzero(labels == labels[i]) if rng.random() < 0.7 else np.arange(NUM_PAPERS),
      size=3, replace=False) if i != j]
  if shuffle_labels:
    labels = np.random.default_rng(1).permutation(labels)
  os.makedirs(directory)
  header = ["id", "label"] + ([] if drop_year else ["year"]) + ["f0", "f1", "f2"]
  with open(os.path.join(directory, "papers.csv"), "w") as f:
    f.write(",".join(header) + "\n")
    for i in range(NUM_PAPERS):
      row = [f"p{i}", str(labels[i])] + ([] if drop_year else [str(year[i])])
      f.write(",".join(row + [f"{x:.4f}" for x in features[i]]) + "\n")
  with open(os.path.join(directory, "cites.csv"), "w") as f:
    f.write("src,dst\n" + "".join(f"p{i},p{j}\n" for i, j in cites))
  return labels


def raw_config(root, data_dir) -> dict:
  return {
      "pipeline": {"name": "day-two", "root": str(root)},
      "data": {"tables": {
          "directory": str(data_dir),
          "node_sets": {"paper": {"file": "papers.csv", "label_column": "label"}},
          "edge_sets": {"cites": {"file": "cites.csv", "source": "paper", "target": "paper",
                                  "source_column": "src", "target_column": "dst",
                                  "reverse": "cited_by"}},
          # A large eval split: chance must not clear the gate's margin by luck.
          "splits": {"ratios": {"train": 0.4, "eval": 0.4, "test": 0.2}, "seed": 0}}},
      "sampling": {"hops": 2, "fanouts": {"cites": 3, "cited_by": 3}},
      # One round of message passing: a cheaper model to trace, export and load in each run.
      "model": {"template": "mt_albis", "num_rounds": 1, "units": 16, "message_dim": 16},
      "trainer": {"epochs": 6, "batch_size": 32, "learning_rate": 0.005},
      # Nothing here reads attributions or bulk predictions (their own tests do).
      "attribution": {"enabled": False},
      "bulk_inference": {"enabled": False},
      # No `evaluation` section: the default gate.
  }


def summary_of(config, run_id=None):
  store = lineage.open_store(config.metadata_path)
  return lineage.summarize(store, run_id or lineage.latest_run_id(store, config.pipeline.name))


def registry(config):
  from mlflow import MlflowClient
  client = MlflowClient(tracking_uri=config.tracking_uri)
  return sorted((v.name, v.version, v.source) for v in client.search_model_versions(
      f"name='{config.pipeline.name}'"))


def blessing_of(config, summary):
  store = lineage.open_store(config.metadata_path)
  evaluator = {r.component: r for r in lineage.executions(store, summary["run_id"])}[
      "GnnEvaluator"]
  return {ref.type: ref for ref in evaluator.outputs}


@pytest.fixture(scope="module")
def day_two(tmp_path_factory):
  base = tmp_path_factory.mktemp("day_two")
  root = base / "run"
  write_tables(base / "data")
  config = config_lib.parse_config(raw_config(root, base / "data"))
  mlflow_template.copy_into(config)
  first = local_runner.run(config)
  registry_after_first = registry(config)

  write_tables(base / "data_no_year", drop_year=True)
  no_year = config_lib.parse_config(raw_config(root, base / "data_no_year"))
  dropped = local_runner.run(no_year)
  registry_before_shuffled = registry(no_year)

  # (e) through the command line, as a user (or CI) runs it.
  shuffled_labels = write_tables(base / "data_shuffled", shuffle_labels=True)
  path = base / "shuffled.yaml"
  path.write_text(yaml.safe_dump(raw_config(root, base / "data_shuffled")))
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = cli.main(["run", str(path)])
  shuffled_config = config_lib.load_config(str(path))
  return {"config": config, "first": first, "registry_after_first": registry_after_first,
          "no_year": no_year, "dropped": dropped,
          "registry_before_shuffled": registry_before_shuffled,
          "shuffled_config": shuffled_config, "shuffled": summary_of(shuffled_config),
          "shuffled_labels": shuffled_labels, "code": code, "stdout": out.getvalue(),
          "stderr": err.getvalue()}


def test_first_run_is_blessed_and_pushed(day_two):
  first = day_two["first"]
  assert set(first["components"].values()) == {"COMPLETE"}, first["components"]
  assert first["blessed"] is True and first["pushed"] is True, first.get("blessing_reasons")
  ev = first["evaluation"]
  assert ev["decided_on"] == "eval"
  trivial = ev["trivial"]["eval"]
  print(f"run 1: eval accuracy {first['eval_metrics']['accuracy']:.4f} "
        f"(n={first['eval_metrics']['num_examples']}), test {first['test_metrics']['accuracy']:.4f}"
        f"; majority class {trivial['accuracy']:.4f}; exported epoch {ev['exported_epoch']} of "
        f"{ev['epochs_trained']}")
  assert first["eval_metrics"]["accuracy"] >= ev["thresholds"]["required_over_trivial"]
  assert first["eval_metrics"]["num_examples"] == 240 and first["test_metrics"]["num_examples"]
  assert 1 <= ev["exported_epoch"] <= ev["epochs_trained"] == 6
  assert len(day_two["registry_after_first"]) == 1


def test_d_a_removed_feature_makes_the_baseline_incompatible_not_a_crash(day_two):
  config, dropped = day_two["no_year"], day_two["dropped"]
  assert set(dropped["components"].values()) == {"COMPLETE"}, dropped["components"]
  outputs = blessing_of(config, dropped)
  blessing = outputs["ModelBlessing"].properties
  assert blessing["baseline_compatible"] == 0
  assert blessing["baseline_model"] == day_two["first"]["model_uri"]
  note = blessing["baseline_incompatibility"]
  assert ("the baseline takes feature `year` of node set `paper`, which this graph no longer "
          "has: judged against the thresholds alone") == note
  # The report and the CLI summary say so too.
  assert dropped["baseline_metrics"] is None
  text = local_runner.format_summary(config, dropped)
  assert "not scored: the baseline takes feature `year`" in text
  assert "Traceback" not in text
  report = open(dropped["report"]).read()
  assert "incompatible" in report and "`year`" in report
  print(f"(d): blessed={dropped['blessed']} eval accuracy "
        f"{dropped['eval_metrics']['accuracy']:.4f}: {note}")


def test_e_shuffled_labels_are_not_blessed_nothing_is_pushed(day_two):
  shuffled = day_two["shuffled"]
  assert set(shuffled["components"].values()) == {"COMPLETE"}, shuffled["components"]
  ev = shuffled["evaluation"]
  accuracy = shuffled["eval_metrics"]["accuracy"]
  majority = ev["trivial"]["eval"]["accuracy"]
  print(f"(e): eval accuracy {accuracy:.4f} vs majority class {majority:.4f} "
        f"({ev['trivial']['eval']['predictor']}); "
        f"required {ev['thresholds']['required_over_trivial']:.4f}"
        f"; test accuracy {shuffled['test_metrics']['accuracy']:.4f}")
  assert shuffled["blessed"] is False
  assert "does not beat the trivial baseline (the majority class" in shuffled["blessing_reasons"]
  # The eval examples' majority class is the shuffled labels' most common eval class.
  assert accuracy < ev["thresholds"]["required_over_trivial"]
  assert shuffled["pushed"] is False and not shuffled.get("pushed_to")
  assert shuffled.get("mlflow_model_version") is None
  assert registry(day_two["shuffled_config"]) == day_two["registry_before_shuffled"]
  serving = day_two["shuffled_config"].serving_dir
  pushed_before = {day_two["first"]["pushed_to"], day_two["dropped"].get("pushed_to")} - {None}
  assert {os.path.join(serving, v) for v in os.listdir(serving)} == pushed_before


def test_e_the_cli_exits_with_the_not_blessed_code_and_says_why(day_two):
  assert day_two["code"] == cli.EXIT_NOT_BLESSED == 3
  err = day_two["stderr"]
  assert "Traceback" not in err and "Traceback" not in day_two["stdout"]
  lines = [line for line in err.splitlines() if line.startswith("tfx-gnn:") or
           line.startswith("nothing was pushed")]
  assert len(lines) == 2, err
  assert "NOT blessed" in lines[0] and "does not beat the trivial baseline" in lines[0]
  assert "nothing was pushed" in lines[1]
  # The summary shows the split that decided, the trivial baseline and the exported epoch.
  out = day_two["stdout"]
  assert "eval split (decided the blessing): num_examples=240, accuracy=" in out
  assert "test split (reported): num_examples=120, accuracy=" in out
  assert "to beat the trivial baseline (the majority class" in out
  assert "min_margin_over_trivial=0.1" in out and "max_regression=0" in out
  assert "exported weights: epoch " in out
  assert "blessed: False" in out and "pushed model: not pushed" in out


def test_the_report_shows_the_gate(day_two):
  shuffled = day_two["shuffled"]
  report_dir = os.path.dirname(shuffled["report"])
  data = json.load(open(os.path.join(report_dir, "report.json")))
  assert data["evaluation"]["split"] == "eval" and data["blessed"] is False
  html = open(shuffled["report"]).read()
  assert "Decided on the <b>eval</b> split" in html
  assert "trivial baseline (eval)" in html and "min_margin_over_trivial 0.1" in html
  assert "Exported weights: epoch" in html and "Not blessed:" in html
