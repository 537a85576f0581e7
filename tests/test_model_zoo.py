"""The model zoo without a pipeline: config validation, and every template's model built from
TF-GNN's own layers on a small heterogeneous (and, for GCN, homogeneous) GraphTensor."""
import os

import numpy as np
import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from tfx_gnn.components import config_base
from tfx_gnn.pipelines import config as config_lib
from tfx_gnn.components.gnn_trainer import config as trainer_config

TEMPLATES = ("mt_albis", "graph_sage", "gat_v2", "hgt", "vanilla_mpnn",
             "multi_head_attention", "gcn")


def model_config(**kw):
  return config_base.validate(config_lib.ModelConfig, kw)


def test_an_option_of_another_template_is_an_error_naming_the_key():
  with pytest.raises(Exception, match="'attention_type' does not apply to template 'gat_v2'"):
    model_config(template="gat_v2", attention_type="multi_head")
  with pytest.raises(Exception, match="'degree_normalization' does not apply"):
    model_config(template="graph_sage", degree_normalization="in")
  with pytest.raises(Exception, match="'last_round_node_sets' does not apply to template 'hgt'"):
    model_config(template="hgt", last_round_node_sets=["paper"])
  # The same key is fine for a template it belongs to; an unknown key stays an error.
  assert model_config(template="gat_v2", num_heads=2).num_heads == 2
  # In a run config the key is named as the YAML has it (no union tag: model.gcn.units_).
  with pytest.raises(config_lib.ConfigError, match=r"\n  model\.units_: unknown key"):
    config_lib.parse_config({"data": {"synthetic": {}}, "sampling": {"fanouts": {"cites": 1}},
                             "model": {"template": "gcn", "units_": 3}})
  with pytest.raises(config_lib.ConfigError, match="model: .*'num_heads' does not apply"):
    config_lib.parse_config({"data": {"synthetic": {}}, "sampling": {"fanouts": {"cites": 1}},
                             "model": {"template": "gcn", "num_heads": 3}})
  # Even at its default value: an option of another template is never silently ignored.
  with pytest.raises(Exception, match=r"'message_dim' does not apply to template 'gcn' \(only "
                                      r"to mt_albis, graph_sage, gat_v2, vanilla_mpnn, "
                                      r"multi_head_attention\)"):
    model_config(template="gcn", message_dim=64)
  # No template: graph_sage, with the input settings the defaults study chose for it
  # (benchmarks/defaults_study.py); other templates keep the shared defaults.
  default = model_config(units=8)
  assert isinstance(default, trainer_config.GraphSageOptions)
  assert (default.feature_normalization, default.state_dropout_rate,
          default.input_dropout_rate) == ("sum", 0.5, 0.2)
  mt_albis = model_config(template="mt_albis")
  assert (mt_albis.feature_normalization, mt_albis.state_dropout_rate,
          mt_albis.input_dropout_rate) == ("none", 0.2, 0.0)
  config = config_lib.parse_config({"data": {"synthetic": {}},
                                    "sampling": {"fanouts": {"cites": 1}}})
  assert config.model == default.model_copy(update={"units": 64})


def test_each_template_is_its_own_class_holding_only_its_options():
  import pydantic
  # The class itself refuses another template's option by name (extra="forbid").
  with pytest.raises(pydantic.ValidationError, match=r"attention_type\n.*Extra inputs"):
    trainer_config.GATv2Options(attention_type="multi_head")
  assert "num_heads" not in trainer_config.GraphSageOptions.model_fields
  assert "last_round_node_sets" not in trainer_config.HGTOptions.model_fields
  # The input layer is shared: every template (and a user module) has its options.
  for cls in trainer_config.MODEL_TEMPLATES.values():
    assert issubclass(cls, trainer_config.ModelOptions)
    assert set(trainer_config.ModelOptions.model_fields) <= set(cls.model_fields)
  # A union member's JSON (what a component passes to its executor) reads back as that class,
  # and a flat YAML section still loads into it.
  gat = trainer_config.GATv2Options(num_heads=2, units=8)
  assert model_config(**gat.model_dump()) == gat
  assert config_base.validate(config_lib.ModelConfig, gat.model_dump_json()) == gat
  assert config_lib.parse_config({"data": {"synthetic": {}}, "sampling": {"fanouts": {"cites": 1}},
                                  "model": {"template": "gat_v2", "num_heads": 2, "units": 8}}
                                 ).model == gat
  with pytest.raises(Exception, match="Input tag 'gat' found using 'template' does not match"):
    model_config(template="gat")


