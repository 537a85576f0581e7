"""Dynamic sampling (`sampling.mode: dynamic`): the trainer samples fresh train subgraphs every
epoch from the Graph artifact, through the real pipeline (LocalDagRunner) on the tiny graph.

One module-scoped pipeline root: the classification run, then a DGI run and a two-worker run that
reuse the cached ingest, validator and sampler.
"""
import os

import pytest
import yaml

import mlflow_template
from tfx_gnn.pipelines import config as config_lib
from tfx_gnn.components import lineage
from tfx_gnn.pipelines import local_runner

pytestmark = pytest.mark.slow  # runs pipelines, trains models or starts servers

HERE = os.path.dirname(__file__)
TINY = os.path.join(HERE, "configs", "tiny.yaml")


def dynamic_config(root, task=None, trainer=None, **sections) -> config_lib.Config:
  with open(TINY) as f:
    raw = yaml.safe_load(f)
  raw["pipeline"]["root"] = str(root)
  raw["pipeline"]["name"] = "tfx-gnn-dynamic"
  raw["sampling"]["mode"] = "dynamic"
  raw["task"] = task or {}
  raw["trainer"] = {**raw["trainer"], **(trainer or {})}
  # Attribution and the run report have their own tests; here they would only add minutes.
  raw["attribution"] = {"enabled": False}
  raw["report"] = {"enabled": False}
  return config_lib.parse_config(config_lib.merge(raw, sections), "dynamic", HERE)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  root = tmp_path_factory.mktemp("dynamic")
  config = dynamic_config(root)
  mlflow_template.copy_into(config)  # not a test of MLflow's first start
  summary = local_runner.run(config)
  store = lineage.open_store(config.metadata_path)
  outputs = {ref.type: ref for r in lineage.executions(store, summary["run_id"])
             for ref in r.outputs}
  return root, config, summary, outputs


def test_dynamic_run_trains_without_a_sampled_train_split_and_serves(run):
  import tensorflow as tf
  import tensorflow_gnn  # noqa: F401  (registers GraphTensor ops)
  from tfx.utils import path_utils
  _, _, summary, outputs = run
  assert set(summary["components"].values()) == {"COMPLETE"}, summary["components"]
  examples = outputs["Examples"]
  # The sampler wrote only the fixed splits: the trainer sampled its own train subgraphs.
  assert sorted(os.listdir(examples.uri)) == ["Split-eval", "Split-test", "schema.pbtxt"]
  assert examples.properties["sampling_mode"] == "dynamic"
  assert outputs["Model"].properties["sampling_mode"] == "dynamic"
  assert summary["test_metrics"]["num_examples"] == 60
  files = tf.io.gfile.glob(os.path.join(examples.uri, "Split-test", "*"))
  batch = [r.numpy() for r in tf.data.TFRecordDataset(files).take(5)]
  model_dir = path_utils.serving_model_path(summary["model_uri"])
  logits = tf.saved_model.load(model_dir).signatures["serving_default"](
      examples=tf.constant(batch))["logits"]
  assert logits.shape == (5, 4)


def test_every_epoch_samples_fresh_subgraphs_reproducibly(run):
  import tensorflow as tf
  from tfx_gnn.components.gnn_trainer import dynamic
  from tfx_gnn.components import graph_io
  _, config, _, outputs = run
  graph_dir = outputs["tfx_gnn.Graph"].uri
  seeds = graph_io.read_seeds(graph_dir, "train")
  provider = dynamic.train_subgraphs(graph_dir, config.sampling, seeds, shuffle_seed=0)
  dataset = provider.get_dataset(tf.distribute.InputContext())
  # Keras iterates the dataset once per epoch (the Runner repeats it when steps are fixed).
  epoch0 = [x.numpy() for x in dataset]
  epoch1 = [x.numpy() for x in dataset]
  assert len(epoch0) == len(epoch1) == len(seeds) == 180
  assert len(set(epoch0) & set(epoch1)) < len(seeds) // 2  # fresh draws, not a replay
  repeated = [x.numpy() for x in provider.get_dataset(tf.distribute.InputContext()).repeat(2)]
  assert repeated == epoch0 + epoch1  # a pass is a function of the seeds and its number
  # A resumed training continues the numbering: its first pass is epoch 1.
  resumed = dynamic.EpochSubgraphs(provider.sampler, seeds, first_epoch=1,
                                   chunk_size=provider.chunk_size)
  assert [x.numpy() for x in resumed.get_dataset(tf.distribute.InputContext())] == epoch1
  # Two input pipelines (multi-worker) split the seeds between them.
  shards = [provider.seeds(0, shard, 2) for shard in (0, 1)]
  assert sorted(list(shards[0]) + list(shards[1])) == sorted(seeds)
  # TF-GNN's padding (trainer.padding) reads one pass of its own to size the batches.
  from tensorflow_gnn import runner
  import tensorflow_gnn as tfgnn
  gtspec = tfgnn.create_graph_spec_from_schema_pb(provider.sampler.subgraph_schema())
  sizes = runner.TightPadding(gtspec, provider).get_size_constraints(8)
  assert sizes.total_num_nodes["paper"] > 8


