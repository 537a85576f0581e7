"""How many hops reach along a graph's relation paths: the default `sampling.hops`.

A subgraph rooted at a labelled node holds what its GNN can see. On a heterogeneous graph the
signal often sits on nodes of the labelled set that are reached *through* another node set:
papers of the same venue (paper -> venue -> paper), or, for labels on authors, the other
authors of the venue's papers (author -> paper -> venue -> paper -> author: 4 hops). Two hops
from an author stop at the author's co-authors and never see the venue's other papers.

`hops_for_relation_paths` picks the smallest number of hops such that, through every node set
that the sampled edge sets reach, nodes of the labelled set are reached again: the longest of
the shortest closed walks seed set -> ... -> X -> ... -> seed set, over every reached node set
X (a node set with no way back, e.g. a paper -> subject edge set without its reverse, counts
with the hops that reach it). Plain functions over the edge sets' endpoints, without
TensorFlow: callable on a config's tables or on a GraphSchema. At least `MIN_HOPS`.
"""
from __future__ import annotations

import collections
from typing import Iterable, Mapping, Optional

# SamplingConfig's own upper bound on hops: subgraphs grow as fanout ** hops.
MAX_HOPS = 5
# At least two hops: a homogeneous graph's own rule gives 1 (paper -cites-> paper), but
# neighbours of neighbours carry signal there too (GCN and GAT use two layers).
MIN_HOPS = 2


def _distances(adjacency: Mapping[str, set], start: str) -> dict[str, int]:
  """Shortest path lengths (in edges) from `start` along directed edges, by BFS."""
  dist = {start: 0}
  queue = collections.deque([start])
  while queue:
    node = queue.popleft()
    for nxt in sorted(adjacency.get(node, ())):
      if nxt not in dist:
        dist[nxt] = dist[node] + 1
        queue.append(nxt)
  return dist


def relation_path_lengths(edge_sets: Mapping[str, tuple[str, str]],
                          seed_node_set: str) -> dict[str, int]:
  """For each node set reachable from `seed_node_set` along `edge_sets` ({name: (source,
  target)}, sampled from source to target): the hops of the shortest closed walk from the seed
  set through it and back to the seed set, or the hops that reach it when no edge set leads
  back. The seed set itself maps to its shortest cycle (1 for paper -cites-> paper), or 0."""
  forward: dict[str, set] = collections.defaultdict(set)
  backward: dict[str, set] = collections.defaultdict(set)
  for source, target in edge_sets.values():
    forward[source].add(target)
    backward[target].add(source)
  there = _distances(forward, seed_node_set)
  back = _distances(backward, seed_node_set)  # hops from each set to the seed set
  lengths = {}
  for node_set, hops_there in there.items():
    if node_set == seed_node_set:
      # The shortest cycle through the seed set: one step out, then the way back.
      cycles = [1 + back[t] for t in forward[seed_node_set] if t in back]
      lengths[node_set] = min(cycles) if cycles else 0
    elif node_set in back:
      lengths[node_set] = hops_there + back[node_set]
    else:
      lengths[node_set] = hops_there
  return lengths


def hops_for_relation_paths(edge_sets: Mapping[str, tuple[str, str]], seed_node_set: str,
                            max_hops: int = MAX_HOPS, min_hops: int = MIN_HOPS) -> int:
  """The default `sampling.hops`: enough hops that the labelled set is reached again through
  every intermediate node set (see the module docstring), at least `min_hops` and at most
  `max_hops`."""
  lengths = relation_path_lengths(edge_sets, seed_node_set)
  return max(min_hops, min(max_hops, max(lengths.values(), default=min_hops)))


def schema_edge_sets(schema, names: Optional[Iterable[str]] = None) -> dict[str, tuple[str, str]]:
  """{name: (source, target)} of a `tfgnn.GraphSchema`'s edge sets (only `names`, e.g. the
  edge sets that `sampling.fanouts` names, when given)."""
  wanted = set(schema.edge_sets) if names is None else set(names)
  return {name: (e.source, e.target) for name, e in schema.edge_sets.items() if name in wanted}


def hops_for_schema(schema, seed_node_set: str, fanouts: Optional[Mapping[str, int]] = None,
                    max_hops: int = MAX_HOPS) -> int:
  """`hops_for_relation_paths` over the edge sets of `schema` that `fanouts` names (all of
  them without fanouts): only those are sampled."""
  return hops_for_relation_paths(schema_edge_sets(schema, fanouts), seed_node_set, max_hops)
