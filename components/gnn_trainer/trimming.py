"""Trim-to-layer (PyG's Hierarchical Neighborhood Sampling) on TF-GNN GraphTensors.

With K rounds of message passing, the root's final state depends only on the nodes that can
reach it in K steps; round r (1-based) only needs correct states for the nodes within K - r
steps of the root, which read those within K - r + 1. The untrimmed model updates every
sampled node in every round (in the last round, ~200 papers of a demo subgraph for the one
root that is read). `RootHops` computes each node's distance to the root inside the model (a
breadth-first search over the subgraph's own edges, so it needs no sampler feature and is
exact for every engine: the fast one, TF-GNN's Beam and in-memory samplers) and `TrimToHop`
drops, between rounds, the nodes and edges that no longer matter. The convolutions are TF-GNN's
own, unchanged: they see a smaller GraphTensor.

Messages flow towards `receiver_tag` (the templates use SOURCE: the sampler's edges point away
from the root), so a node's distance is the length of the shortest edge path from the root to
it, followed from the receiver to the sender side.
"""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf
import tensorflow_gnn as tfgnn

HOP = "#hop"  # per node: message-passing steps to the root (> max_hop: farther)


def _is_aux(name: str) -> bool:
  return bool(tfgnn.get_aux_type_prefix(name))


class RootHops(tf.keras.layers.Layer):
  """Adds node feature HOP: 0 for the first node of each component in `root_node_sets` (the
  root of a sampled subgraph), else the number of edges from the root, computed up to
  `max_hop`; nodes farther away get `max_hop + 1`. Auxiliary node sets (`_readout`) get
  none."""

  def __init__(self, root_node_sets: Sequence[str], max_hop: int,
               receiver_tag: tfgnn.IncidentNodeTag = tfgnn.SOURCE, **kwargs):
    super().__init__(**kwargs)
    self._root_node_sets = list(root_node_sets)
    self._max_hop = max_hop
    self._receiver_tag = receiver_tag

  def get_config(self):
    return dict(root_node_sets=self._root_node_sets, max_hop=self._max_hop,
                receiver_tag=self._receiver_tag, **super().get_config())

  def call(self, graph: tfgnn.GraphTensor) -> tfgnn.GraphTensor:
    tfgnn.check_scalar_graph_tensor(graph, name="RootHops")
    far = self._max_hop + 1
    hops = {}
    for name, node_set in graph.node_sets.items():
      if _is_aux(name):
        continue
      hop = tf.fill(tf.reshape(node_set.total_size, [1]), far)
      if name in self._root_node_sets:
        sizes = node_set.sizes
        firsts = tf.boolean_mask(tf.math.cumsum(sizes, exclusive=True), sizes > 0)
        hop = tf.tensor_scatter_nd_update(hop, tf.expand_dims(firsts, -1),
                                          tf.zeros_like(firsts, tf.int32))
      hops[name] = hop
    sender_tag = tfgnn.reverse_tag(self._receiver_tag)
    # Bellman-Ford with unit weights: after i sweeps every distance <= i is exact.
    for _ in range(self._max_hop):
      for name, edge_set in graph.edge_sets.items():
        if _is_aux(name):
          continue
        adjacency = edge_set.adjacency
        receivers = adjacency.node_set_name(self._receiver_tag)
        senders = adjacency.node_set_name(sender_tag)
        reached = tf.gather(hops[receivers], adjacency[self._receiver_tag]) + 1
        nearest = tf.math.unsorted_segment_min(
            reached, adjacency[sender_tag],
            num_segments=graph.node_sets[senders].total_size)
        hops[senders] = tf.minimum(hops[senders], nearest)
    return graph.replace_features(node_sets={
        name: {**graph.node_sets[name].features, HOP: hop} for name, hop in hops.items()})


def _keep(mask: tf.Tensor, sizes: tf.Tensor):
  """(indices of the kept items, the kept items' count per component)."""
  components = tf.repeat(tf.range(tf.size(sizes, out_type=sizes.dtype)), sizes)
  kept_sizes = tf.math.unsorted_segment_sum(tf.cast(mask, sizes.dtype), components,
                                            num_segments=tf.size(sizes))
  kept_sizes = tf.ensure_shape(kept_sizes, sizes.shape)
  return tf.squeeze(tf.where(mask), -1), kept_sizes


def _gather_features(features: dict, indices: tf.Tensor) -> dict:
  return {name: tf.gather(value, indices) for name, value in features.items()}


class TrimToHop(tf.keras.layers.Layer):
  """Keeps the nodes with HOP <= `max_hop` and the edges that deliver messages to nodes with
  HOP <= max_hop - 1 (their senders are then kept: HOP differs by at most one along an
  edge); re-indexes the adjacency and recomputes every component's sizes. Auxiliary node sets
  (`_readout`) are kept whole, with their edges to kept nodes (roots always are)."""

  def __init__(self, max_hop: int, receiver_tag: tfgnn.IncidentNodeTag = tfgnn.SOURCE,
               **kwargs):
    super().__init__(**kwargs)
    self._max_hop = max_hop
    self._receiver_tag = receiver_tag

  def get_config(self):
    return dict(max_hop=self._max_hop, receiver_tag=self._receiver_tag,
                **super().get_config())

  def call(self, graph: tfgnn.GraphTensor) -> tfgnn.GraphTensor:
    tfgnn.check_scalar_graph_tensor(graph, name="TrimToHop")
    keep, new_index, node_sets = {}, {}, {}
    for name, node_set in graph.node_sets.items():
      if HOP not in node_set.features:  # auxiliary: kept whole
        keep[name] = tf.ones(tf.reshape(node_set.total_size, [1]), tf.bool)
        node_sets[name] = node_set
        continue
      keep[name] = node_set[HOP] <= self._max_hop
      indices, sizes = _keep(keep[name], node_set.sizes)
      node_sets[name] = tfgnn.NodeSet.from_fields(
          sizes=sizes, features=_gather_features(node_set.features, indices))
    for name, mask in keep.items():
      # Old index -> new index (meaningful for kept nodes only).
      new_index[name] = tf.math.cumsum(tf.cast(mask, graph.indices_dtype), exclusive=True)
    edge_sets = {}
    for name, edge_set in graph.edge_sets.items():
      adjacency = edge_set.adjacency
      source, target = adjacency.source_name, adjacency.target_name
      mask = tf.logical_and(tf.gather(keep[source], adjacency.source),
                            tf.gather(keep[target], adjacency.target))
      if not _is_aux(name):
        receivers = adjacency.node_set_name(self._receiver_tag)
        mask = tf.logical_and(mask, tf.gather(graph.node_sets[receivers][HOP],
                                              adjacency[self._receiver_tag]) < self._max_hop)
      indices, sizes = _keep(mask, edge_set.sizes)
      edge_sets[name] = tfgnn.EdgeSet.from_fields(
          sizes=sizes, features=_gather_features(edge_set.features, indices),
          adjacency=tfgnn.Adjacency.from_indices(
              source=(source, tf.gather(new_index[source], tf.gather(adjacency.source, indices))),
              target=(target, tf.gather(new_index[target], tf.gather(adjacency.target, indices)))))
    return tfgnn.GraphTensor.from_pieces(context=graph.context, node_sets=node_sets,
                                         edge_sets=edge_sets)
