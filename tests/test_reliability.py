"""Atomic outputs and resource bounds: a reader polling the serving directory during pushes
never sees a partial version; executors publish their outputs whole or not at all; a graph
too large for memory is refused at ingest with a message naming the table."""
import os
import shutil
import threading

import pytest

from tfx_gnn.components import publish
from tfx_gnn.components.graph_ingest import ingest
from tfx_gnn.components.pusher import executor as pusher_executor
from tfx_gnn.pipelines import config as config_lib

pytestmark = pytest.mark.slow  # runs pipelines, trains models or starts servers


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
  """A real SavedModel, large enough (~24 MB of variables) that copying it takes a while."""
  import tensorflow as tf
  path = str(tmp_path_factory.mktemp("model") / "saved_model")
  module = tf.Module()
  module.weights = [tf.Variable(tf.random.normal([1000, 1000])) for _ in range(6)]
  module.serve = tf.function(lambda x: x @ module.weights[0],
                             input_signature=[tf.TensorSpec([None, 1000])])
  tf.saved_model.save(module, path)
  return path


def _listing(directory: str) -> dict[str, int]:
  out = {}
  for parent, _, files in os.walk(directory):
    for name in files:
      full = os.path.join(parent, name)
      out[os.path.relpath(full, directory)] = os.path.getsize(full)
  return out


def _poll(serving: str, expected: dict, stop: threading.Event, seen: dict, partial: list):
  """Reads every visible version as a model server would; records any that is not whole.
  Once stopped, it looks one last time."""
  while True:
    done = stop.is_set()
    if done and not os.path.isdir(serving):
      break
    if not os.path.isdir(serving):
      continue
    for version in os.listdir(serving):
      if version.startswith("."):
        continue  # hidden: not a version (TF Serving ignores it too)
      try:
        listing = _listing(os.path.join(serving, version))
      except FileNotFoundError:
        continue
      if listing != expected:
        partial.append((version, len(listing)))
      else:
        seen[version] = True
    if done:
      break


def _push_while_polling(serving: str, model: str, push) -> tuple[dict, list]:
  expected = _listing(model)
  stop, seen, partial = threading.Event(), {}, []
  reader = threading.Thread(target=_poll, args=(serving, expected, stop, seen, partial))
  reader.start()
  try:
    for _ in range(3):
      push()
  finally:
    stop.set()
    reader.join()
  return seen, partial


def test_a_reader_polling_the_serving_directory_never_sees_a_partial_version(
    saved_model, tmp_path):
  serving = str(tmp_path / "serving")
  seen, partial = _push_while_polling(
      serving, saved_model, lambda: pusher_executor.publish(saved_model, serving))
  assert partial == []
  assert len(seen) == 3  # the reader saw every version, whole
  assert sorted(os.listdir(serving)) == sorted(seen)  # no staging directory left behind


def test_the_polling_reader_catches_a_non_atomic_copy(saved_model, tmp_path):
  """The same reader against a plain copy into the version directory: it sees partial
  versions, so the test above can fail."""
  from tfx.utils import io_utils
  serving = str(tmp_path / "serving")
  versions = iter(range(1, 100))
  _, partial = _push_while_polling(
      serving, saved_model,
      lambda: io_utils.copy_dir(saved_model, os.path.join(serving, str(next(versions)))))
  assert partial


