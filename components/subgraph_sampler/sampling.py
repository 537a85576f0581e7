"""Subgraph sampling with TF-GNN's Beam sampler, one seed set per split, in one Beam pipeline.

TF-GNN's `tfgnn_sampler` has no reusable entry point (its `app_main` is a flag-driven script),
so this module composes the same library calls it makes — `get_sampling_model` ->
`create_program` -> `save_artifacts` -> `ReadAndConvertUnigraph` -> `read_seeds` ->
`executor_lib.execute` — on a pipeline that the caller owns (a TFX Beam executor's).
"""
from __future__ import annotations

from typing import Optional

import apache_beam as beam
import tensorflow as tf
import tensorflow_gnn as tfgnn
from tensorflow_gnn import sampler as sampler_lib
from tensorflow_gnn.experimental import sampler as experimental_sampler
# Imported for their side effect: they register the Beam stage executors of the program.
from tensorflow_gnn.experimental.sampler.beam import accessors  # noqa: F401
from tensorflow_gnn.experimental.sampler.beam import edge_samplers  # noqa: F401
from tensorflow_gnn.experimental.sampler.beam import executor_lib
from tensorflow_gnn.experimental.sampler.beam import sampler as beam_sampler
from tensorflow_gnn.experimental.sampler.beam import unigraph_utils

from tfx_gnn.components import graph_io
from tfx_gnn.components.subgraph_sampler import relation_paths


class SamplingSpecError(ValueError):
  """A sampling config that does not fit the graph (unknown sets, no reachable edges)."""


def build_sampling_spec(schema: tfgnn.GraphSchema, seed_node_set: str,
                        fanouts: dict[str, int],
                        hops: Optional[int]) -> sampler_lib.SamplingSpec:
  """A SamplingSpec tree: from the seeds, `hops` rounds of sampling along every outgoing edge
  set that `fanouts` names, up to its fanout (uniformly, without replacement). `hops` None:
  from the relation paths of those edge sets (`relation_paths.hops_for_schema`)."""
  if seed_node_set not in schema.node_sets:
    raise SamplingSpecError(
        f"sampling: seed node set {seed_node_set!r} is not in the graph "
        f"(node sets: {sorted(schema.node_sets)})")
  unknown = sorted(set(fanouts) - set(schema.edge_sets))
  if unknown:
    raise SamplingSpecError(
        f"sampling.fanouts: unknown edge set(s) {unknown} (edge sets: {sorted(schema.edge_sets)})")
  outgoing: dict[str, list[str]] = {}
  for name in sorted(fanouts):
    outgoing.setdefault(schema.edge_sets[name].source, []).append(name)
  if not outgoing.get(seed_node_set):
    raise SamplingSpecError(
        f"sampling.fanouts: no edge set leaves the seed node set {seed_node_set!r}; "
        f"name one of "
        f"{sorted(n for n, e in schema.edge_sets.items() if e.source == seed_node_set)}")

  if hops is None:
    hops = relation_paths.hops_for_schema(schema, seed_node_set, fanouts)
  builder = sampler_lib.SamplingSpecBuilder(
      schema, default_strategy=sampler_lib.SamplingStrategy.RANDOM_UNIFORM).seed(seed_node_set)

  def expand(step, node_set: str, hops_left: int) -> None:
    if hops_left == 0:
      return
    for edge_set in outgoing.get(node_set, []):
      expand(step.sample(fanouts[edge_set], edge_set), schema.edge_sets[edge_set].target,
             hops_left - 1)

  expand(builder, seed_node_set, hops)
  return builder.build()


def parse_sampling_spec(text: str, schema: tfgnn.GraphSchema, seed_node_set: str,
                        source: str = "sampling.spec_text") -> sampler_lib.SamplingSpec:
  """A SamplingSpec from its text format (e.g. TF-GNN's examples/mag/sampling_spec.pbtxt),
  checked against the graph: seeds from `seed_node_set`, every op on an edge set of the graph
  that starts where its inputs end."""
  from google.protobuf import text_format
  try:
    spec = text_format.Parse(text, sampler_lib.SamplingSpec())
  except text_format.ParseError as e:
    raise SamplingSpecError(f"{source}: not a SamplingSpec in text format: {e}") from None
  if spec.seed_op.node_set_name != seed_node_set:
    raise SamplingSpecError(
        f"{source}: the seed op starts from node set {spec.seed_op.node_set_name!r}; the "
        f"labelled node set (the seeds) is {seed_node_set!r}")
  node_set_of = {spec.seed_op.op_name: seed_node_set}
  for op in spec.sampling_ops:
    where = f"{source}: sampling op {op.op_name!r}"
    if op.edge_set_name not in schema.edge_sets:
      raise SamplingSpecError(f"{where}: edge set {op.edge_set_name!r} is not in the graph "
                              f"(edge sets: {sorted(schema.edge_sets)})")
    edge_set = schema.edge_sets[op.edge_set_name]
    for name in op.input_op_names:
      if name not in node_set_of:
        raise SamplingSpecError(f"{where}: input op {name!r} is not defined before it")
      if node_set_of[name] != edge_set.source:
        raise SamplingSpecError(
            f"{where}: input op {name!r} yields {node_set_of[name]!r} nodes, edge set "
            f"{op.edge_set_name!r} starts at {edge_set.source!r}")
    if op.sample_size <= 0:
      raise SamplingSpecError(f"{where}: sample_size must be > 0, got {op.sample_size}")
    node_set_of[op.op_name] = edge_set.target
  return spec


