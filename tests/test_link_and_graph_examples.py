"""Link-prediction seeds and subgraphs, and whole-graph examples, without a pipeline: the
negative sampling, the hold-out of positive links from message passing, and that the examples
parse with the schema the Runner's link and graph tasks read."""
import os

import numpy as np
import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from tfx_gnn.components import graph_io
from tfx_gnn.components.subgraph_sampler import fast_sampler, links, whole_graphs

SPLIT = {"train": 0.6, "eval": 0.2, "test": 0.2}


def _citation_graph(n=60, seed=0) -> graph_io.Graph:
  """Papers with a feature `x` = their own index (so a readout can be traced back), random
  citations (no duplicates, no self-loops) and their reverse `cited_by`."""
  rng = np.random.default_rng(seed)
  pairs = {(int(a), int(b)) for a, b in rng.integers(0, n, (6 * n, 2)) if a != b}
  src, dst = (np.array(c) for c in zip(*sorted(pairs)))
  ids = np.array([f"p{i}" for i in range(n)], dtype=object)
  papers = graph_io.NodeSet(ids, {"x": np.arange(n, dtype=np.float32)[:, None],
                                  "label": (np.arange(n) % 2).astype(np.int64)})
  cites = graph_io.EdgeSet("paper", "paper", ids[src], ids[dst])
  cited_by = graph_io.EdgeSet("paper", "paper", ids[dst], ids[src], reverse_of="cites")
  return graph_io.Graph({"paper": papers}, {"cites": cites, "cited_by": cited_by},
                        {"train": ids[:40], "eval": ids[40:50], "test": ids[50:]},
                        graph_io.Label("paper", "label", 2))


def _link_set(graph, name):
  es = graph.edge_sets[name]
  return set(zip(es.sources, es.targets))


def test_negatives_are_non_links_and_the_splits_partition_the_links():
  graph = _citation_graph()
  splits = links.split_links(graph, "cites", SPLIT, negatives_per_positive=2, seed=3)
  existing = _link_set(graph, "cites")
  positives = {s: set(zip(f.source[f.label == 1], f.target[f.label == 1]))
               for s, f in splits.items()}
  assert set().union(*positives.values()) == existing  # every link, in exactly one split
  assert sum(len(p) for p in positives.values()) == len(existing)
  for split, frame in splits.items():
    negatives = frame[frame.label == 0]
    assert len(negatives) == 2 * len(positives[split])
    assert not set(zip(negatives.source, negatives.target)) & existing
    assert (negatives.source != negatives.target).all()
    # A negative keeps its positive's source: sources alone do not tell them apart.
    assert sorted(negatives.source) == sorted(2 * [s for s, _ in positives[split]])
  assert abs(len(positives["train"]) / len(existing) - 0.6) < 0.02
  again = links.split_links(graph, "cites", SPLIT, negatives_per_positive=2, seed=3)
  assert all(again[s].equals(splits[s]) for s in splits)  # reproducible from the seed


def _sampler(graph, exclude):
  from tensorflow_gnn import sampler as sampler_lib  # (sampling.py would import Beam)
  schema = graph_io.build_schema(graph)
  builder = sampler_lib.SamplingSpecBuilder(
      schema, default_strategy=sampler_lib.SamplingStrategy.RANDOM_UNIFORM).seed("paper")
  for hop in (builder.sample(4, "cites"), builder.sample(4, "cited_by")):
    hop.sample(4, "cites")
    hop.sample(4, "cited_by")
  source_spec = target_spec = builder.build()
  return fast_sampler.FastSampler(graph, source_spec, seed=0, schema=schema,
                                  target_spec=target_spec, exclude_edges=exclude)


def test_link_subgraphs_hold_out_their_own_link_and_parse_for_the_runner_task():
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tensorflow_gnn import runner
  graph = _citation_graph()
  splits = links.split_links(graph, "cites", SPLIT, negatives_per_positive=1, seed=0)
  held = pd_concat([splits["eval"], splits["test"]])
  held = held[held.label == 1]
  sampler = _sampler(graph, {"cites": (held.source.to_numpy(), held.target.to_numpy()),
                             "cited_by": (held.target.to_numpy(), held.source.to_numpy())})
  frame = splits["train"]
  examples = sampler.sample_links(frame.source, frame.target, frame.label, salt="train",
                                  link_edge_set="cites", reverse_edge_sets=["cited_by"])
  assert len(examples) == len(frame)
  spec = tfgnn.create_graph_spec_from_schema_pb(sampler.subgraph_schema())
  batch = tfgnn.parse_example(spec, tf.constant(examples))
  merged = batch.merge_batch_to_components()
  x = merged.node_sets["paper"]["x"].numpy()[:, 0].astype(int)  # node -> paper index

  def pairs(edge_set, reverse=False):
    """Per edge of the batch: (example, source paper, target paper) as paper ids."""
    es = merged.edge_sets[edge_set]
    example = np.repeat(np.arange(len(frame)), es.sizes.numpy())
    a, b = x[es.adjacency.source.numpy()], x[es.adjacency.target.numpy()]
    a, b = (b, a) if reverse else (a, b)
    return {(int(e), f"p{s}", f"p{t}") for e, s, t in zip(example, a, b)}

  message_passing = pairs("cites") | pairs("cited_by", reverse=True)
  # The readout points at each pair, and carries its label.
  readout_source = x[merged.edge_sets["_readout/source"].adjacency.source.numpy()]
  readout_target = x[merged.edge_sets["_readout/target"].adjacency.source.numpy()]
  assert [f"p{i}" for i in readout_source] == frame.source.tolist()
  assert [f"p{i}" for i in readout_target] == frame.target.tolist()
  assert merged.node_sets["_readout"]["label"].numpy().tolist() == frame.label.tolist()
  # A scored link is in neither direction of its own subgraph's message-passing edges;
  # held-out (eval/test) links are in no subgraph.
  positive = frame[frame.label == 1]
  assert len(positive) > 0
  assert not {(i, s, t) for i, s, t in zip(positive.index, positive.source, positive.target)
              } & message_passing
  assert not {(s, t) for _, s, t in message_passing} & set(zip(held.source, held.target))
  # Without the hold-out the scored links do show up: the check above can fail.
  leaky = _sampler(graph, {}).sample_links(frame.source, frame.target, frame.label, "train")
  leaky_sizes = tfgnn.parse_example(spec, tf.constant(leaky)).edge_sets["cites"].sizes
  sizes = batch.edge_sets["cites"].sizes
  assert (leaky_sizes.numpy().sum(-1) > sizes.numpy().sum(-1)).any()
  # The Runner's link task reads this structure: labels per pair, scores per pair.
  task = runner.DotProductLinkPrediction()
  _, labels = task.preprocess(merged)
  assert labels.shape == (len(frame),)
  states = merged.replace_features(node_sets={"paper": {
      tfgnn.HIDDEN_STATE: merged.node_sets["paper"]["x"]}})
  scores = task.predict(states)
  assert scores.shape == (len(frame), 1)
  expected = np.array([int(s[1:]) * int(t[1:]) for s, t in zip(frame.source, frame.target)])
  np.testing.assert_allclose(scores.numpy()[:, 0], expected)


