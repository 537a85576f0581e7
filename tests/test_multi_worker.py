"""Multi-worker training pieces (components/gnn_trainer/distributed.py): the config check, the
data sharding by InputContext, the worker arguments' round trip, and a worker that dies (the
run fails naming it; the other worker is stopped). Training with two local workers through
the pipeline is in test_trainer_pipeline.py (it reuses that module's sampled tiny graph)."""
import os
import signal
import threading
import time

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from tfx_gnn.components.gnn_trainer import config as trainer_config
from tfx_gnn.pipelines import config as config_lib

pytestmark = pytest.mark.slow  # runs pipelines, trains models or starts servers


def test_num_workers_needs_the_multi_worker_strategy_and_divides_the_batch():
  with pytest.raises(Exception, match="num_workers 2 needs strategy 'multi_worker_mirrored'"):
    config_lib.TrainerConfig(num_workers=2)
  with pytest.raises(Exception, match="batch_size 33 .* not divisible by num_workers 2"):
    config_lib.TrainerConfig(num_workers=2, strategy="multi_worker_mirrored", batch_size=33)
  with pytest.raises(config_lib.ConfigError, match="trainer.*num_workers"):
    config_lib.parse_config({"data": {"synthetic": {}}, "sampling": {"fanouts": {"cites": 1}},
                             "trainer": {"num_workers": 0}})
  assert config_lib.TrainerConfig(num_workers=2, strategy="multi_worker_mirrored").num_workers == 2


def _write_records(path, values):
  import tensorflow as tf
  with tf.io.TFRecordWriter(path) as w:
    for v in values:
      w.write(str(v).encode())


@pytest.mark.parametrize("num_files", [1, 3, 4])
def test_each_input_pipeline_reads_a_disjoint_shard_and_together_all(tmp_path, num_files):
  import tensorflow as tf
  from tfx_gnn.components.gnn_trainer import distributed
  values = list(range(50))
  files = [str(tmp_path / f"f{i}") for i in range(num_files)]
  for i, f in enumerate(files):
    _write_records(f, values[i::num_files])
  provider = distributed.ShardedTFRecordProvider(files, shuffle_filenames=True,
                                                 examples_shuffle_size=100)
  shards = [sorted(int(r.numpy()) for r in provider.get_dataset(
      tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i)))
            for i in range(2)]
  assert not set(shards[0]) & set(shards[1])
  assert sorted(shards[0] + shards[1]) == values
  assert abs(len(shards[0]) - len(shards[1])) <= 1
  single = provider.get_dataset(tf.distribute.InputContext())
  assert sorted(int(r.numpy()) for r in single) == values


@pytest.mark.parametrize("num_workers", [1, 2])
def test_a_cached_split_is_read_from_memory_after_its_first_pass(tmp_path, num_workers):
  import tensorflow as tf
  from tfx_gnn.components.gnn_trainer import distributed
  values = list(range(40))
  files = [str(tmp_path / f"f{i}") for i in range(3)]
  for i, f in enumerate(files):
    _write_records(f, values[i::3])
  provider = distributed.ShardedTFRecordProvider(files, shuffle_filenames=True,
                                                 examples_shuffle_size=100, cache=True)
  datasets = [provider.get_dataset(tf.distribute.InputContext(
      num_input_pipelines=num_workers, input_pipeline_id=i)) for i in range(num_workers)]
  first = [[int(r.numpy()) for r in ds] for ds in datasets]
  for f in files:
    os.remove(f)
  second = [[int(r.numpy()) for r in ds] for ds in datasets]  # each epoch iterates anew
  assert [sorted(s) for s in second] == [sorted(s) for s in first]
  assert sorted(sum(first, [])) == values
  assert first != second  # reshuffled from memory


def test_worker_arguments_round_trip_through_json():
  import json
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.gnn_trainer import distributed
  schema = tfgnn.GraphSchema()
  schema.node_sets["paper"].features["feat"].dtype = 1
  kwargs = {"train_files": ["a", "b"], "eval_files": [], "subgraph_schema": schema,
            "label": graph_io.Label("paper", "label", 4), "backup_dir": None,
            "trainer_cfg": config_lib.TrainerConfig(epochs=3, strategy="multi_worker_mirrored"),
            "model_cfg": trainer_config.GCNOptions(),
            "task_cfg": trainer_config.LinkPredictionOptions(edge_set="cites")}
  encoded = json.loads(json.dumps({k: distributed.encode(v) for k, v in kwargs.items()}))
  assert {k: distributed.decode(v) for k, v in encoded.items()} == kwargs
  with pytest.raises(TypeError, match="cannot pass a function"):
    distributed.encode(lambda: 0)


def _children_with_tf_config(timeout_s=60.0):
  import psutil
  deadline = time.monotonic() + timeout_s
  while time.monotonic() < deadline:
    found = {}
    for child in psutil.Process().children():
      try:
        tf_config = child.environ().get("TF_CONFIG")
      except (psutil.NoSuchProcess, psutil.AccessDenied):
        continue
      if tf_config:
        import json
        found[json.loads(tf_config)["task"]["index"]] = child
    if len(found) == 2:
      return found
    time.sleep(0.05)
  raise AssertionError("the two workers did not start")