def _graph(heterogeneous: bool, cited_by: bool = False):
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  node_sets = {"paper": tfgnn.NodeSet.from_fields(
      sizes=[4], features={"feat": tf.random.uniform([4, 5]), "#id": tf.range(4)})}
  edge_sets = {"cites": tfgnn.EdgeSet.from_fields(sizes=[3], adjacency=tfgnn.Adjacency.from_indices(
      ("paper", [0, 0, 1]), ("paper", [1, 2, 3])))}
  if cited_by:
    edge_sets["cited_by"] = tfgnn.EdgeSet.from_fields(
        sizes=[3], adjacency=tfgnn.Adjacency.from_indices(("paper", [1, 2, 3]),
                                                          ("paper", [0, 0, 1])))
  if heterogeneous:
    node_sets["author"] = tfgnn.NodeSet.from_fields(sizes=[2], features={"#id": tf.range(2)})
    edge_sets["written"] = tfgnn.EdgeSet.from_fields(
        sizes=[3], adjacency=tfgnn.Adjacency.from_indices(("paper", [0, 1, 3]),
                                                          ("author", [0, 1, 1])))
    edge_sets["writes"] = tfgnn.EdgeSet.from_fields(
        sizes=[3], adjacency=tfgnn.Adjacency.from_indices(("author", [0, 1, 1]),
                                                          ("paper", [0, 1, 3])))
  return tfgnn.GraphTensor.from_pieces(node_sets=node_sets, edge_sets=edge_sets)


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_builds_from_tf_gnn_layers_with_weights_per_set(template):
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components.gnn_trainer import models
  graph = _graph(heterogeneous=template != "gcn")
  extra = {"num_heads": 2} if template in ("gat_v2", "multi_head_attention", "hgt") else {}
  options = trainer_config.MODEL_TEMPLATES[template].model_fields
  cfg = model_config(template=template, units=8,
                     **({"message_dim": 8} if "message_dim" in options else {}), **extra)
  model = models.build_model_fn(cfg, "paper")(graph.spec)
  out = model(graph)
  assert out.node_sets["paper"][tfgnn.HIDDEN_STATE].shape == (4, 8)
  # The layers come from tensorflow_gnn.models.<template> (or its GCNConv), not our own.
  # (vanilla_mpnn is made of tfgnn.keras.layers' SimpleConv and NextStateFromConcat.)
  if template != "vanilla_mpnn":
    names = {type(layer).__module__ for layer in _all_layers(model)}
    assert any(f"tensorflow_gnn.models.{template}" in n for n in names), names
  # Separate weights per edge set: one more edge set, more weights (its own convolution).
  more = models.build_model_fn(cfg, "paper")(_graph(template != "gcn", cited_by=True).spec)
  assert len(more.trainable_weights) > len(model.trainable_weights)


# The templates that tests/test_trainer_pipeline.py does not run through the pipeline (each
# run there trains, exports and serves one template, about 35 s on 2 cores).
EXPORTED_HERE = ("gat_v2", "vanilla_mpnn", "multi_head_attention")


@pytest.mark.slow  # saves and loads a SavedModel per template
@pytest.mark.parametrize("template", EXPORTED_HERE)
def test_template_exports_as_the_trainer_does_and_serves_the_same_states(template, tmp_path):
  """The trainer's exporters save with Keras, `save_traces=False` (every layer is rebuilt
  from its config) and a traced signature on serialized subgraphs; the template's layers
  survive that and the loaded signature gives the in-memory model's states."""
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components.gnn_trainer import models
  graph = _graph(heterogeneous=template != "gcn")
  extra = {"num_heads": 2} if template in ("gat_v2", "multi_head_attention", "hgt") else {}
  options = trainer_config.MODEL_TEMPLATES[template].model_fields
  cfg = model_config(template=template, units=8,
                     **({"message_dim": 8} if "message_dim" in options else {}), **extra)
  inputs = tf.keras.Input(type_spec=graph.spec)
  states = models.build_model_fn(cfg, "paper")(graph.spec)(inputs)
  model = tf.keras.Model(inputs, states.node_sets["paper"][tfgnn.HIDDEN_STATE])

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def serve(examples):  # serialized subgraphs, as the trainer's serving signature takes
    parsed = tfgnn.parse_example(graph.spec, examples).merge_batch_to_components()
    return {"states": model(parsed)}

  tf.keras.models.save_model(model, str(tmp_path), save_format="tf", include_optimizer=False,
                             save_traces=False, signatures={"serving_default": serve})
  loaded = tf.saved_model.load(str(tmp_path)).signatures["serving_default"]
  example = tfgnn.write_example(graph).SerializeToString()
  np.testing.assert_allclose(loaded(examples=tf.constant([example]))["states"].numpy(),
                             model(graph).numpy(), rtol=1e-5, atol=1e-6)