def pd_concat(frames):
  import pandas as pd
  return pd.concat(frames, ignore_index=True)


def _collection() -> graph_io.Graph:
  """Three graphs of 3, 2 and 4 nodes; node features; edges within each graph."""
  nodes = np.array([f"n{i}" for i in range(9)], dtype=object)
  member = np.array(["g0"] * 3 + ["g1"] * 2 + ["g2"] * 4, dtype=object)
  edges = [(0, 1), (1, 2), (3, 4), (5, 6), (6, 7), (7, 8), (8, 5)]
  src, dst = (np.array(c) for c in zip(*edges))
  graphs = graph_io.NodeSet(np.array(["g0", "g1", "g2"], dtype=object),
                            {"label": np.array([0, 1, 2]),
                             "target": np.array([0.5, 1.5, 2.5], np.float32)})
  node_set = graph_io.NodeSet(nodes, {"f": np.arange(18, dtype=np.float32).reshape(9, 2)})
  return graph_io.Graph(
      {"graph": graphs, "node": node_set},
      {"edge": graph_io.EdgeSet("node", "node", nodes[src], nodes[dst]),
       "member_of": graph_io.EdgeSet("node", "graph", nodes, member)},
      {"train": np.array(["g0", "g1", "g2"], dtype=object)}, graph_io.Label("graph", "label", 3))


def test_whole_graphs_are_one_example_each_with_the_label_in_the_context():
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tensorflow_gnn import runner
  graph = _collection()
  collection = whole_graphs.GraphCollection(graph, "graph", schema=graph_io.build_schema(graph))
  spec = tfgnn.create_graph_spec_from_schema_pb(collection.subgraph_schema())
  assert set(spec.node_sets_spec) == {"node"} and set(spec.edge_sets_spec) == {"edge"}
  examples = collection.examples(["g2", "g0"])
  batch = tfgnn.parse_example(spec, tf.constant(examples))
  g2, g0 = (tfgnn.parse_single_example(spec, tf.constant(e)) for e in examples)
  assert g2.node_sets["node"].sizes.numpy().tolist() == [4]
  np.testing.assert_array_equal(g2.node_sets["node"]["f"].numpy(),
                                np.arange(10, 18, dtype=np.float32).reshape(4, 2))
  assert g2.edge_sets["edge"].adjacency.source.numpy().tolist() == [0, 1, 2, 3]
  assert g2.edge_sets["edge"].adjacency.target.numpy().tolist() == [1, 2, 3, 0]
  assert g0.edge_sets["edge"].adjacency.source.numpy().tolist() == [0, 1]
  assert g2.context["label"].numpy().tolist() == [2]
  assert g0.context["target"].numpy().tolist() == [0.5]
  # runner.GraphMulticlassClassification reads the label from the context and pools nodes.
  merged = batch.merge_batch_to_components()
  task = runner.GraphMulticlassClassification("node", num_classes=3,
                                              label_fn=runner.ContextLabelFn("label"))
  x, y = task.preprocess(merged)
  assert y.numpy().tolist() == [2, 0] and "label" not in x.context.features


def test_an_edge_across_two_graphs_is_an_error_naming_the_edge_set():
  graph = _collection()
  edge = graph.edge_sets["edge"]
  edge.sources = np.append(edge.sources, "n0")
  edge.targets = np.append(edge.targets, "n5")
  with pytest.raises(whole_graphs.CollectionError, match="edge set 'edge': edge 'n0' -> 'n5'"):
    whole_graphs.GraphCollection(graph, "graph")
  graph.edge_sets.pop("member_of")
  with pytest.raises(whole_graphs.CollectionError, match="nothing says which graph"):
    whole_graphs.GraphCollection(graph, "graph")
