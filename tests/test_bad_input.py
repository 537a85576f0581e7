"""Bad input through the real pipeline: each case fails with an error that names the file,
set, row or ids, before anything is trained, and no model is pushed."""
import os

import pytest

import mlflow_template
from tfx_gnn.pipelines import config as config_lib
from tfx_gnn.components import lineage
from tfx_gnn.pipelines import local_runner

pytestmark = pytest.mark.slow  # runs pipelines, trains models or starts servers

PAPERS = "id,label,features\n" + "".join(
    f"p{i},{i % 2},{i % 3} {i % 5} 1\n" for i in range(12))
AUTHORS = "id\n" + "".join(f"a{i}\n" for i in range(4))
CITES = "src,dst\n" + "".join(f"p{i},p{(i + 1) % 12}\n" for i in range(12))
WRITES = "author,paper\n" + "".join(f"a{i % 4},p{i}\n" for i in range(12))
SPLIT = "id,split\n" + "".join(
    f"p{i},{'train' if i < 6 else 'valid' if i < 9 else 'test'}\n" for i in range(12))


def make_config(tmp_path, **replace) -> config_lib.Config:
  """A small valid graph in tmp_path/data, with some tables replaced by bad ones."""
  data = tmp_path / "data"
  data.mkdir()
  tables = {"papers.csv": PAPERS, "authors.csv": AUTHORS, "cites.csv": CITES,
            "writes.csv": WRITES, "split.csv": SPLIT}
  tables.update(replace)
  for name, text in tables.items():
    (data / name).write_text(text)
  raw = {
      "pipeline": {"name": "bad-input", "root": str(tmp_path / "run")},
      "data": {"tables": {
          "directory": str(data),
          "node_sets": {
              "paper": {"file": "papers.csv", "label_column": "label"},
              "author": {"file": "authors.csv"}},
          "edge_sets": {
              "cites": {"file": "cites.csv", "source": "paper", "target": "paper",
                        "source_column": "src", "target_column": "dst"},
              "writes": {"file": "writes.csv", "source": "author", "target": "paper",
                         "source_column": "author", "target_column": "paper",
                         "reverse": "written"}},
          "splits": {"file": "split.csv"}}},
      "sampling": {"fanouts": {"cites": 2, "written": 2}},
      "model": {"template": "mt_albis"},  # what these tests were written with
      "trainer": {"epochs": 1},
  }
  return config_lib.parse_config(raw)


def run_and_expect_failure(config, *patterns):
  mlflow_template.copy_into(config)  # the runs fail in their data, not in MLflow's migrations
  with pytest.raises(Exception) as info:
    local_runner.run(config)
  message = str(info.value)
  for pattern in patterns:
    assert pattern in message, f"{pattern!r} not in error:\n{message}"
  store = lineage.open_store(config.metadata_path)
  run_id = lineage.latest_run_id(store, config.pipeline.name)
  produced = {ref.type for r in lineage.executions(store, run_id) for ref in r.outputs}
  assert not produced & {"Examples", "Model", "PushedModel"}, produced
  assert not os.path.exists(config.serving_dir)
  return message


def test_dangling_edge_endpoint(tmp_path):
  config = make_config(tmp_path, **{"cites.csv": CITES + "p3,p99\n"})
  run_and_expect_failure(config, "cites", "cites.csv", "p99")


def test_duplicate_node_id(tmp_path):
  config = make_config(tmp_path, **{"papers.csv": PAPERS + "p5,1,0 0 1\n"})
  run_and_expect_failure(config, "paper", "papers.csv", "p5")


def test_nan_feature(tmp_path):
  config = make_config(tmp_path, **{"papers.csv": PAPERS.replace("p7,1,1 2 1", "p7,1,1 nan 1")})
  run_and_expect_failure(config, "paper", "papers.csv", "p7")


def test_label_out_of_range(tmp_path):
  bad = make_config(tmp_path, **{"papers.csv": PAPERS.replace("p4,0,", "p4,-3,")})
  run_and_expect_failure(bad, "paper", "p4")


def test_missing_column(tmp_path):
  config = make_config(tmp_path, **{"cites.csv": CITES.replace("src,dst", "from,dst")})
  run_and_expect_failure(config, "cites.csv", "src")


def test_malformed_csv_row(tmp_path):
  config = make_config(tmp_path, **{"writes.csv": WRITES + "a1,p2,extra\n"})
  run_and_expect_failure(config, "writes.csv", "line 14")


