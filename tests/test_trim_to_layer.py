"""Trim-to-layer (components/gnn_trainer/trimming.py): what the trim keeps on a hand-built
GraphTensor, and the same root states with and without it, same weights, on sampled subgraphs
of the synthetic MAG-shaped graph (the fast engine's and TF-GNN's in-memory sampler's)."""
import os

import numpy as np
import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from tfx_gnn.components import config_base
from tfx_gnn.pipelines import config as config_lib


def _two_components():
  """Component 0: root 0 -> 1 -> 2 -> 3 (a path) and 0 -> 4, 1 -> 4 (4 is 1 hop away); an
  author set reached from paper 1 (hop 2) and paper 3 (hop 4). Component 1: root 5 -> 6.
  Edges point away from the root (sources receive messages), as the samplers write them."""
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  return tfgnn.GraphTensor.from_pieces(
      node_sets={
          "paper": tfgnn.NodeSet.from_fields(
              sizes=[5, 2], features={"x": tf.range(7, dtype=tf.float32)[:, None]}),
          "author": tfgnn.NodeSet.from_fields(
              sizes=[2, 0], features={"x": tf.constant([[10.0], [11.0]])}),
          "_readout": tfgnn.NodeSet.from_fields(sizes=[1, 1])},
      edge_sets={
          "cites": tfgnn.EdgeSet.from_fields(
              sizes=[5, 1], features={"w": tf.constant([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])},
              adjacency=tfgnn.Adjacency.from_indices(("paper", [0, 1, 2, 0, 1, 5]),
                                                     ("paper", [1, 2, 3, 4, 4, 6]))),
          "writes": tfgnn.EdgeSet.from_fields(
              sizes=[2, 0], adjacency=tfgnn.Adjacency.from_indices(("paper", [1, 3]),
                                                                   ("author", [0, 1]))),
          "_readout/root": tfgnn.EdgeSet.from_fields(
              sizes=[1, 1], adjacency=tfgnn.Adjacency.from_indices(("paper", [0, 5]),
                                                                   ("_readout", [0, 1])))})


def test_root_hops_and_trim_keep_the_root_neighbourhood():
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components.gnn_trainer import trimming
  graph = trimming.RootHops(["paper"], max_hop=2)(_two_components())
  # Farther than max_hop: max_hop + 1.
  assert graph.node_sets["paper"][trimming.HOP].numpy().tolist() == [0, 1, 2, 3, 1, 0, 1]
  assert graph.node_sets["author"][trimming.HOP].numpy().tolist() == [2, 3]
  assert trimming.HOP not in graph.node_sets["_readout"].features

  one = trimming.TrimToHop(1)(graph)  # what the last of several rounds reads
  papers = one.node_sets["paper"]
  assert papers["x"].numpy().ravel().tolist() == [0, 1, 4, 5, 6]
  assert papers.sizes.numpy().tolist() == [3, 2]
  assert one.node_sets["author"].sizes.numpy().tolist() == [0, 0]
  cites = one.edge_sets["cites"]
  # Only the edges into the roots (sources: message receivers) stay, re-indexed.
  assert cites["w"].numpy().tolist() == [1.0, 4.0, 6.0]
  assert cites.adjacency.source.numpy().tolist() == [0, 0, 3]
  assert cites.adjacency.target.numpy().tolist() == [1, 2, 4]
  assert cites.sizes.numpy().tolist() == [2, 1]
  assert one.edge_sets["writes"].sizes.numpy().tolist() == [0, 0]
  # The readout structure still points at the roots.
  readout = one.edge_sets["_readout/root"]
  assert readout.adjacency.source.numpy().tolist() == [0, 3]
  assert readout.sizes.numpy().tolist() == [1, 1]
  assert tfgnn.gather_first_node(one, "paper", feature_name="x").numpy().ravel().tolist() == [
      0.0, 5.0]

  two = trimming.TrimToHop(2)(graph)
  assert two.node_sets["paper"]["x"].numpy().ravel().tolist() == [0, 1, 2, 4, 5, 6]
  assert two.node_sets["author"]["x"].numpy().ravel().tolist() == [10.0]
  # Receivers within 1 hop: 0->1, 1->2, 0->4, 1->4, 5->6, and paper 1 writes author 0.
  assert two.edge_sets["cites"]["w"].numpy().tolist() == [1.0, 2.0, 4.0, 5.0, 6.0]
  assert two.edge_sets["cites"].adjacency.target.numpy().tolist() == [1, 2, 3, 3, 5]
  assert two.edge_sets["writes"].adjacency.target.numpy().tolist() == [0]


def _model_config(**kw):
  return config_base.validate(config_lib.ModelConfig, kw)


