"""The fast sampling engine against TF-GNN's samplers on the same graph and spec.

- format: the subgraph schema equals the one read off TF-GNN's sampling model; our bytes are
  what protobuf itself serializes; TF-GNN's Beam sampler output and ours parse with one spec;
- semantics: with fanouts above every degree, sampling is deterministic and the subgraphs
  must equal TF-GNN's in-memory sampler's exactly (node sets, edges); with small fanouts, the
  distributions of subgraph sizes and per-edge-set degrees agree (KS tests, thousands of
  samples);
- invariants: root first, fanout respected, no parallel edges, every edge exists;
- reproducibility: same seed -> same bytes, whatever the batch size, runner or worker count.
"""
import glob
import json
import os

import numpy as np
import pytest

from tfx_gnn.components import graph_io

pytestmark = pytest.mark.slow  # runs pipelines, trains models or starts servers

FANOUTS = {"cites": 3, "cited_by": 3, "written": 2, "writes": 2}


@pytest.fixture(scope="module")
def mag(tmp_path_factory):
  """The synthetic MAG-shaped graph (300 papers) as a Graph artifact directory."""
  from tfx_gnn.components.graph_ingest import ingest
  from tfx_gnn.pipelines import config as config_lib
  from tfx_gnn.components.graph_ingest import synthetic
  root = tmp_path_factory.mktemp("mag")
  spec = synthetic.generate_tables(str(root / "tables"), num_papers=300, num_classes=4,
                                   feature_dim=8, seed=0)
  graph = ingest.tables_to_graph(config_lib.TablesSource.model_validate(spec))
  graph_dir = str(root / "graph")
  graph_io.write_graph(graph, graph_dir)
  return graph_dir, graph_io.read_graph(graph_dir), graph_io.read_schema(graph_dir)


def spec_for(schema, fanouts, hops=2):
  from tfx_gnn.components.subgraph_sampler import sampling
  return sampling.build_sampling_spec(schema, "paper", fanouts, hops)


def fast(mag, fanouts=FANOUTS, hops=2, seed=0):
  from tfx_gnn.components.subgraph_sampler import fast_sampler
  _, graph, schema = mag
  return fast_sampler.FastSampler(graph, spec_for(schema, fanouts, hops), seed=seed,
                                  schema=schema)


def tfgnn_in_memory(graph, schema, spec):
  """TF-GNN's in-memory sampler over `graph` (node ids are row indices), called eagerly."""
  from tfx_gnn.components.subgraph_sampler import tfgnn_reference
  pipeline = tfgnn_reference.sampling_pipeline(graph, schema, spec)
  return lambda roots: pipeline(tfgnn_reference.ragged_roots(roots))


def ragged(value) -> list[np.ndarray]:
  """A [batch, (items), ...] ragged tensor as one numpy array per batch item."""
  splits = value.row_splits.numpy()
  return np.split(value.flat_values.numpy().reshape([int(splits[-1]), -1]), splits[1:-1])


class Subgraphs:
  """A parsed batch of subgraphs as numpy: per node set the graph row index of each node
  (from `#id`, or from the unique paper feature rows), per edge set (source, target) rows."""

  def __init__(self, gt, graph):
    self.size = int(gt.shape[0])
    self.nodes = {}
    for name, ns in gt.node_sets.items():
      if name == "paper":
        by_feat = {row.tobytes(): i for i, row in
                   enumerate(graph.node_sets["paper"].features["feat"])}
        assert len(by_feat) == len(graph.node_sets["paper"])
        self.nodes[name] = [[by_feat[r.tobytes()] for r in rows] for rows in ragged(ns["feat"])]
      else:
        lookup = {v: k for k, v in enumerate(graph.node_sets[name].ids)}
        self.nodes[name] = [[k if isinstance(k, (int, np.integer)) else lookup[k.decode()]
                             for k in rows.reshape(-1)] for rows in ragged(ns["#id"])]
    self.edges = {}
    self.local_sources = {}
    for name, es in gt.edge_sets.items():
      src, tgt = es.adjacency.source_name, es.adjacency.target_name
      sources = [r.reshape(-1) for r in ragged(es.adjacency.source)]
      targets = [r.reshape(-1) for r in ragged(es.adjacency.target)]
      self.local_sources[name] = sources
      self.edges[name] = [[(self.nodes[src][i][a], self.nodes[tgt][i][b])
                           for a, b in zip(sources[i], targets[i])] for i in range(self.size)]


def graph_edges(graph, name):
  e = graph.edge_sets[name]
  index = {n: {v: i for i, v in enumerate(s.ids)} for n, s in graph.node_sets.items()}
  return set(zip((index[e.source_set][x] for x in e.sources),
                 (index[e.target_set][x] for x in e.targets)))