def test_split_with_unknown_id(tmp_path):
  config = make_config(tmp_path, **{"split.csv": SPLIT + "p404,test\n"})
  run_and_expect_failure(config, "split.csv", "p404")


def test_unknown_edge_set_in_sampling_is_a_config_error(tmp_path):
  with pytest.raises(config_lib.ConfigError, match=r"sampling\.fanouts.*'citez'"):
    cfg = make_config(tmp_path)
    config_lib.parse_config(config_lib.merge(
        config_lib.to_dict(cfg), {"sampling": {"fanouts": {"citez": 2}}}))


def test_malformed_config_key(tmp_path):
  raw = config_lib.to_dict(make_config(tmp_path))
  raw["model"]["unitz"] = 3
  with pytest.raises(config_lib.ConfigError, match=r"model\.unitz: unknown key"):
    config_lib.parse_config(raw)


def test_zero_fanout_is_a_config_error(tmp_path):
  raw = config_lib.to_dict(make_config(tmp_path))
  raw["sampling"]["fanouts"]["cites"] = 0
  with pytest.raises(config_lib.ConfigError, match=r"sampling\.fanouts.*'cites' must be > 0"):
    config_lib.parse_config(raw)


def test_cli_reports_a_failed_run_without_a_traceback(tmp_path, capsys):
  import yaml
  from tfx_gnn.pipelines import cli
  config = make_config(tmp_path, **{"cites.csv": CITES + "p3,p99\n"})
  path = tmp_path / "config.yaml"
  path.write_text(yaml.safe_dump(config_lib.to_dict(config)))
  mlflow_template.copy_into(config)
  assert cli.main(["run", str(path)]) == 1
  err = capsys.readouterr().err
  assert "GraphValidationError" in err and "p99" in err and "nothing was pushed" in err
  assert "Traceback" not in err


# ---------------------------------------------------------------- more of the matrix
def with_overrides(config, overrides) -> config_lib.Config:
  return config_lib.parse_config(config_lib.merge(config_lib.to_dict(config), overrides))


def test_non_numeric_feature(tmp_path):
  config = make_config(tmp_path, **{"papers.csv": PAPERS.replace("p3,1,0 3 1", "p3,1,0 x 1")})
  run_and_expect_failure(config, "papers.csv", "'features'", "not numeric", "line 5")


def test_ragged_feature_vectors(tmp_path):
  config = make_config(tmp_path, **{"papers.csv": PAPERS.replace("p5,1,2 0 1", "p5,1,2 0")})
  run_and_expect_failure(config, "papers.csv", "'features'", "2 values at line 7")


def test_empty_file(tmp_path):
  config = make_config(tmp_path, **{"authors.csv": ""})
  run_and_expect_failure(config, "authors.csv", "empty")


def test_self_loop_when_disallowed(tmp_path):
  config = with_overrides(make_config(tmp_path, **{"cites.csv": CITES + "p3,p3\n"}),
                          {"validation": {"allow_self_loops": False}})
  run_and_expect_failure(config, "cites", "cites.csv", "self-loop", "'p3' -> 'p3'",
                         "allow_self_loops")


def test_inf_feature(tmp_path):
  config = make_config(tmp_path, **{"papers.csv": PAPERS.replace("p8,0,2 3 1", "p8,0,2 inf 1")})
  run_and_expect_failure(config, "paper", "papers.csv", "NaN or Inf", "p8")


def test_empty_label_for_a_seed(tmp_path):
  config = make_config(tmp_path, **{"papers.csv": PAPERS.replace("p4,0,", "p4,,")})
  run_and_expect_failure(config, "papers.csv", "label", "line 6", "empty")


def test_split_overlap(tmp_path):
  config = make_config(tmp_path, **{"split.csv": SPLIT + "p2,test\n"})
  run_and_expect_failure(config, "split.csv", "'p2'", "line 4", "line 14")


def test_empty_train_split(tmp_path):
  config = make_config(tmp_path, **{"split.csv": SPLIT.replace(",train", ",valid")})
  run_and_expect_failure(config, "train split", "empty", "data.*.splits")