def test_a_worker_that_dies_fails_the_run_naming_it_and_stops_the_others(tmp_path, monkeypatch):
  import tempfile
  import psutil
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.gnn_trainer import distributed
  import tensorflow_gnn as tfgnn
  trainer_cfg = config_lib.TrainerConfig(strategy="multi_worker_mirrored", num_workers=2,
                                         epochs=1, steps_per_epoch=1, batch_size=2)
  errors = []
  scratch = tmp_path / "tmp"
  scratch.mkdir()
  monkeypatch.setattr(tempfile, "tempdir", str(scratch))

  def launch():
    try:
      distributed.train(train_files=[str(tmp_path / "none")], eval_files=[],
                        subgraph_schema=tfgnn.GraphSchema(), label=graph_io.Label("p", "l", 2),
                        model_cfg=trainer_config.MtAlbisOptions(), trainer_cfg=trainer_cfg,
                        model_dir=str(tmp_path / "run"), export_dir=str(tmp_path / "model"))
    except Exception as e:
      errors.append(e)

  thread = threading.Thread(target=launch)
  thread.start()
  workers = _children_with_tf_config()
  workers[1].send_signal(signal.SIGKILL)
  thread.join(timeout=60)
  assert not thread.is_alive()
  assert len(errors) == 1 and isinstance(errors[0], distributed.WorkerError), errors
  message = str(errors[0])
  assert "training worker 1 of 2" in message and "killed by signal SIGKILL" in message, message
  assert "the other workers were stopped" in message
  for worker in workers.values():  # stopped and reaped: no orphan
    assert not psutil.pid_exists(worker.pid) or worker.status() == psutil.STATUS_ZOMBIE
  # The worker logs are kept beside the checkpoints (the message names it); no scratch left.
  assert f"({tmp_path / 'run' / 'worker-1.log'})" in message
  assert os.path.exists(tmp_path / "run" / "worker-1.log")
  assert not os.listdir(scratch)


# ------------------------------------------------------- ParameterServerStrategy (issue 22)
def test_zero_parameter_servers_is_a_config_error():
  with pytest.raises(config_lib.ConfigError,
                     match=r"trainer\.num_ps: .*0 parameter servers: strategy "
                           r"'parameter_server' needs at least one"):
    config_lib.parse_config({"data": {"synthetic": {}}, "sampling": {"fanouts": {"cites": 2}},
                             "trainer": {"strategy": "parameter_server", "num_ps": 0}})
  with pytest.raises(Exception, match="num_ps 1 needs strategy 'parameter_server'"):
    config_lib.TrainerConfig(num_ps=1)
  cfg = config_lib.TrainerConfig(strategy="parameter_server", num_ps=1, num_workers=2)
  assert (cfg.num_ps, cfg.num_workers) == (1, 2)


def _write_subgraphs(path, count=64):
  """`count` three-node subgraphs (the root first), whose root's label is its feature's sign."""
  import numpy as np
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  rng = np.random.default_rng(0)
  with tf.io.TFRecordWriter(str(path)) as writer:
    for _ in range(count):
      feat = rng.normal(0, 1, (3, 4)).astype(np.float32)
      graph = tfgnn.GraphTensor.from_pieces(
          node_sets={"paper": tfgnn.NodeSet.from_fields(sizes=[3], features={
              "feat": feat, "label": np.array([int(feat[0, 0] > 0), 0, 0], np.int64)})},
          edge_sets={"cites": tfgnn.EdgeSet.from_fields(
              sizes=[2], adjacency=tfgnn.Adjacency.from_indices(
                  ("paper", np.array([1, 2])), ("paper", np.array([0, 0]))))})
      writer.write(tfgnn.write_example(graph).SerializeToString())
  return tfgnn.create_schema_pb_from_graph_spec(graph.spec)


def test_parameter_server_strategy_trains_on_a_local_cluster_and_exports(tmp_path):
  """One coordinator, two workers and one parameter server on loopback (as TF's multi-process
  tests lay them out): a few steps, then the coordinator's export serves."""
  import psutil
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.gnn_trainer import distributed
  schema = _write_subgraphs(tmp_path / "train.tfrecord")
  _write_subgraphs(tmp_path / "eval.tfrecord", 16)
  # Servers of earlier tests (MLflow, the browser, Dask) may be this process's children too.
  children_before = {c.pid for c in psutil.Process().children(recursive=True)}
  trainer_cfg = config_lib.TrainerConfig(
      strategy="parameter_server", num_workers=2, num_ps=1, epochs=2, steps_per_epoch=3,
      batch_size=8, integrated_gradients=None)
  epochs = []
  result = distributed.train(
      train_files=[str(tmp_path / "train.tfrecord")], eval_files=[str(tmp_path / "eval.tfrecord")],
      subgraph_schema=schema, label=graph_io.Label("paper", "label", 2),
      model_cfg=trainer_config.MtAlbisOptions(units=8, message_dim=8, num_rounds=1),
      trainer_cfg=trainer_cfg, task_cfg=trainer_config.RootNodeMulticlassOptions(),
      model_dir=str(tmp_path / "run"), export_dir=str(tmp_path / "model"),
      on_epoch=lambda epoch, logs: epochs.append((epoch, logs)))
  assert [e for e, _ in epochs] == [0, 1] and "val_loss" in epochs[-1][1]
  assert len(result.history["loss"]) == 2
  # Every role ran and logged beside the checkpoints; none is left running.
  logs = {name: (tmp_path / "run" / name).read_text() for name in os.listdir(tmp_path / "run")
          if name.endswith(".log")}
  assert set(logs) == {"worker-chief-0.log", "worker-worker-0.log", "worker-worker-1.log",
                       "worker-ps-0.log"}, set(logs)
  assert "tfx-gnn ps 0 of cluster" in logs["worker-ps-0.log"]
  assert not [c for c in psutil.Process().children(recursive=True)
              if c.pid not in children_before and c.status() != psutil.STATUS_ZOMBIE]
  serve = tf.saved_model.load(str(tmp_path / "model")).signatures["serving_default"]
  examples = next(iter(tf.data.TFRecordDataset(str(tmp_path / "eval.tfrecord")).batch(4)))
  assert serve(examples=examples)["logits"].shape == (4, 2)
  del tfgnn