# ------------------------------------------------------------------ format
def test_bytes_are_protobufs_own_serialization(mag):
  import tensorflow as tf
  _, graph, _ = mag
  for example in fast(mag).sample(graph.splits["test"][:20]):
    assert tf.train.Example.FromString(example).SerializeToString(deterministic=True) == example


def test_edge_and_string_features_are_carried(tmp_path):
  """Edge features, string node features and integer features keep their values."""
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components.subgraph_sampler import fast_sampler
  from tfx_gnn.components.subgraph_sampler import sampling
  ids = np.array(["p0", "p1", "p2"], dtype=object)
  cites = graph_io.EdgeSet("paper", "paper", ids[[0, 0, 1]], ids[[1, 2, 2]],
                           {"weight": np.array([0.5, -1.0, 2.0], np.float32),
                            "kind": np.array([3, -4, 5])})
  graph = graph_io.Graph(
      {"paper": graph_io.NodeSet(ids, {"name": np.array(["a", "bé", ""], dtype=object),
                                       "year": np.array([2001, -7, 2020])})},
      {"cites": cites}, {"train": ids}, graph_io.Label("paper", "year", 2))
  graph_io.write_graph(graph, str(tmp_path))
  schema = graph_io.read_schema(str(tmp_path))
  spec = sampling.build_sampling_spec(schema, "paper", {"cites": 5}, 2)
  sampler = fast_sampler.FastSampler.from_graph_dir(str(tmp_path), spec)
  theirs = tfgnn_in_memory(graph_io.read_graph(str(tmp_path)), schema, spec)([0])
  assert sampler.subgraph_schema() == tfgnn.create_schema_pb_from_graph_spec(
      theirs.spec._unbatch())
  gt = sampler.sample_graph_tensor(["p0"])
  papers = gt.node_sets["paper"]
  assert [v.decode() for v in papers["name"][0].numpy()] == ["a", "bé", ""]
  assert list(papers["year"][0].numpy()) == [2001, -7, 2020]
  edges = gt.edge_sets["cites"]
  assert list(edges["weight"][0].numpy()) == [0.5, -1.0, 2.0]
  assert list(edges["kind"][0].numpy()) == [3, -4, 5]
  assert list(edges.adjacency.source[0].numpy()) == [0, 0, 1]
  assert list(edges.adjacency.target[0].numpy()) == [1, 2, 2]


# ------------------------------------------------------------------ semantics
def test_full_fanout_equals_tfgnn_in_memory_sampler(mag):
  """Fanouts above every degree: no randomness, so the subgraphs must be TF-GNN's."""
  _, graph, schema = mag
  fanouts = {"cites": 1000, "cited_by": 1000, "written": 1000, "writes": 1000}
  spec = spec_for(schema, fanouts)
  num_papers = len(graph.node_sets["paper"])
  ours = Subgraphs(fast(mag, fanouts).sample_graph_tensor(graph.node_sets["paper"].ids), graph)
  theirs = Subgraphs(tfgnn_in_memory(graph, schema, spec)(np.arange(num_papers)), graph)
  root_not_first = 0
  for i in range(num_papers):
    assert ours.nodes["paper"][i][0] == i  # the root comes first
    root_not_first += theirs.nodes["paper"][i][0] != i
    for name in ("paper", "author"):
      assert sorted(ours.nodes[name][i]) == sorted(theirs.nodes[name][i]), (i, name)
    for name in fanouts:
      assert sorted(ours.edges[name][i]) == sorted(theirs.edges[name][i]), (i, name)
  # TF-GNN's samplers do not always put the root first (see fast_sampler's docstring).
  assert root_not_first > 0


def test_node_order_is_first_appearance_root_first(mag):
  """Nodes are listed as TF-GNN lists them: first appearance over the edge sets (in order of
  their first sampling op; sources, then targets), except that the root comes first."""
  _, graph, schema = mag
  spec = spec_for(schema, FANOUTS)
  edge_set_order = list(dict.fromkeys(op.edge_set_name for op in spec.sampling_ops))
  papers = graph.node_sets["paper"].ids
  sub = Subgraphs(fast(mag).sample_graph_tensor(papers), graph)
  for i in range(len(papers)):
    expected = {"paper": [i], "author": []}
    for name in edge_set_order:
      e = graph.edge_sets[name]
      expected[e.source_set] += [a for a, _ in sub.edges[name][i]]
      expected[e.target_set] += [b for _, b in sub.edges[name][i]]
    for name, order in expected.items():
      assert sub.nodes[name][i] == list(dict.fromkeys(order)), (i, name)