def test_interactive_explorer_samples_what_the_pipeline_samples(run):
  import tensorflow as tf
  from tfx_gnn import interactive
  _, config, _, outputs = run
  explorer = interactive.SubgraphExplorer.from_config(config)
  assert os.path.realpath(explorer.graph_dir) == os.path.realpath(outputs["tfx_gnn.Graph"].uri)
  seeds = explorer.seeds("test")
  sub = explorer.sample(seeds, salt="test")  # the SubgraphSampler salts with the split
  files = tf.io.gfile.glob(os.path.join(outputs["Examples"].uri, "Split-test", "*"))
  assert sorted(sub.examples) == sorted(r.numpy() for r in tf.data.TFRecordDataset(files))
  summary = sub.summary()
  assert list(summary.index) == seeds and (summary["nodes/paper"] >= 1).all()
  assert summary["max_hop"].max() <= config.sampling.hops
  roots = sub.nodes[sub.nodes.hop == 0]
  assert list(roots.node_id) == seeds and set(roots.node_set) == {"paper"}
  assert sub.graph_tensor().node_sets["paper"].sizes.shape[0] == len(seeds)


def test_resumed_epoch_reads_the_keras_backup(tmp_path):
  import numpy as np
  import tensorflow as tf
  from tfx_gnn.components.gnn_trainer import dynamic
  backup = str(tmp_path / "backup")
  assert dynamic.resumed_epoch(backup) == 0

  class Crash(tf.keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
      if epoch == 1:
        raise RuntimeError("crash after the backup of epoch 1")

  model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
  model.compile("sgd", "mse")
  with pytest.raises(RuntimeError, match="crash"):
    model.fit(np.zeros((4, 2)), np.zeros(4), epochs=4, verbose=0,
              callbacks=[tf.keras.callbacks.BackupAndRestore(backup), Crash()])
  assert dynamic.resumed_epoch(backup) == 2


def test_deep_graph_infomax_in_dynamic_mode_embeds_every_split(run):
  import pyarrow.parquet as pq
  root, _, _, _ = run
  # What is checked is the wiring, not the embeddings: one round of message passing (a cheaper
  # model to trace), one epoch of two steps.
  summary = local_runner.run(dynamic_config(root, task={"type": "dgi"},
                                            trainer={"epochs": 1, "steps_per_epoch": 2},
                                            model={"num_rounds": 1}))
  assert summary["components"]["GnnTrainer"] == "COMPLETE"
  assert summary["components"]["SubgraphSampler"] == "CACHED"
  table = pq.read_table(os.path.join(summary["model_uri"], "embeddings.parquet")).to_pandas()
  assert table.split.value_counts().to_dict() == {"train": 180, "eval": 60, "test": 60}


def test_dynamic_mode_is_checked():
  raw = {"data": {"synthetic": {}}, "sampling": {"fanouts": {"cites": 2}, "mode": "dynamic",
                                                 "engine": "tfgnn_beam"}}
  with pytest.raises(config_lib.ConfigError, match="sampling.*dynamic.*fast engine"):
    config_lib.parse_config(raw)
  raw["sampling"].update(mode="online", engine="fast")
  with pytest.raises(config_lib.ConfigError, match="sampling.mode"):
    config_lib.parse_config(raw)


def test_with_two_workers_each_samples_its_own_shard_of_the_seeds(run):
  """Multi-worker dynamic mode (issue 22): the recipe travels to the workers, each rebuilds
  the sampler from the Graph artifact, and the two input pipelines sample disjoint shards of
  every pass's seeds that together cover them all; then a two-worker pipeline run trains on
  them and learns."""
  import json
  import tensorflow as tf
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.gnn_trainer import distributed, dynamic
  root, config, summary, outputs = run
  graph_dir = outputs["tfx_gnn.Graph"].uri
  seeds = graph_io.read_seeds(graph_dir, "train")
  subgraphs = dynamic.train_subgraphs(graph_dir, config.sampling, seeds, shuffle_seed=0)
  rebuilt = distributed.decode(json.loads(json.dumps(distributed.encode(subgraphs))))
  assert isinstance(rebuilt, dynamic.DeferredEpochSubgraphs) and len(rebuilt) == len(subgraphs)
  shards = [list(rebuilt.get_dataset(tf.distribute.InputContext(
      num_input_pipelines=2, input_pipeline_id=i)).as_numpy_iterator()) for i in range(2)]
  rebuilt = rebuilt._subgraphs  # built by get_dataset
  assert set(rebuilt.seeds(0, 0, 2)).isdisjoint(rebuilt.seeds(0, 1, 2))
  assert sorted(map(str, [*rebuilt.seeds(0, 0, 2), *rebuilt.seeds(0, 1, 2)])) == sorted(
      map(str, seeds))
  assert sum(map(len, shards)) == len(seeds)
  # Through the pipeline: two local workers, dynamic sampling in each. On the module's root,
  # so ingest, validation and sampling are the first run's (cached); no bulk inference (the
  # first run's).
  two = dynamic_config(root, trainer={"strategy": "multi_worker_mirrored", "num_workers": 2},
                       bulk_inference={"enabled": False})
  result = local_runner.run(two)
  assert result["components"]["GnnTrainer"] == "COMPLETE", result["components"]
  assert result["components"]["SubgraphSampler"] == "CACHED", result["components"]
  ev = result["evaluation"]
  print(f"\ndynamic, two workers: test accuracy {result['test_metrics']['accuracy']:.4f} "
        f"(majority {ev['trivial']['test']['accuracy']:.4f}); one worker "
        f"{summary['test_metrics']['accuracy']:.4f}")
  assert result["test_metrics"]["accuracy"] > ev["trivial"]["test"]["accuracy"] + 0.1
  # The module's other runs train in-process: these are the two workers' logs.
  logs = [os.path.join(d, f) for d, _, files in os.walk(root) for f in files
          if f.startswith("worker-") and f.endswith(".log")]
  assert len(logs) == 2, logs
