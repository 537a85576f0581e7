"""Serving: GnnBulkInferrer's predictions of the tiny pipeline run (tests/conftest.py's
served_tiny_run, against a real `mlflow server`), `tfx-gnn predict`, the registered pyfunc
model loaded with mlflow.pyfunc.load_model and MLflow's own scoring server (`mlflow models
serve`, on loopback) all give the same predictions for the same ids; the `champion` alias;
bad input; a NOT_BLESSED run moves nothing."""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest

from tfx_gnn.components import node_scoring

HERE = os.path.dirname(__file__)
TINY = os.path.join(HERE, "configs", "tiny.yaml")



def _latest_pushed_run(served) -> dict:
  """The summary of the latest run in the served root that pushed a model: other modules
  (test_pipeline's second run) push there too, and `predict` and the `champion` alias follow
  the latest push."""
  from tfx_gnn.components import lineage
  store = lineage.open_store(served.config.metadata_path)
  summaries = [lineage.summarize(store, run_id)
               for run_id in lineage.run_ids(store, served.config.pipeline.name)]
  return [s for s in summaries if s.get("pushed")][-1]


def _outputs(served, component):
  from tfx_gnn.components import lineage
  store = lineage.open_store(served.config.metadata_path)
  [record] = [r for r in lineage.executions(store, _latest_pushed_run(served)["run_id"])
              if r.component == component]
  return {ref.key: ref for ref in record.outputs}, {ref.key: ref for ref in record.inputs}


def _cli_args(served):
  return ["--set", f"pipeline.root={served.config.pipeline.root}",
          "--set", f"mlflow.tracking_uri={served.server.url}"]


@pytest.fixture(scope="module")
def bulk(served_tiny_run):
  outputs, inputs = _outputs(served_tiny_run, "GnnBulkInferrer")
  predictions = outputs["predictions"]
  frame = pd.read_parquet(os.path.join(predictions.uri, "predictions.parquet"))
  return predictions, inputs, frame.set_index("id")