def subgraph_statistics(gt, edge_sets) -> dict[str, np.ndarray]:
  """Per subgraph: node and edge counts; per sampled source node: its out-degree."""
  stats = {f"nodes/{n}": gt.node_sets[n].sizes.numpy().reshape(-1) for n in gt.node_sets}
  for name in edge_sets:
    es = gt.edge_sets[name]
    stats[f"edges/{name}"] = es.sizes.numpy().reshape(-1)
    degrees = [np.unique(s, return_counts=True)[1] for s in ragged(es.adjacency.source)]
    stats[f"degree/{name}"] = np.concatenate(degrees)
  return stats


def test_distributions_agree_with_tfgnn_in_memory_sampler(mag):
  """Random regime (small fanouts): KS tests on subgraph sizes and per-edge-set degrees over
  3,000 subgraphs from each sampler."""
  import tensorflow as tf
  from scipy import stats
  _, graph, schema = mag
  spec = spec_for(schema, FANOUTS)
  num_papers = len(graph.node_sets["paper"])
  roots = np.tile(np.arange(num_papers), 10)
  ours = fast(mag, seed=7).sample_graph_tensor(graph.node_sets["paper"].ids[roots])
  tf.random.set_seed(0)
  theirs = tfgnn_in_memory(graph, schema, spec)(roots)
  ours_stats = subgraph_statistics(ours, FANOUTS)
  their_stats = subgraph_statistics(theirs, FANOUTS)
  assert ours_stats.keys() == their_stats.keys()
  for key in ours_stats:
    result = stats.ks_2samp(ours_stats[key], their_stats[key])
    assert result.pvalue > 1e-3, (key, result, ours_stats[key].mean(), their_stats[key].mean())
  # ... and sampling is really random: the subgraphs of one root differ across repeats.
  sizes = ours.node_sets["paper"].sizes.numpy().reshape(-1)
  assert len({tuple(sizes[roots == r]) for r in range(20)}) > 1


# ------------------------------------------------------------------ invariants
def test_root_first_fanout_respected_edges_exist(mag):
  _, graph, schema = mag
  papers = graph.node_sets["paper"].ids
  real = {name: graph_edges(graph, name) for name in FANOUTS}
  degree = {name: np.bincount([a for a, _ in real[name]],
                              minlength=len(graph.node_sets[graph.edge_sets[name].source_set]))
            for name in FANOUTS}
  # One hop: every edge set leaving the root gets exactly min(degree, fanout) edges.
  one_hop = Subgraphs(fast(mag, hops=1).sample_graph_tensor(papers), graph)
  for i in range(len(papers)):
    for name in ("cites", "cited_by", "written"):
      sources = one_hop.local_sources[name][i]
      assert len(sources) == min(degree[name][i], FANOUTS[name]), (i, name)
      assert (sources == 0).all()
  # Two hops: root first, unique nodes, edges exist, no parallel edges, out-degree within the
  # fanout per time a node was sampled from (at most once per op of the edge set).
  spec = spec_for(schema, FANOUTS)
  ops_per_edge_set = {n: sum(op.edge_set_name == n for op in spec.sampling_ops) for n in FANOUTS}
  sub = Subgraphs(fast(mag).sample_graph_tensor(np.tile(papers, 3)), graph)
  for i in range(sub.size):
    assert sub.nodes["paper"][i][0] == i % len(papers)
    for nodes in sub.nodes.values():
      assert len(set(nodes[i])) == len(nodes[i])
    for name in FANOUTS:
      edges = sub.edges[name][i]
      assert len(set(edges)) == len(edges), (i, name)
      assert set(edges) <= real[name], (i, name)
      out_degree = np.bincount(sub.local_sources[name][i])
      assert out_degree.max(initial=0) <= FANOUTS[name] * ops_per_edge_set[name]


# ------------------------------------------------------------------ reproducibility
def test_same_seed_same_bytes_whatever_the_batch(mag):
  from tfx_gnn.components.subgraph_sampler import fast_sampler
  _, graph, _ = mag
  seeds = list(graph.node_sets["paper"].ids)
  sampler = fast(mag, seed=3)
  whole = sampler.sample(seeds, salt="train")
  assert sampler.sample(seeds, salt="train") == whole
  for batch in (1, 7, 64):
    batched = []
    for i in range(0, len(seeds), batch):
      batched += sampler.sample(seeds[i:i + batch], salt="train")
    assert batched == whole, batch
  assert sampler.sample(seeds[::-1], salt="train") == whole[::-1]
  assert fast(mag, seed=3).sample(seeds, salt="train") == whole  # a fresh engine
  assert fast(mag, seed=4).sample(seeds, salt="train") != whole
  assert sampler.sample(seeds, salt="eval") != whole
  with pytest.raises(fast_sampler.FastSamplerError, match="not in node set 'paper'.*'nope'"):
    sampler.sample(["nope"])


