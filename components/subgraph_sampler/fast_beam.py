"""The fast engine on a Beam pipeline: batches of seeds -> a DoFn that samples them.

The DoFn carries only the Graph artifact's path, the serialized SamplingSpec and the seed; its
`setup` loads the CSR engine (once per worker process, shared by the DoFn's instances), so the
sampling scales out on any Beam runner whose workers can read the artifact. Subgraphs do not
depend on how seeds are batched or spread over workers (see `fast_sampler`).

Each split's seeds are cut into shards of consecutive batches, and each shard's DoFn writes
its own file, `<prefix>-SSSSS-of-NNNNN.tfrecord`, atomically. The files' names and bytes are
then the same on every runner and worker count. (Beam's WriteToTFRecord and a ParDo with
tagged outputs cannot run on Beam's DaskRunner: see docs/data-sources.md, "Beam runners".)
"""
from __future__ import annotations

import os
import threading
from typing import Iterable

import apache_beam as beam

from tfx_gnn.components import graph_io
from tfx_gnn.components.subgraph_sampler import fast_sampler

_CACHE: dict[tuple, fast_sampler.FastSampler] = {}
_CACHE_LOCK = threading.Lock()


def load_sampler(graph_dir: str, spec_bytes: bytes, seed: int) -> fast_sampler.FastSampler:
  """The sampler of (graph, spec, seed), built once per process."""
  key = (graph_dir, spec_bytes, seed)
  with _CACHE_LOCK:
    if key not in _CACHE:
      from tensorflow_gnn import sampler as sampler_lib
      spec = sampler_lib.SamplingSpec.FromString(spec_bytes)
      _CACHE.clear()  # one graph at a time: a worker that moves on frees the previous one
      _CACHE[key] = fast_sampler.FastSampler.from_graph_dir(graph_dir, spec, seed=seed)
    return _CACHE[key]


def release_samplers() -> None:
  """Frees this process's cached samplers (the whole graph in CSR form). The SubgraphSampler
  calls it once its pipeline has run: under LocalDagRunner every later component runs in the
  same process, and at OGBN-MAG size the cached graph is gigabytes they would carry along."""
  with _CACHE_LOCK:
    _CACHE.clear()


BATCHES_PER_SHARD = 8  # batches of seeds per output file: files of a few MB at batch_size 512


class _WriteShards(beam.DoFn):
  """(split, shard, num_shards, [batches of seeds], file prefix) -> the shard's TFRecord file
  of serialized subgraphs, written atomically; yields its path. Subclasses sample a batch."""

  def examples(self, split: str, batch) -> Iterable[bytes]:
    raise NotImplementedError

  def process(self, element):
    import tensorflow as tf
    split, shard, num_shards, batches, prefix = element
    path = f"{prefix}-{shard:05d}-of-{num_shards:05d}.tfrecord"
    tmp = path + ".tmp"
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(tmp) as writer:
      for batch in batches:
        for example in self.examples(split, batch):
          writer.write(example)
    tf.io.gfile.rename(tmp, path, overwrite=True)
    yield path


class SampleBatches(_WriteShards):
  """Samples subgraphs around a batch of seed node ids."""

  def __init__(self, graph_dir: str, spec_bytes: bytes, seed: int):
    super().__init__()
    self._graph_dir = graph_dir
    self._spec_bytes = spec_bytes
    self._seed = seed
    self._sampler = None

  def setup(self):
    self._sampler = load_sampler(self._graph_dir, self._spec_bytes, self._seed)

  def examples(self, split, seed_ids):
    return self._sampler.sample(seed_ids, salt=split)


def shards(seeds: dict[str, list], batch_size: int, outputs: dict[str, str]) -> list[tuple]:
  """Each split's seeds in batches of `batch_size`, BATCHES_PER_SHARD batches to a shard:
  (split, shard, num_shards, batches, file prefix)."""
  out = []
  for split, ids in seeds.items():
    batches = [ids[i:i + batch_size] for i in range(0, len(ids), batch_size)]
    groups = [batches[i:i + BATCHES_PER_SHARD]
              for i in range(0, len(batches), BATCHES_PER_SHARD)] or [[]]
    out += [(split, i, len(groups), group, outputs[split]) for i, group in enumerate(groups)]
  return out


