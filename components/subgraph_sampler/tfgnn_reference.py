"""TF-GNN's own in-memory sampler over a Graph, the reference the fast engine is compared with.

Used by the fast engine's equivalence tests (tests/test_fast_sampler.py) and by the sampler
benchmark (benchmarks/sampler_bench.py), so both compare against the same thing: TF-GNN's
`SamplingPipeline` with one `InMemUniformEdgesSampler` per edge set and an
`InMemIndexToFeaturesAccessor` per node set with features. It is the same library code as
`create_sampling_model_from_spec` without the Keras model around it (whose symbolic
construction alone costs ~40 s on a 2-core machine). Nodes are addressed by their row index in
the Graph (its node sets' `ids` order).
"""
from __future__ import annotations

import numpy as np

from tfx_gnn.components import graph_io


def sampling_pipeline(graph: graph_io.Graph, schema, spec, *, edge_features: bool = True):
  """TF-GNN's in-memory `SamplingPipeline` for `spec` over `graph`: call it with a ragged
  [batch, 1] int64 tensor of seed row indices; it returns a batched GraphTensor. With
  `edge_features`, each edge set's features are carried into the subgraphs."""
  from tensorflow_gnn.experimental import sampler
  from tensorflow_gnn.experimental.sampler import subgraph_pipeline
  index = {n: {v: i for i, v in enumerate(s.ids)} for n, s in graph.node_sets.items()}

  def edge_sampler(op):
    e = graph.edge_sets[op.edge_set_name]
    return sampler.InMemUniformEdgesSampler(
        num_source_nodes=len(graph.node_sets[e.source_set]),
        source=np.array([index[e.source_set][x] for x in e.sources], np.int64),
        target=np.array([index[e.target_set][x] for x in e.targets], np.int64),
        edge_features=e.features if edge_features else None,
        sample_size=op.sample_size, edge_set_name=op.edge_set_name)

  def features(node_set):
    f = graph.node_sets[node_set].features
    return sampler.InMemIndexToFeaturesAccessor(f) if f else None

  return subgraph_pipeline.SamplingPipeline(schema, spec, edge_sampler, features)


def ragged_roots(roots):
  """Seed row indices as the [batch, (1)] ragged int64 tensor the pipeline takes."""
  import tensorflow as tf
  return tf.RaggedTensor.from_tensor(tf.constant(np.asarray(roots, np.int64)[:, None]))
