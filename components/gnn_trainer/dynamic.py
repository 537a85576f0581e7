"""Dynamic sampling (`sampling.mode: dynamic`): fresh train subgraphs every epoch, in memory.

`EpochSubgraphs` is a `tensorflow_gnn.runner.DatasetProvider` whose dataset samples one pass
over the train seeds with the fast engine (`components.subgraph_sampler.fast_sampler`) each
time it is iterated: Keras iterates the train dataset once per epoch (with the default
strategy), or the Runner repeats it (when `steps_per_epoch` is set), and either way every pass
draws new subgraphs. Pass `p` samples with salt `train/epoch-<p>` and visits the seeds in an
order drawn from (`trainer.seed`, `p`), so a pass is a function of (`sampling.seed`,
`trainer.seed`, p) only: reproducible, and independent of how the seeds are chunked or shared
out between input pipelines (each pipeline of a multi-worker strategy samples its own shard).

The fast engine samples a chunk of seeds at a time, vectorized, and writes serialized
GraphTensor tf.Examples, which the Runner parses like the batch mode's TFRecords; a generator
dataset feeds them, prefetched so that sampling overlaps training.
"""
from __future__ import annotations

import itertools
from typing import Iterator, Sequence

import numpy as np
import tensorflow as tf
from tensorflow_gnn import runner

from tfx_gnn.components import graph_io
from tfx_gnn.components.subgraph_sampler import fast_sampler


def epoch_salt(epoch: int, split: str = "train") -> str:
  """The fast engine's salt of pass `epoch` (the batch mode salts with the split's name)."""
  return f"{split}/epoch-{epoch}"


class EpochSubgraphs(runner.DatasetProvider):
  """Serialized subgraphs around `seed_ids`, sampled afresh on every pass over the dataset."""

  def __init__(self, sampler: fast_sampler.FastSampler, seed_ids: Sequence[str], *,
               shuffle_seed: int = 0, first_epoch: int = 0, chunk_size: int = 256,
               split: str = "train"):
    """`first_epoch` numbers the first pass (a resumed training continues the numbering)."""
    if len(seed_ids) == 0:
      raise ValueError(f"dynamic sampling: the {split} split has no seeds")
    self.sampler = sampler
    self.seed_ids = np.asarray(list(seed_ids), dtype=object)
    self.shuffle_seed = int(shuffle_seed)
    self.first_epoch = int(first_epoch)
    self.chunk_size = int(chunk_size)
    self.split = split
    self.recipe = None  # train_subgraphs()'s arguments, when it made this

  def __len__(self) -> int:
    return len(self.seed_ids)

  def seeds(self, epoch: int, shard: int = 0, num_shards: int = 1) -> np.ndarray:
    """The seeds of pass `epoch` for input pipeline `shard` of `num_shards`, in visiting order."""
    ids = self.seed_ids[shard::num_shards]
    rng = np.random.default_rng([self.shuffle_seed, epoch, shard, num_shards])
    return ids[rng.permutation(len(ids))]

  def sample_epoch(self, epoch: int, shard: int = 0,
                   num_shards: int = 1) -> Iterator[np.ndarray]:
    """Pass `epoch`: chunks of serialized tf.Examples (an object array of bytes each)."""
    ids = self.seeds(epoch, shard, num_shards)
    salt = epoch_salt(epoch, self.split)
    for start in range(0, len(ids), self.chunk_size):
      yield np.asarray(self.sampler.sample(ids[start:start + self.chunk_size], salt=salt),
                       dtype=object)

  def get_dataset(self, context: tf.distribute.InputContext) -> tf.data.Dataset:
    shard, num_shards = context.input_pipeline_id, context.num_input_pipelines
    # Each iterator of this dataset (one per epoch, or per repetition) calls `passes` anew; the
    # counter belongs to this dataset, so another get_dataset() (e.g. padding's) counts apart.
    epochs = itertools.count(self.first_epoch)

    def passes():
      yield from self.sample_epoch(next(epochs), shard, num_shards)

    return (tf.data.Dataset.from_generator(
        passes, output_signature=tf.TensorSpec([None], tf.string))
            .prefetch(2)
            .unbatch())