def test_trim_to_layer_is_refused_where_it_would_change_predictions():
  from tfx_gnn.components.gnn_trainer import models
  assert models.trims_to_layer(_model_config(), root_task=True)
  # Off by default where it does not hold; an error where the config asks for it.
  assert not models.trims_to_layer(_model_config(), root_task=False)
  assert not models.trims_to_layer(_model_config(template="gcn"), root_task=True)
  assert models.trims_to_layer(_model_config(template="gcn", degree_normalization="in"), True)
  assert not models.trims_to_layer(_model_config(), root_task=True, jit_compile=True)
  assert not models.trims_to_layer(_model_config(num_rounds=1), root_task=True)
  assert not models.trims_to_layer(_model_config(trim_to_layer=False), root_task=True)
  # The executor gets the section as JSON with every default spelled out: still automatic.
  auto = _model_config(template="gcn")
  assert not models.trims_to_layer(_model_config(**auto.model_dump()), root_task=True)
  with pytest.raises(models.ModelError, match="model.trim_to_layer: true does not apply: the "
                                              "task does not read a root node"):
    models.trims_to_layer(_model_config(trim_to_layer=True), root_task=False)
  with pytest.raises(models.ModelError, match="degree_normalization 'in_out'"):
    models.trims_to_layer(_model_config(template="gcn", trim_to_layer=True), root_task=True)


def test_trim_to_layer_true_that_cannot_hold_is_a_config_error_naming_the_key():
  base = {"data": {"synthetic": {}}, "sampling": {"fanouts": {"cites": 2}}}
  with pytest.raises(config_lib.ConfigError, match="model.trim_to_layer: true does not apply: "
                                                   "trainer.jit_compile needs fixed shapes"):
    config_lib.parse_config({**base, "model": {"trim_to_layer": True},
                             "trainer": {"padding": "tight", "jit_compile": True}})
  with pytest.raises(config_lib.ConfigError, match="model.trim_to_layer: true does not apply: "
                                                   "the task does not read a root node"):
    config_lib.parse_config({**base, "model": {"trim_to_layer": True},
                             "task": {"type": "link_prediction", "edge_set": "cites"}})
  # null: simply off there.
  config_lib.parse_config({**base, "task": {"type": "link_prediction", "edge_set": "cites"}})


@pytest.fixture(scope="module")
def mag(tmp_path_factory):
  """The synthetic MAG-shaped graph (200 papers) as a Graph artifact directory."""
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.graph_ingest import ingest, synthetic
  root = tmp_path_factory.mktemp("mag")
  spec = synthetic.generate_tables(str(root / "tables"), num_papers=200, num_classes=4,
                                   feature_dim=8, seed=0)
  graph_dir = str(root / "graph")
  graph_io.write_graph(ingest.tables_to_graph(config_lib.TablesSource.model_validate(spec)),
                       graph_dir)
  return graph_io.read_graph(graph_dir), graph_io.read_schema(graph_dir), graph_io.read_label(
      graph_dir)


FANOUTS = {"cites": 4, "cited_by": 4, "written": 3, "writes": 3, "has_topic": 2, "topic_of": 2}


def _fast_subgraphs(mag, hops, fanouts=FANOUTS):
  from tfx_gnn.components.subgraph_sampler import fast_sampler, sampling
  graph, schema, label = mag
  spec = sampling.build_sampling_spec(schema, label.node_set, fanouts, hops)
  sampler = fast_sampler.FastSampler(graph, spec, seed=0, schema=schema)
  roots = graph.node_sets[label.node_set].ids[:24]
  return sampler.sample_graph_tensor(roots).merge_batch_to_components()


def _root_states(mag, graph, cfg, trim_to_layer, weights=None):
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components.gnn_trainer import models
  _, _, label = mag
  model = models.build_model_fn(cfg, label.node_set, [label.feature],
                                trim_to_layer=trim_to_layer)(graph.spec)
  if weights is not None:
    model.set_weights(weights)
  out = tf.function(lambda g: model(g, training=False))(graph)  # traced: eager is slow
  # The output graph: all nodes untrimmed; trimmed, the roots and their neighbours only.
  assert (out.node_sets[label.node_set].total_size < graph.node_sets[label.node_set].total_size
          ) == trim_to_layer
  return tfgnn.gather_first_node(out, label.node_set, feature_name=tfgnn.HIDDEN_STATE).numpy(), (
      model.get_weights())


@pytest.mark.parametrize("template,rounds", [("mt_albis", 2), ("graph_sage", 3), ("gat_v2", 2),
                                             ("hgt", 2)])