def _all_layers(layer):
  out = [layer]
  for sub in getattr(layer, "_flatten_layers", lambda **_: [])(include_self=False):
    out.append(sub)
  return out


def test_gcn_refuses_a_heterogeneous_graph():
  from tfx_gnn.components.gnn_trainer import models
  with pytest.raises(models.ModelError, match="gcn needs a homogeneous graph"):
    models.build_model_fn(model_config(template="gcn"), "paper")(_graph(True).spec)


def test_last_round_node_sets_chooses_what_the_last_round_updates():
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components.gnn_trainer import models
  graph = _graph(True)
  cfg = model_config(template="graph_sage", units=8, num_rounds=1,
                     last_round_node_sets=["author"])
  out = models.build_model_fn(cfg, "paper")(graph.spec)(graph)
  assert out.node_sets["author"][tfgnn.HIDDEN_STATE].shape == (2, 8)
  assert out.node_sets["paper"][tfgnn.HIDDEN_STATE].shape == (4, 8)  # initial state
  with pytest.raises(models.ModelError, match="last_round_node_sets: unknown node set"):
    models.build_model_fn(model_config(last_round_node_sets=["venue"]), "paper")(graph.spec)


def test_without_id_embeddings_featureless_nodes_start_empty_and_relay_features():
  """`id_embeddings: false` (the ACM config): authors get no hashed-id embedding, so what
  reaches a paper through them is its co-authored papers' features, whatever the author ids."""
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components.gnn_trainer import models
  graph = _graph(True)
  cfg = model_config(template="graph_sage", units=8, id_embeddings=False)
  init = models.initial_states(graph.spec, cfg)(graph)
  assert init.node_sets["author"][tfgnn.HIDDEN_STATE].shape == (2, 0)
  model = models.build_model_fn(cfg, "paper")(graph.spec)
  assert not any("embed_" in w.name for w in model.weights)
  authors = graph.node_sets["author"]
  renamed = graph.replace_features(node_sets={"author": {"#id": authors["#id"] + 1000}})
  out = model(graph).node_sets["paper"][tfgnn.HIDDEN_STATE]
  np.testing.assert_allclose(out, model(renamed).node_sets["paper"][tfgnn.HIDDEN_STATE])
  # With id embeddings (the default), the author ids change the papers' states.
  with_ids = models.build_model_fn(model_config(template="graph_sage", units=8), "paper")
  with_ids = with_ids(graph.spec)
  assert any("embed_author" in w.name for w in with_ids.weights)
  assert not np.allclose(with_ids(graph).node_sets["paper"][tfgnn.HIDDEN_STATE],
                         with_ids(renamed).node_sets["paper"][tfgnn.HIDDEN_STATE])


def _subgraph_with_degrees():
  """A sampled 2-hop subgraph around paper 0 (edges point away from the root): 0->1, 0->2,
  1->0, 1->3, 2->0; node 3 is at hop 2 and the sampling kept only 1 of its 5 edges."""
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  feats = tf.constant([[1., 0.], [0., 1.], [1., 1.], [2., 0.]])
  return tfgnn.GraphTensor.from_pieces(
      node_sets={"paper": tfgnn.NodeSet.from_fields(sizes=[4], features={
          "feat": feats, "degree": tf.constant([2., 2., 1., 5.])})},
      edge_sets={"cites": tfgnn.EdgeSet.from_fields(
          sizes=[5], adjacency=tfgnn.Adjacency.from_indices(
              ("paper", [0, 0, 1, 1, 2]), ("paper", [1, 2, 0, 3, 0])))})