@pytest.fixture(scope="module")
def scoring_server(served_tiny_run):
  """`mlflow models serve` of models:/<name>@champion, local environment, on a free loopback
  port; stopped (its whole process group) at the end."""
  from tfx_gnn.pipelines import mlflow_server
  port = mlflow_server.free_port()
  name = served_tiny_run.config.pipeline.name
  mlflow = os.path.join(os.path.dirname(sys.executable), "mlflow")
  log = open(os.path.join(served_tiny_run.root, "scoring-server.log"), "wb")
  process = subprocess.Popen(
      [mlflow, "models", "serve", "-m", f"models:/{name}@champion", "--env-manager", "local",
       "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
      # The venv's bin first: MLflow starts `uvicorn` by name.
      env={**os.environ, "MLFLOW_TRACKING_URI": served_tiny_run.server.url,
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")},
      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
  url = f"http://127.0.0.1:{port}"
  try:
    deadline = time.time() + 180
    while True:
      assert process.poll() is None, open(log.name).read()[-3000:]
      try:
        urllib.request.urlopen(url + "/ping", timeout=2).close()
        break
      except (urllib.error.URLError, OSError):
        assert time.time() < deadline, "scoring server did not start"
        time.sleep(1)
    yield url
  finally:
    import signal
    try:  # the whole group: `mlflow models serve` runs uvicorn as its child
      os.killpg(process.pid, signal.SIGTERM)
      process.wait(timeout=20)
    except ProcessLookupError:
      pass
    except subprocess.TimeoutExpired:
      os.killpg(process.pid, signal.SIGKILL)
      process.wait()
    log.close()


def _post(url, payload):
  request = urllib.request.Request(url + "/invocations", data=json.dumps(payload).encode(),
                                   headers={"Content-Type": "application/json"})
  try:
    with urllib.request.urlopen(request, timeout=120) as response:
      return response.status, json.loads(response.read())
  except urllib.error.HTTPError as e:
    return e.code, json.loads(e.read() or b"{}")


def _ids(bulk_frame):
  ids = list(bulk_frame.index)
  return [ids[0], ids[7], ids[-1], ids[len(ids) // 2], ids[42]]


@pytest.mark.slow
def test_bulk_inference_scores_every_node_of_the_target_set(served_tiny_run, bulk):
  predictions, inputs, frame = bulk
  graph_dir = inputs["graph"].uri
  papers = node_scoring.node_ids(graph_dir, "paper")
  assert sorted(frame.index) == sorted(papers)  # every paper, once
  assert predictions.properties["inferred"] == 1
  assert predictions.properties["num_nodes"] == len(papers) == 300
  assert predictions.properties["selection"] == "all"
  probabilities = np.stack(frame.probabilities.to_numpy())
  assert probabilities.shape == (300, 4)
  np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-5)
  assert (frame.prediction.to_numpy() == probabilities.argmax(1)).all()
  assert np.stack(frame.embedding.to_numpy()).shape == (300, served_tiny_run.config.model.units)
  # Logged to the trainer's MLflow run.
  from mlflow.tracking import MlflowClient
  client = MlflowClient(served_tiny_run.server.url)
  run_id = _latest_pushed_run(served_tiny_run)["mlflow_run_id"]
  assert client.get_run(run_id).data.metrics["bulk_inference.num_nodes"] == 300
  assert {f.path for f in client.list_artifacts(run_id, "bulk_inference")} == {
      "bulk_inference/predictions.parquet", "bulk_inference/summary.json"}


@pytest.mark.slow
def test_run_names_and_sampling_params(served_tiny_run):
  from mlflow.tracking import MlflowClient
  run = MlflowClient(served_tiny_run.server.url).get_run(served_tiny_run.summary["mlflow_run_id"])
  assert run.info.run_name == (f"{served_tiny_run.config.pipeline.name}/"
                               f"{served_tiny_run.summary['run_id']}/GnnTrainer")
  params = run.data.params
  assert params["sampling.engine"] == "fast"
  assert params["sampling.hops"] == "2"
  assert params["sampling.seed"] == "0"
  assert params["sampling.fanouts.cites"] == "3"


@pytest.mark.slow
def test_predict_pyfunc_and_rest_equal_the_bulk_inferrer(served_tiny_run, bulk, scoring_server,
                                                         tmp_path, capsys):
  import mlflow
  from tfx_gnn.pipelines import cli
  _, _, frame = bulk
  ids = _ids(frame)
  expected = frame.loc[ids]

  out = tmp_path / "predicted.parquet"
  assert cli.main(["predict", TINY, *_cli_args(served_tiny_run), "--ids", *ids,
                   "-o", str(out)]) == 0
  table = capsys.readouterr().out
  assert "5 node(s) of 'paper' scored" in table and ids[0] in table
  predicted = pd.read_parquet(out).set_index("id")

  mlflow.set_tracking_uri(served_tiny_run.server.url)
  model = mlflow.pyfunc.load_model(f"models:/{served_tiny_run.config.pipeline.name}@champion")
  assert model.metadata.get_input_schema().input_names() == ["id"]
  loaded = model.predict(pd.DataFrame({"id": ids})).set_index("id")

  status, body = _post(scoring_server, {"dataframe_split": {"columns": ["id"],
                                                            "data": [[i] for i in ids]}})
  assert status == 200, body
  rest = pd.DataFrame(body["predictions"]).set_index("id")

  # Bulk inference scores these ids inside bigger batches. CPU kernels block a matmul by batch
  # size, so the same subgraph may round differently in its last bit (3.7e-8 seen in CI).
  close = {"rtol": 1e-5, "atol": 1e-7}
  for name, got in (("predict", predicted), ("pyfunc", loaded), ("rest", rest)):
    assert list(got.index) == ids, name
    assert list(got.prediction) == list(expected.prediction), name
    np.testing.assert_allclose(np.stack(got.probabilities.to_numpy()).astype(np.float32),
                               np.stack(expected.probabilities.to_numpy()), err_msg=name, **close)
    np.testing.assert_allclose(np.stack(got.embedding.to_numpy()).astype(np.float32),
                               np.stack(expected.embedding.to_numpy()), err_msg=name, **close)


@pytest.mark.slow
def test_champion_is_the_blessed_version_with_signature_and_example(served_tiny_run):
  from mlflow.tracking import MlflowClient
  client = MlflowClient(served_tiny_run.server.url)
  name = served_tiny_run.config.pipeline.name
  champion = client.get_model_version_by_alias(name, "champion")
  assert champion.version == _latest_pushed_run(served_tiny_run)["mlflow_model_version"]
  assert champion.tags["blessed"] == "true"
  import mlflow
  mlflow.set_tracking_uri(served_tiny_run.server.url)
  info = mlflow.models.get_model_info(f"models:/{name}@champion")
  assert info.signature is not None and "python_function" in info.flavors
  assert info.saved_input_example_info is not None


@pytest.mark.slow
def test_bad_ids_are_refused_by_the_cli_and_with_http_400(served_tiny_run, bulk, scoring_server,
                                                          tmp_path, capsys):
  from tfx_gnn.pipelines import cli
  _, _, frame = bulk
  good = list(frame.index[:2])
  cases = {"unknown": (["no-such-node"], "unknown id(s): 'no-such-node'"),
           # The tiny graph numbers each node set from 0: 300 papers, 462 authors.
           "author": (["400"], "of another node set: '400' (author)")}
  for label, (ids, message) in cases.items():
    out = tmp_path / f"{label}.parquet"
    assert cli.main(["predict", TINY, *_cli_args(served_tiny_run), "--ids", *good, *ids,
                     "-o", str(out)]) == 1, label
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not out.exists()
    status, body = _post(scoring_server, {"dataframe_split": {"columns": ["id"],
                                                              "data": [[i] for i in good + ids]}})
    assert status == 400 and message in body.get("message", ""), (label, status, body)
  status, body = _post(scoring_server, {"dataframe_split": {"columns": ["node"],
                                                            "data": [["p0"]]}})
  assert status == 400, body


@pytest.mark.slow
def test_a_deleted_graph_is_a_clear_error_from_the_cli_and_rest(served_tiny_run, bulk,
                                                               scoring_server, tmp_path, capsys):
  from tfx_gnn.pipelines import cli
  _, inputs, frame = bulk
  graph_dir = inputs["graph"].uri
  ids = list(frame.index[:2])
  moved = graph_dir + ".moved-by-test"
  os.rename(graph_dir, moved)
  try:
    out = tmp_path / "out.parquet"
    assert cli.main(["predict", TINY, *_cli_args(served_tiny_run), "--ids", *ids,
                     "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"the Graph artifact {graph_dir}" in err and "missing" in err, err
    assert not out.exists()
    status, body = _post(scoring_server, {"dataframe_split": {"columns": ["id"],
                                                              "data": [[i] for i in ids]}})
    assert status == 400 and "missing" in body.get("message", ""), (status, body)
  finally:
    os.rename(moved, graph_dir)


@pytest.mark.slow
def test_a_not_blessed_run_moves_nothing(served_tiny_run, tmp_path):
  """Another run of the same pipeline name (so the same registered model), on its own root,
  whose model cannot pass the evaluator's bound: no new version, the alias stays, no
  predictions."""
  from mlflow.tracking import MlflowClient
  from tfx_gnn.components import lineage
  from tfx_gnn.pipelines import config as config_lib
  from tfx_gnn.pipelines import local_runner
  client = MlflowClient(served_tiny_run.server.url)
  name = served_tiny_run.config.pipeline.name
  before = client.get_model_version_by_alias(name, "champion").version
  versions = len(client.search_model_versions(f"name='{name}'"))
  config = config_lib.load_config(TINY, {
      "pipeline": {"root": str(tmp_path / "run")},
      "mlflow": {"tracking_uri": served_tiny_run.server.url},
      "evaluation": {"lower_bound": 1.0}, "attribution": {"enabled": False},
      "report": {"enabled": False}, "trainer": {"epochs": 1}})
  summary = local_runner.run(config)
  assert summary["blessed"] is False and summary["pushed"] is False
  assert client.get_model_version_by_alias(name, "champion").version == before
  assert len(client.search_model_versions(f"name='{name}'")) == versions
  store = lineage.open_store(config.metadata_path)
  [record] = [r for r in lineage.executions(store, summary["run_id"])
              if r.component == "GnnBulkInferrer"]
  [predictions] = record.outputs
  assert predictions.properties["inferred"] == 0
  assert not os.path.exists(os.path.join(predictions.uri, "predictions.parquet"))


def test_decisions_from_logits():
  prediction, probabilities = node_scoring.decide("root_node_multiclass",
                                                  np.array([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]]))
  assert prediction.tolist() == [1, 0]
  np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-6)
  prediction, probabilities = node_scoring.decide("root_node_binary", np.array([[-2.0], [0.5]]))
  assert prediction.tolist() == [0, 1]
  np.testing.assert_allclose(probabilities[:, 1], 1 / (1 + np.exp([2.0, -0.5])), rtol=1e-6)
  prediction, probabilities = node_scoring.decide("root_node_regression", np.array([[1.5]]))
  assert prediction.tolist() == [1.5] and probabilities.shape == (1, 0)


def test_arrow_table_from_arrays_equals_the_table_from_rows(tmp_path):
  # The bulk inferrer writes score_arrays' arrays as list columns without a Python row each;
  # the CLI writes score's lists: the two must be the same table, for each task's columns.
  import pyarrow as pa
  import pyarrow.parquet as pq
  rng = np.random.default_rng(0)
  for task, prediction, probabilities, embedding in [
      ("root_node_multiclass", np.array([2, 0, 1]), rng.random((3, 4), np.float32),
       rng.random((3, 5), np.float32)),
      ("root_node_regression", np.array([0.5, -1.25, 3.0]), np.zeros((3, 0), np.float32),
       np.zeros((3, 0), np.float32))]:
    arrays = {"id": ["a", "b", "c"], "prediction": prediction, "probabilities": probabilities,
              "embedding": embedding}
    rows = [{"id": i, "prediction": p, "probabilities": q, "embedding": e} for i, p, q, e in zip(
        arrays["id"], prediction.tolist(), probabilities.tolist(), embedding.tolist())]
    expected = pa.Table.from_pylist(rows, schema=node_scoring.arrow_schema(task))
    assert node_scoring.arrow_table(arrays, task).equals(expected), task
    path = str(tmp_path / f"{task}.parquet")
    node_scoring.write_parquet({k: [r[k] for r in rows] for k in arrays}, task, path)
    assert pq.read_table(path).equals(expected), task


def test_bulk_inference_config_takes_a_split_or_ids_not_both():
  from tfx_gnn.components.bulk_inferrer.config import BulkInferenceConfig
  with pytest.raises(ValueError, match="either `split` or `ids`"):
    BulkInferenceConfig(split="test", ids=["1"])
  with pytest.raises(ValueError, match="`ids` is empty"):
    BulkInferenceConfig(ids=[])
  spec = node_scoring.ServingSpec("/g", 'seed_op {\n  op_name: "seed"\n}', 3, "paper",
                                  "root_node_binary")
  assert node_scoring.ServingSpec.from_json(spec.to_json()) == spec
  # JSON escapes the spec's quotes and newlines with backslashes, on which ML Metadata on
  # PostgreSQL fails; the property holds none.
  assert "\\" in spec.to_json() and "\\" not in spec.to_property()
  assert node_scoring.ServingSpec.from_property(spec.to_property()) == spec


def test_predict_before_any_run_is_a_clear_error(tmp_path, capsys):
  from tfx_gnn.pipelines import cli
  out = tmp_path / "out.parquet"
  assert cli.main(["predict", TINY, "--set", f"pipeline.root={tmp_path}", "--ids", "1",
                   "-o", str(out)]) == 1
  err = capsys.readouterr().err
  assert "no ML Metadata database" in err and "Traceback" not in err, err
  assert not out.exists()