def spec_from_config(config, schema: tfgnn.GraphSchema,
                     seed_node_set: str) -> sampler_lib.SamplingSpec:
  """The SamplingSpec that a `SamplingConfig` describes: its spec text, or hops and fanouts."""
  if config.spec_text:
    return parse_sampling_spec(config.spec_text, schema, seed_node_set,
                               f"sampling.spec_file {config.spec_file}" if config.spec_file
                               else "sampling.spec_text")
  return build_sampling_spec(schema, seed_node_set, config.fanouts, config.hops)


def output_schema(sampling_model) -> tfgnn.GraphSchema:
  """The GraphSchema of the sampled subgraphs: the sampling model's output GraphTensor."""
  spec = sampling_model.output.spec._unbatch()
  return tfgnn.create_schema_pb_from_graph_spec(spec)


def build_program(schema: tfgnn.GraphSchema, spec: sampler_lib.SamplingSpec):
  """The sampling program of TF-GNN's Beam sampler, not yet saved.

  Returns (program, its TF artifacts, layers_mapping, subgraph_schema).
  """
  # The program names its stages after Keras layer names, and the executor looks for the
  # stage named exactly "sink": start from fresh layer-name counters, or a second sampling
  # model built in the same process (LocalDagRunner runs every component in one) gets
  # "sink_1" and fails.
  tf.keras.backend.clear_session()
  model, layers_mapping = beam_sampler.get_sampling_model(schema, spec)
  program, artifacts = experimental_sampler.create_program(model)
  return program, artifacts, layers_mapping, output_schema(model)


def prepare_program(schema: tfgnn.GraphSchema, spec: sampler_lib.SamplingSpec,
                    artifacts_dir: str):
  """Builds the sampling program and saves its TF artifacts (read by the Beam workers).

  Returns (program, layers_mapping, subgraph_schema).
  """
  program, artifacts, layers_mapping, subgraph_schema = build_program(schema, spec)
  tf.io.gfile.makedirs(artifacts_dir)
  beam_sampler.save_artifacts(artifacts, artifacts_dir)
  return program, layers_mapping, subgraph_schema


class _SampleSplit(beam.PTransform):
  """Samples the subgraphs of one split's seeds; a composite so each split's stages
  (`SeedKeys`, ...) get their own labels."""

  def __init__(self, program, feeds, seeds_file: str, output_prefix: str, artifacts_dir: str):
    super().__init__()
    self._program = program
    self._feeds = feeds
    self._seeds_file = seeds_file
    self._output_prefix = output_prefix
    self._artifacts_dir = artifacts_dir

  def expand(self, pbegin):
    seeds = unigraph_utils.read_seeds(pbegin, self._seeds_file)
    examples = executor_lib.execute(self._program, {"Input": seeds}, feeds=self._feeds,
                                    artifacts_path=self._artifacts_dir)
    return (examples
            | "DropExampleId" >> beam.Values()
            | "Write" >> beam.io.WriteToTFRecord(
                self._output_prefix, file_name_suffix=".tfrecord",
                coder=beam.coders.ProtoCoder(tf.train.Example)))


def add_sampling(root: beam.Pipeline, *, graph_dir: str, program, layers_mapping,
                 artifacts_dir: str, outputs: dict[str, str]) -> None:
  """Adds to `root` the sampling of each split's seeds (`graph_dir/seeds/<split>.csv`) to
  TFRecord files of serialized GraphTensors at `outputs[split]` (a file prefix).

  The graph is read once and shared by all splits.
  """
  schema = graph_io.read_schema(graph_dir)
  feeds = dict(root | "ReadGraph" >> unigraph_utils.ReadAndConvertUnigraph(schema, graph_dir))
  # Each sampling layer reads its edge set's feed under the layer's own name.
  feeds.update({layer: feeds[edge_set] for layer, edge_set in layers_mapping.items()})
  for split, prefix in outputs.items():
    _ = root | f"Sample[{split}]" >> _SampleSplit(
        program, feeds, graph_io.seeds_file(graph_dir, split), prefix, artifacts_dir)