def test_concurrent_publishers_get_distinct_whole_versions(saved_model, tmp_path):
  serving = str(tmp_path / "serving")
  results = []
  threads = [threading.Thread(target=lambda: results.append(
      publish.publish_new_version(
          lambda staging: shutil.copytree(saved_model, staging),
          serving, first_version=1000))) for _ in range(4)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert sorted(v for _, v in results) == ["1000", "1001", "1002", "1003"]
  for path, _ in results:
    assert _listing(path) == _listing(saved_model)
  assert sorted(os.listdir(serving)) == ["1000", "1001", "1002", "1003"]


class _Executor:
  """A TFX-style executor: writes into its output artifact's URI."""

  def __init__(self, fail: bool):
    self.fail = fail

  def Do(self, input_dict, output_dict, exec_properties):
    del input_dict, exec_properties
    artifact = output_dict["out"][0]
    self.seen_uri = artifact.uri
    with open(os.path.join(artifact.uri, "part-1"), "w") as f:
      f.write("written")
    if self.fail:
      raise RuntimeError("crashed half way")
    artifact.set_int_custom_property("rows", 1)


def _output(tmp_path):
  from tfx.types import standard_artifacts
  artifact = standard_artifacts.Examples()
  artifact.uri = str(tmp_path / "Component" / "out" / "7")
  os.makedirs(artifact.uri)  # as TFX's launcher creates it before Do
  return artifact


def test_atomic_outputs_publish_whole_directories_by_rename(tmp_path):
  wrapped = publish.atomic_outputs(type("E", (_Executor,), {}))(fail=False)
  artifact = _output(tmp_path)
  final = artifact.uri
  wrapped.Do({}, {"out": [artifact]}, {})
  assert wrapped.seen_uri == os.path.join(os.path.dirname(final), ".7.incomplete")
  assert publish.final_path(wrapped.seen_uri) == final
  assert artifact.uri == final and os.listdir(final) == ["part-1"]
  assert artifact.get_int_custom_property("rows") == 1
  assert os.listdir(os.path.dirname(final)) == ["7"]


def test_atomic_outputs_leave_nothing_when_the_executor_fails(tmp_path):
  wrapped = publish.atomic_outputs(type("E", (_Executor,), {}))(fail=True)
  artifact = _output(tmp_path)
  final = artifact.uri
  with pytest.raises(RuntimeError):
    wrapped.Do({}, {"out": [artifact]}, {})
  assert artifact.uri == final
  assert os.listdir(final) == []  # TFX's launcher then removes the empty output directory
  assert os.listdir(os.path.dirname(final)) == ["7"]


# ---------------------------------------------------------------- resource bounds
def _tables(tmp_path, big_file_bytes: int = 0):
  from test_bad_input import make_config
  config = make_config(tmp_path)
  if big_file_bytes:
    with open(os.path.join(config.data.tables.directory, "cites.csv"), "r+b") as f:
      f.truncate(big_file_bytes)  # sparse: the size without the disk
  return config


def test_ingest_refuses_tables_larger_than_the_memory_limit(tmp_path):
  config = _tables(tmp_path)
  with pytest.raises(ingest.IngestError) as info:
    ingest.ingest(config.data, str(tmp_path / "out"), str(tmp_path / "scratch"),
                  memory_limit_gb=1e-6)
  message = str(info.value)
  assert "pipeline.memory_limit_gb" in message and "GB" in message
  assert os.path.join(config.data.tables.directory, "papers.csv") in message  # the largest
  assert not os.path.exists(tmp_path / "out")


def test_ingest_refuses_a_graph_larger_than_the_available_memory(tmp_path):
  available = ingest.available_memory_bytes()
  config = _tables(tmp_path, big_file_bytes=available)  # x4 once parsed: cannot fit
  with pytest.raises(ingest.IngestError) as info:
    ingest.ingest(config.data, str(tmp_path / "out"), str(tmp_path / "scratch"))
  message = str(info.value)
  assert "cites.csv" in message and "available" in message
  assert "pipeline.memory_limit_gb" in message  # how to override


def test_a_graph_within_the_limit_is_ingested(tmp_path):
  config = _tables(tmp_path)
  graph = ingest.ingest(config.data, str(tmp_path / "out"), str(tmp_path / "scratch"),
                        memory_limit_gb=1.0)
  assert len(graph.node_sets["paper"]) == 12


def test_the_pipeline_fails_at_ingest_on_the_memory_limit(tmp_path):
  from test_bad_input import run_and_expect_failure
  config = _tables(tmp_path)
  config = config_lib.parse_config(config_lib.merge(
      config_lib.to_dict(config), {"pipeline": {"memory_limit_gb": 1e-6}}))
  run_and_expect_failure(config, "papers.csv", "pipeline.memory_limit_gb")


def test_fast_sampler_refuses_a_graph_over_the_memory_limit(tmp_path):
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.subgraph_sampler import fast_sampler
  config = _tables(tmp_path)
  graph_dir = str(tmp_path / "graph")
  ingest.ingest(config.data, graph_dir, str(tmp_path / "scratch"), memory_limit_gb=1.0)
  schema = graph_io.read_schema(graph_dir)
  fast_sampler.check_graph_fits(graph_dir, schema, 1.0)  # fits
  with pytest.raises(ingest.IngestError) as info:
    fast_sampler.check_graph_fits(graph_dir, schema, 1e-6)
  message = str(info.value)
  assert "fast sampler" in message and graph_dir in message
  assert "pipeline.memory_limit_gb" in message


# ---------------------------------------------------------------- concurrency on SQLite
@pytest.mark.slow
def test_two_runs_from_scratch_at_once_on_the_sqlite_defaults_both_succeed(tmp_path):
  """The embedded defaults (ML Metadata and MLflow each in a SQLite file) and two runs started
  at once on an empty root: both create the databases, sample, train and push. (MLflow's
  migrations, run by both on the empty store at once, failed one run with "Online migration
  expected to match one row": tracking.prepare now creates the tables under a file lock.)"""
  import time
  import reliability_support as support
  from mlflow.tracking import MlflowClient
  from tfx_gnn.components import lineage
  # Attribution, bulk inference and the run report off: they have their own tests, and here
  # would only add their steps (and the integrated-gradients export) to both runs on 2 cores.
  config = support.write_config(str(tmp_path / "conc.yaml"),
                                pipeline={"name": "sqlite-conc", "root": str(tmp_path)},
                                attribution={"enabled": False},
                                bulk_inference={"enabled": False}, report={"enabled": False},
                                # One round of message passing: a cheaper model to trace (an
                                # in-process tiny run 8.0 against 11.4 CPU s; eval
                                # 0.57-0.58 against the gate's 0.355, two rounds 0.73).
                                model={"num_rounds": 1})
  start = time.time()
  runs = [support.Run(config, str(tmp_path / f"run{i}.log")) for i in (1, 2)]
  codes = [run.wait() for run in runs]
  print(f"\ntwo tiny runs at once on SQLite: {time.time() - start:.1f} s wall, exit codes {codes}")
  assert codes == [0, 0], [run.output()[-4000:] for run in runs]
  pushed = []
  for run in runs:
    assert "the run failed" not in run.output()
    pushed.append(run.output().split("pushed model: ", 1)[1].split()[0])
  assert len(set(pushed)) == 2, pushed  # each its own version
  assert sorted(support.serving_versions(str(tmp_path / "serving"))) == sorted(
      os.path.basename(p) for p in pushed)
  store = lineage.open_store(str(tmp_path / "metadata.sqlite"))
  states = support.run_states(store, "sqlite-conc")
  assert len(states) == 2 and all(s["Pusher"] == "COMPLETE" for s in states), states
  assert "COMPLETE" in {s["SubgraphSampler"] for s in states}  # sampled, not from a cache
  assert lineage.check_live_artifacts(store) == []
  client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
  assert len(client.search_model_versions("name='sqlite-conc'")) == 2
  experiment = client.get_experiment_by_name("sqlite-conc")
  trainer_runs = client.search_runs([experiment.experiment_id],
                                    "tags.`tfx.component` = 'GnnTrainer'")
  assert [r.info.status for r in trainer_runs] == ["FINISHED", "FINISHED"]
  for run in trainer_runs:  # each run's own metrics, every epoch, none of the other's
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
    assert sorted(steps) == list(range(int(run.data.params["trainer.epochs"]))), steps