def _sample_splits(root: beam.Pipeline, name: str, seeds: dict[str, list], batch_size: int,
                   do_fn: _WriteShards, outputs: dict[str, str]) -> None:
  """The shape shared by every kind of seed: each split's seeds in shards of batches
  -> `do_fn`, which writes each shard's serialized GraphTensors to a TFRecord file under
  `outputs[split]` (a file prefix). One chain with no tagged outputs and no Beam sink, so
  that it runs the same on every runner (DaskRunner included)."""
  _ = (root
       | f"{name}Shards" >> beam.Create(shards(seeds, batch_size, outputs))
       | f"{name}SampleAndWrite" >> beam.ParDo(do_fn))


def add_fast_sampling(root: beam.Pipeline, *, graph_dir: str, spec, seed: int,
                      batch_size: int, outputs: dict[str, str]) -> None:
  """Adds to `root` the sampling of each split's seeds to TFRecord files of serialized
  GraphTensors at `outputs[split]` (a file prefix), with the fast engine."""
  _sample_splits(root, "Fast", {split: graph_io.read_seeds(graph_dir, split) for split in outputs},
                 batch_size, SampleBatches(graph_dir, spec.SerializeToString(), seed), outputs)


# ---------------------------------------------------------------- link prediction
_LINK_CACHE: dict[tuple, object] = {}


def load_link_sampler(graph_dir: str, link_args: tuple, seeds_dir: str):
  """The link sampler of (graph, (edge_set, fanouts, hops, seed), seeds), once per process."""
  from tfx_gnn.components.subgraph_sampler import links
  key = (graph_dir, link_args, seeds_dir)
  with _CACHE_LOCK:
    if key not in _LINK_CACHE:
      edge_set, fanouts, hops, seed = link_args
      _LINK_CACHE.clear()
      _LINK_CACHE[key] = links.LinkSampler(graph_dir, edge_set, dict(fanouts), hops, seed,
                                           seeds_dir)
    return _LINK_CACHE[key]


class SampleLinkBatches(_WriteShards):
  """Samples link subgraphs around a batch of (source, target, label) pairs."""

  def __init__(self, graph_dir: str, link_args: tuple, seeds_dir: str):
    super().__init__()
    self._args = (graph_dir, link_args, seeds_dir)
    self._sampler = None

  def setup(self):
    self._sampler = load_link_sampler(*self._args)

  def examples(self, split, rows):
    import pandas as pd
    frame = pd.DataFrame(rows, columns=["source", "target", "label"])
    return self._sampler.sample(frame, salt=split)


def add_link_sampling(root: beam.Pipeline, *, graph_dir: str, edge_set: str, fanouts: dict,
                      hops: int, seed: int, seeds_dir: str, batch_size: int,
                      outputs: dict[str, str]) -> None:
  """Adds to `root` the sampling of each split's labelled pairs (`seeds_dir/<split>.csv`,
  see `links`) to TFRecord files of serialized link subgraphs at `outputs[split]`."""
  from tfx_gnn.components.subgraph_sampler import links
  seeds = {}
  for split in outputs:
    frame = links.read_link_seeds(seeds_dir, split)
    seeds[split] = list(zip(frame.source, frame.target, frame.label.astype(float)))
  link_args = (edge_set, tuple(sorted(fanouts.items())), hops, seed)
  _sample_splits(root, "Link", seeds, batch_size,
                 SampleLinkBatches(graph_dir, link_args, seeds_dir), outputs)


# ---------------------------------------------------------------- graph collections
_COLLECTION_CACHE: dict[str, object] = {}


class WholeGraphBatches(_WriteShards):
  """Each graph of a batch of graph ids, whole, serialized."""

  def __init__(self, graph_dir: str):
    super().__init__()
    self._graph_dir = graph_dir
    self._collection = None

  def setup(self):
    from tfx_gnn.components.subgraph_sampler import whole_graphs
    with _CACHE_LOCK:
      if self._graph_dir not in _COLLECTION_CACHE:
        _COLLECTION_CACHE.clear()
        _COLLECTION_CACHE[self._graph_dir] = whole_graphs.GraphCollection.from_graph_dir(
            self._graph_dir)
      self._collection = _COLLECTION_CACHE[self._graph_dir]

  def examples(self, split, graph_ids):
    return self._collection.examples(graph_ids)


def add_whole_graphs(root: beam.Pipeline, *, graph_dir: str, batch_size: int,
                     outputs: dict[str, str]) -> None:
  """Adds to `root` the writing of each split's graphs (seeds: graph ids) as serialized
  GraphTensors at `outputs[split]` (see `whole_graphs`)."""
  _sample_splits(root, "Graph", {split: graph_io.read_seeds(graph_dir, split) for split in outputs},
                 batch_size, WholeGraphBatches(graph_dir), outputs)