def run_examples_executor(mag, tmp_path, sampling: dict, beam_args, split_counts):
  """The SubgraphSampler's executor on real artifacts; returns (examples uri, records by split)."""
  import tensorflow as tf
  from tfx.dsl.components.base import base_beam_executor
  from tfx.types import standard_artifacts
  from tfx_gnn.components import types
  from tfx_gnn.components.subgraph_sampler import executor
  from tfx_gnn.pipelines.config import SamplingConfig
  graph_dir, _, _ = mag
  graph = types.Graph()
  graph.uri = graph_dir
  graph.set_string_custom_property("split_counts", json.dumps(split_counts))
  examples = standard_artifacts.Examples()
  examples.uri = str(tmp_path)
  context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=beam_args,
                                                        tmp_dir=str(tmp_path / ".tmp"))
  executor.Executor(context).Do(
      {"graph": [graph], "anomalies": []}, {"examples": [examples]},
      {"sampling_config": SamplingConfig(**sampling).model_dump_json()})
  records = {}
  for split in split_counts:
    files = glob.glob(os.path.join(str(tmp_path), f"Split-{split}", "*.tfrecord"))
    records[split] = [r for f in files for r in tf.data.TFRecordDataset(f).as_numpy_iterator()]
  return examples, records


BEAM_ARGS = ["--runner=FnApiRunner", "--direct_num_workers=1", "--sdk_container_image=unused"]


def test_component_output_is_independent_of_workers_and_batches(mag, tmp_path):
  """The executor's fast engine on Beam: 1 worker and batches of 256 == 2 threads and batches
  of 7 == the in-memory API."""
  _, graph, _ = mag
  counts = {s: len(v) for s, v in graph.splits.items()}
  sampling = {"fanouts": FANOUTS, "seed": 5}
  examples, one = run_examples_executor(mag, tmp_path / "a", sampling, BEAM_ARGS, counts)
  _, two = run_examples_executor(
      mag, tmp_path / "b", {**sampling, "batch_size": 7},
      ["--runner=FnApiRunner", "--direct_num_workers=2",
       "--direct_running_mode=multi_threading", "--sdk_container_image=unused"], counts)
  sampler = fast(mag, seed=5)
  for split, ids in graph.splits.items():
    assert len(one[split]) == len(ids)
    assert sorted(one[split]) == sorted(two[split]) == sorted(sampler.sample(ids, salt=split))
  assert examples.get_string_custom_property("sampling_engine") == "fast"
  assert os.path.exists(os.path.join(examples.uri, "schema.pbtxt"))


def test_tfgnn_beam_engine_output_parses_with_the_same_spec(mag, tmp_path):
  """TF-GNN's Beam sampler through the same executor (`engine: tfgnn_beam`), on the test
  split: its subgraphs and ours parse with one GraphTensorSpec and look alike."""
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from scipy import stats
  _, graph, _ = mag
  # Both node sets, both hops, two edge sets: TF-GNN builds and saves a Keras model per
  # stage of its Beam program (with all four edge sets, 34 models: 93 s of the test's 157 s;
  # with cites as well, 48 s of call here; with these two, 34 s).
  fanouts = {"written": 2, "writes": 2}
  examples, beam_records = run_examples_executor(
      mag, tmp_path, {"fanouts": fanouts, "engine": "tfgnn_beam"}, BEAM_ARGS,
      {"test": len(graph.splits["test"])})
  beam_schema = graph_io.read_schema_file(os.path.join(examples.uri, "schema.pbtxt"))
  sampler = fast(mag, fanouts)
  assert beam_schema == sampler.subgraph_schema()
  spec = tfgnn.create_graph_spec_from_schema_pb(beam_schema)
  seeds = graph.splits["test"]
  our_records = sampler.sample(np.tile(seeds, 10))
  theirs = tfgnn.parse_example(spec, tf.constant(beam_records["test"]))
  ours = tfgnn.parse_example(spec, tf.constant(our_records))
  assert theirs.spec == tfgnn.parse_example(spec, tf.constant(our_records[:len(seeds)])).spec
  assert len(beam_records["test"]) == len(seeds)
  parsed = Subgraphs(theirs, graph)
  for name in fanouts:
    real = graph_edges(graph, name)
    for edges in parsed.edges[name]:
      assert set(edges) <= real
  for key, values in subgraph_statistics(theirs, fanouts).items():
    result = stats.ks_2samp(values, subgraph_statistics(ours, fanouts)[key])
    assert result.pvalue > 1e-3, (key, result)