def test_edge_endpoint_is_an_unknown_node_set(tmp_path):
  raw = config_lib.to_dict(make_config(tmp_path))
  raw["data"]["tables"]["edge_sets"]["cites"]["target"] = "papr"
  raw["sampling"]["fanouts"] = {"written": 2}
  run_and_expect_failure(config_lib.parse_config(raw), "edge set 'cites'", "'papr'",
                         "not defined", "data.tables.edge_sets.cites.target")


def test_schema_declares_a_feature_the_data_lacks(tmp_path):
  data = tmp_path / "graph"
  data.mkdir()
  (data / "paper.csv").write_text("id,year,label\n" + "".join(
      f"p{i},{2000 + i},{i % 2}\n" for i in range(6)))
  (data / "cites.csv").write_text("source,target\n" + "".join(
      f"p{i},p{(i + 1) % 6}\n" for i in range(6)))
  (data / "split.csv").write_text("id,split\np0,train\np1,train\np2,valid\np3,test\n")
  (data / "graph.pbtxt").write_text("""
node_sets { key: "paper" value {
  features { key: "year" value { dtype: DT_INT64 } }
  features { key: "venue" value { dtype: DT_INT64 } }
  features { key: "label" value { dtype: DT_INT64 } }
  metadata { filename: "paper.csv" } } }
edge_sets { key: "cites" value { source: "paper" target: "paper"
  metadata { filename: "cites.csv" } } }
""")
  config = config_lib.parse_config({
      "pipeline": {"name": "bad-input", "root": str(tmp_path / "run")},
      "data": {"unigraph": {"schema_file": str(data / "graph.pbtxt"),
                            "label_node_set": "paper", "splits": {"file": "split.csv"}}},
      "sampling": {"fanouts": {"cites": 2}}, "trainer": {"epochs": 1}})
  run_and_expect_failure(config, "graph.pbtxt", "node set 'paper'", "paper.csv", "'venue'")


def test_config_value_of_the_wrong_type(tmp_path):
  raw = config_lib.to_dict(make_config(tmp_path))
  raw["trainer"]["epochs"] = "ten"
  with pytest.raises(config_lib.ConfigError, match=r"trainer\.epochs: .*integer"):
    config_lib.parse_config(raw)


def test_unknown_top_level_section(tmp_path):
  raw = config_lib.to_dict(make_config(tmp_path))
  raw["trainr"] = {"epochs": 3}
  with pytest.raises(config_lib.ConfigError, match=r"trainr: unknown key"):
    config_lib.parse_config(raw)


def test_model_directory_that_is_not_a_saved_model(tmp_path):
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.gnn_evaluator import evaluation
  empty = tmp_path / "Format-Serving"
  empty.mkdir()
  with pytest.raises(Exception) as info:
    evaluation.predict(str(empty), [], subgraph_schema=None,
                       label=graph_io.Label("paper", "label", 2))
  message = str(info.value)
  assert str(empty) in message and "not a SavedModel" in message, message


def test_unreachable_mlflow_fails_fast_and_pushes_nothing(tmp_path):
  import time
  from tfx_gnn.components import tracking
  config = with_overrides(make_config(tmp_path),
                          {"mlflow": {"tracking_uri": "http://127.0.0.1:9"}})
  # The trainer's own call fails in seconds (MLflow's client alone retries for minutes).
  start = time.perf_counter()
  with pytest.raises(tracking.TrackingError, match=r"http://127\.0\.0\.1:9.*not reachable"):
    tracking.Run(config.tracking_uri, "bad-input", run_name="probe")
  assert time.perf_counter() - start < 10
  # The local runner checks before running anything: nothing is sampled, trained or pushed.
  with pytest.raises(tracking.TrackingError, match=r"http://127\.0\.0\.1:9.*not reachable"):
    local_runner.run(config)
  assert not os.path.exists(config.metadata_path)
  assert not os.path.exists(config.serving_dir)


# ---------------------------------------------------------------- span patterns (issue 16)
def expect_no_graph(config):
  """GraphIngest failed as an execution of its own, and published no Graph."""
  store = lineage.open_store(config.metadata_path)
  run_id = lineage.latest_run_id(store, config.pipeline.name)
  states = {r.component: r.state for r in lineage.executions(store, run_id)}
  assert states == {"GraphIngest": "FAILED"}, states
  produced = {ref.type for r in lineage.executions(store, run_id) for ref in r.outputs}
  assert not produced, produced