def test_trimmed_model_gives_the_untrimmed_root_states(mag, template, rounds):
  import tensorflow as tf
  tf.keras.utils.set_random_seed(0)
  cfg = _model_config(template=template, num_rounds=rounds, units=16, state_dropout_rate=0.5,
                      **({} if template == "hgt" else {"message_dim": 16}))
  graph = _fast_subgraphs(mag, hops=rounds)
  full, weights = _root_states(mag, graph, cfg, trim_to_layer=False)
  trimmed, trimmed_weights = _root_states(mag, graph, cfg, trim_to_layer=True, weights=weights)
  assert [w.shape for w in weights] == [w.shape for w in trimmed_weights]
  assert full.shape == (24, cfg.units)
  np.testing.assert_allclose(trimmed, full, rtol=1e-4, atol=1e-5)
  assert np.abs(full).sum() > 0


def test_trim_needs_no_sampler_feature_tfgnn_in_memory_subgraphs(mag):
  """TF-GNN's own in-memory sampler (no hop feature, its own node order and duplicates)."""
  import tensorflow as tf
  from tfx_gnn.components.subgraph_sampler import sampling, tfgnn_reference
  graph, schema, label = mag
  spec = sampling.build_sampling_spec(schema, label.node_set, FANOUTS, 2)
  pipeline = tfgnn_reference.sampling_pipeline(graph, schema, spec)
  subgraphs = pipeline(tfgnn_reference.ragged_roots(np.arange(16))).merge_batch_to_components()
  tf.keras.utils.set_random_seed(0)
  cfg = _model_config(units=16, message_dim=16)
  full, weights = _root_states(mag, subgraphs, cfg, trim_to_layer=False)
  trimmed, _ = _root_states(mag, subgraphs, cfg, trim_to_layer=True, weights=weights)
  np.testing.assert_allclose(trimmed, full, rtol=1e-4, atol=1e-5)


def test_gcn_on_papers_only_and_why_in_out_normalization_is_not_trimmed(mag):
  """GCN (one node set): the same root states with `in` normalization; `in_out` divides by
  the senders' degrees, which trimming lowers, so trimming would change them (and
  trims_to_layer refuses it)."""
  import tensorflow as tf
  graph = _fast_subgraphs(mag, hops=2, fanouts={"cites": 4, "cited_by": 4})
  assert list(graph.node_sets) == ["paper"]
  for normalization, same in (("in", True), ("in_out", False)):
    tf.keras.utils.set_random_seed(0)
    cfg = _model_config(template="gcn", units=16, degree_normalization=normalization)
    full, weights = _root_states(mag, graph, cfg, trim_to_layer=False)
    trimmed, _ = _root_states(mag, graph, cfg, trim_to_layer=True, weights=weights)
    assert np.allclose(trimmed, full, rtol=1e-4, atol=1e-5) == same, normalization


def test_integrated_gradients_are_the_same_with_and_without_trimming(mag):
  """The IG signature's function (ig_exporter) differentiates through the trim: the same
  attributions for every node's features, zero or not."""
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components.gnn_trainer import ig_exporter, models
  _, _, label = mag
  graph = _fast_subgraphs(mag, hops=2)
  cfg = _model_config(units=16, message_dim=16)

  def preprocess_and_model(trim_to_layer):
    inputs = tf.keras.Input(type_spec=graph.spec)
    labels = tfgnn.keras.layers.ReadoutFirstNode(node_set_name=label.node_set,
                                                 feature_name=label.feature)(inputs)
    stripped = tfgnn.keras.layers.MapFeatures(
        node_sets_fn=lambda ns, node_set_name: {
            k: v for k, v in ns.features.items() if k != label.feature})(inputs)
    preprocess = tf.keras.Model(inputs, (stripped, labels))
    model_in = tf.keras.Input(type_spec=stripped.spec)
    gnn = models.build_model_fn(cfg, label.node_set, trim_to_layer=trim_to_layer)(stripped.spec)
    root = tfgnn.keras.layers.ReadoutFirstNode(node_set_name=label.node_set,
                                               feature_name=tfgnn.HIDDEN_STATE)(gnn(model_in))
    model = tf.keras.Model(model_in, tf.keras.layers.Dense(4)(root))
    model.compile(loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return preprocess, model

  tf.keras.utils.set_random_seed(0)
  attributions = []
  weights = None
  for trim_to_layer in (False, True):
    preprocess, model = preprocess_and_model(trim_to_layer)
    if weights is None:
      weights = model.get_weights()
    model.set_weights(weights)
    ig = tf.function(ig_exporter.integrated_gradients(  # traced: eager is slow
        preprocess, model, output_name="g", random_counterfactual=False, steps=4))(graph)["g"]
    attributions.append(ig.node_sets[label.node_set]["feat"].numpy())
  np.testing.assert_allclose(attributions[1], attributions[0], rtol=1e-4, atol=1e-6)
  assert np.abs(attributions[0]).sum() > 0