def test_gcn_degree_feature_normalizes_by_full_graph_degrees():
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components.gnn_trainer import models
  # Fixed initial weights: with random ones the ReLU may zero both outputs compared below.
  tf.keras.utils.set_random_seed(0)
  graph = _subgraph_with_degrees()
  cfg = model_config(template="gcn", units=3, num_rounds=1, input_projection=False,
                     degree_feature="degree")
  model = models.build_model_fn(cfg, "paper")(graph.spec)
  out = model(graph).node_sets["paper"][tfgnn.HIDDEN_STATE].numpy()
  kernel, bias = [w.numpy() for w in model.trainable_weights]
  assert kernel.shape == (2, 3)  # the raw features go into GCNConv (no projection, no degree)
  x = graph.node_sets["paper"]["feat"].numpy()
  d = np.array([2., 2., 1., 5.]) + 1  # full-graph degrees with the self-loop
  # Node 1 receives from 0 and 3 (node 3's true degree 5, not the subgraph's 1).
  for i, senders in ((0, [1, 2]), (1, [0, 3])):
    pooled = x[i] / d[i] + sum(x[j] / np.sqrt(d[i] * d[j]) for j in senders)
    np.testing.assert_allclose(out[i], np.maximum(pooled @ kernel + bias, 0), rtol=1e-5)
  # Without it, GCNConv normalizes by the subgraph's degrees: a different result at node 1.
  plain = models.build_model_fn(cfg.model_copy(update={"degree_feature": None}), "paper",
                                exclude_features=["degree"])(graph.spec)
  plain.set_weights(model.get_weights())
  assert not np.allclose(plain(graph).node_sets["paper"][tfgnn.HIDDEN_STATE].numpy()[1], out[1])


def test_gcn_degree_feature_errors_and_input_projection():
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components.gnn_trainer import models
  cfg = model_config(template="gcn", units=3, degree_feature="degree")
  with pytest.raises(models.ModelError, match="degree_feature needs one edge set"):
    models.build_model_fn(cfg, "paper")(_graph(False, cited_by=True).spec)
  with pytest.raises(models.ModelError, match="has no feature 'degree'"):
    models.build_model_fn(cfg, "paper")(_graph(False).spec)
  with pytest.raises(Exception, match="'degree_feature' does not apply to template"):
    model_config(template="graph_sage", degree_feature="degree")
  with pytest.raises(Exception, match="input_projection: false does not apply to template"):
    model_config(template="hgt", input_projection=False)
  # A linear last round (Kipf & Welling's last layer) gives negative states too; relu never.
  graph = _subgraph_with_degrees()
  linear = model_config(template="gcn", units=16, num_rounds=2, last_round_activation="linear",
                        degree_feature="degree")
  relu = linear.model_copy(update={"last_round_activation": "relu"})
  states = [models.build_model_fn(c, "paper")(graph.spec)(graph).node_sets["paper"][
      tfgnn.HIDDEN_STATE].numpy() for c in (linear, relu)]
  assert states[0].min() < 0 <= states[1].min()
  # No last-round transform: the last round only aggregates (the task head is its weights):
  # the same as a linear last round whose kernel is the identity and bias zero.
  bare = linear.model_copy(update={"last_round_transform": False})
  bare_model = models.build_model_fn(bare, "paper")(graph.spec)
  identity, = bare_model.non_trainable_weights  # the last round has nothing to train
  np.testing.assert_array_equal(identity.numpy(), np.eye(16))
  *trained, last_kernel = bare_model.get_weights()
  full_model = models.build_model_fn(linear, "paper")(graph.spec)
  full_model.set_weights(trained + [last_kernel, np.zeros(16, np.float32)])
  np.testing.assert_allclose(
      bare_model(graph).node_sets["paper"][tfgnn.HIDDEN_STATE],
      full_model(graph).node_sets["paper"][tfgnn.HIDDEN_STATE], rtol=1e-5, atol=1e-6)
  with pytest.raises(models.ModelError, match="needs model.num_rounds >= 2"):
    models.build_model_fn(bare.model_copy(update={"num_rounds": 1}), "paper")(graph.spec)
  # Without the projection, the initial state is the feature vector itself (dimension 5).
  graph = _graph(False)
  initial = models.initial_states(graph.spec, model_config(units=8, input_projection=False))
  assert initial(graph).node_sets["paper"][tfgnn.HIDDEN_STATE].shape == (4, 5)