def test_span_pattern_that_matches_nothing(tmp_path):
  config = with_overrides(make_config(tmp_path), {"data": {"tables": {"node_sets": {
      "paper": {"file": "day-{SPAN}/papers.csv"}}}}})
  run_and_expect_failure(config, "data.tables.node_sets.paper.file", "'day-{SPAN}/papers.csv'",
                         "no file matches it")
  expect_no_graph(config)


def test_malformed_span_pattern(tmp_path):
  config = with_overrides(make_config(tmp_path), {"data": {"tables": {"edge_sets": {
      "cites": {"file": "{SPAN:wide}/cites.csv"}}}}})
  run_and_expect_failure(config, "data.tables.edge_sets.cites.file", "'{SPAN:wide}/cites.csv'",
                         "not a positive integer")
  expect_no_graph(config)


# -------------------------------------------------------------- named tasks (issue 22)
def _with(tmp_path, **sections):
  return config_lib.merge(config_lib.to_dict(make_config(tmp_path)), sections)


def _tasks_raw(base, **sections):
  raw = config_lib.merge(base, sections)
  raw.pop("task", None)  # `tasks` names the tasks instead
  return raw


TWO_TASKS = {"venue": {"type": "root_node_multiclass"},
             "embedding": {"type": "dgi", "loss_weight": 0.5}}


def test_an_unknown_task_name_is_a_config_error(tmp_path):
  base = _with(tmp_path)
  raw = _tasks_raw(base, tasks=TWO_TASKS,
                   evaluation={"tasks": {"venu": {"metric": "accuracy"}}})
  with pytest.raises(config_lib.ConfigError,
                     match=r"evaluation\.tasks\.venu: no task named 'venu' \(tasks: venue, "
                           r"embedding\)"):
    config_lib.parse_config(raw)
  # An unknown task type is named with its task's key, and the valid types.
  raw = _tasks_raw(base, tasks={**TWO_TASKS, "year": {"type": "node_regression"}})
  with pytest.raises(config_lib.ConfigError, match=r"tasks\.year: Input tag 'node_regression'"):
    config_lib.parse_config(raw)


def test_a_loss_weight_on_a_missing_task_is_a_config_error(tmp_path):
  # A loss weight on the single `task`: there is no task mapping to weigh it in.
  base = _with(tmp_path)
  raw = config_lib.merge(base, {"task": {"loss_weight": 2.0}})
  with pytest.raises(config_lib.ConfigError, match=r"task\.loss_weight: weighs a task against "
                                                   r"the others of a `tasks:` mapping"):
    config_lib.parse_config(raw)
  # And a weight that weighs nothing.
  raw = _tasks_raw(base, tasks={**TWO_TASKS, "embedding": {
      "type": "dgi", "loss_weight": 0}})
  with pytest.raises(config_lib.ConfigError,
                     match=r"tasks\.embedding\.loss_weight: .*greater than 0"):
    config_lib.parse_config(raw)


def test_a_task_that_cannot_share_the_model_is_a_config_error(tmp_path):
  base = _with(tmp_path)
  raw = _tasks_raw(base, tasks={**TWO_TASKS, "links": {
      "type": "link_prediction", "edge_set": "cites"}})
  with pytest.raises(config_lib.ConfigError, match=r"tasks\.links\.type: 'link_prediction' "
                                                   r"cannot share a model"):
    config_lib.parse_config(raw)
  # The valid form: the first task is the one the sampler seeds from.
  config = config_lib.parse_config(_tasks_raw(base, tasks=TWO_TASKS))
  assert config.multi_task and config.task.type == "root_node_multiclass"
  assert not config.runs_attribution and not config.scores_node_ids
  assert config_lib.parse_config(config_lib.to_dict(config)).tasks == config.tasks


def test_an_edge_feature_that_is_not_on_that_edge_set_is_a_config_error(tmp_path):
  raw = _with(tmp_path, model={"edge_features": {"cites": ["weight"]}})
  with pytest.raises(config_lib.ConfigError, match=r"model\.edge_features\.cites: edge set "
                                                   r"'cites' has no feature 'weight'"):
    config_lib.parse_config(raw)


def test_a_parameter_server_count_of_0_is_a_config_error(tmp_path):
  raw = _with(tmp_path, trainer={"strategy": "parameter_server", "num_ps": 0})
  with pytest.raises(config_lib.ConfigError, match=r"trainer\.num_ps: .*0 parameter servers: "
                                                   r"strategy 'parameter_server' needs at least"):
    config_lib.parse_config(raw)