class DeferredEpochSubgraphs(runner.DatasetProvider):
  """`train_subgraphs(**recipe)`, built when its first dataset is asked for: in a worker of a
  multi-worker training, after the strategy (which must configure TF's collectives before
  any TF op runs, and loading the graph runs some)."""

  def __init__(self, recipe: dict):
    self.recipe = recipe
    self._subgraphs = None

  def __len__(self) -> int:
    return len(self.recipe["seed_ids"])

  def get_dataset(self, context: tf.distribute.InputContext) -> tf.data.Dataset:
    if self._subgraphs is None:
      self._subgraphs = train_subgraphs(**self.recipe)
    return self._subgraphs.get_dataset(context)


def fixed_subgraphs(sampler: fast_sampler.FastSampler, seed_ids: Sequence[str], salt: str,
                    chunk_size: int = 256) -> tf.data.Dataset:
  """Serialized subgraphs around `seed_ids` in their order, the same on every pass (what the
  batch mode's SubgraphSampler writes for a split when `salt` is the split's name)."""
  ids = np.asarray(list(seed_ids), dtype=object)

  def chunks():
    for start in range(0, len(ids), chunk_size):
      yield np.asarray(sampler.sample(ids[start:start + chunk_size], salt=salt), dtype=object)

  return tf.data.Dataset.from_generator(
      chunks, output_signature=tf.TensorSpec([None], tf.string)).unbatch()


def resumed_epoch(backup_dir: str) -> int:
  """The epoch at which Keras's BackupAndRestore (the Runner's KerasTrainer) resumes a
  training from `backup_dir`: one past the last completed epoch, 0 without a backup."""
  latest = tf.train.latest_checkpoint(tf.io.gfile.join(backup_dir, "chief"))
  if not latest:
    return 0
  epoch = int(tf.train.load_checkpoint(latest).get_tensor(
      "ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE"))
  return max(0, epoch + 1)


def sampling_spec(graph_dir: str, sampling_cfg):
  """The SamplingSpec of the `sampling` config on the Graph artifact at `graph_dir` (its spec
  file or text, or hops and fanouts), rooted at the labelled node set, as the
  SubgraphSampler builds it."""
  from tfx_gnn.components.subgraph_sampler import sampling
  label = graph_io.read_label(graph_dir)
  if label is None:
    raise ValueError(f"dynamic sampling: graph {graph_dir} has no labelled node set to seed "
                     "the subgraphs from")
  return sampling.spec_from_config(sampling_cfg, graph_io.read_schema(graph_dir),
                                   label.node_set)


def train_subgraphs(graph_dir: str, sampling_cfg, seed_ids: Sequence[str], *,
                    shuffle_seed: int, backup_dir: str | None = None) -> EpochSubgraphs:
  """The train dataset of a dynamic-mode training: the fast engine on the Graph artifact at
  `graph_dir` with the `sampling` config's spec and seed; resumes its epoch numbering from
  `backup_dir`."""
  sampler = fast_sampler.FastSampler.from_graph_dir(
      graph_dir, sampling_spec(graph_dir, sampling_cfg), seed=sampling_cfg.seed)
  subgraphs = EpochSubgraphs(sampler, seed_ids, shuffle_seed=shuffle_seed,
                             first_epoch=resumed_epoch(backup_dir) if backup_dir else 0,
                             chunk_size=sampling_cfg.batch_size)
  # What rebuilds it in another process (a worker of a multi-worker training, which then
  # samples its own shard of the seeds): the arguments, not the in-memory graph.
  subgraphs.recipe = {"graph_dir": graph_dir, "sampling_cfg": sampling_cfg,
                      "seed_ids": [i.item() if hasattr(i, "item") else i for i in seed_ids],
                      "shuffle_seed": shuffle_seed,
                      "backup_dir": backup_dir}
  return subgraphs
