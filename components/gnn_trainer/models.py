"""The model zoo: `ModelConfig.template` -> a Keras model built from TF-GNN's own layers.

Every template (a ModelOptions class in config.py) stacks `num_rounds` graph updates of one
`tensorflow_gnn.models.*` family on the initial node states; each update has separate weights
per node set and per edge set (TF-GNN's GraphUpdate builders make one convolution per edge
set, one next-state per node set).
Messages flow towards the edges' SOURCE: the sampler's edges point away from the root.
Template `custom` stacks a user module's model body on the same input layer instead.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import tensorflow as tf
import tensorflow_gnn as tfgnn
from tensorflow_gnn.models import gat_v2
from tensorflow_gnn.models import gcn
from tensorflow_gnn.models import graph_sage
from tensorflow_gnn.models import hgt
from tensorflow_gnn.models import mt_albis
from tensorflow_gnn.models import multi_head_attention
from tensorflow_gnn.models import vanilla_mpnn

from tfx_gnn.components import graph_io
from tfx_gnn.components.gnn_trainer import trimming
from tfx_gnn.components.gnn_trainer.config import ModelConfig, trim_to_layer_problem


# Packages whose functions autograph leaves as they are (see skip_autograph).
GRAPH_CODE_PACKAGES = ("tensorflow_gnn", "tfx_gnn")


def skip_autograph() -> None:
  """Autograph converts every non-TensorFlow function that a tf.function or a Keras layer's
  `call` reaches, re-parsing its source in each process. TF-GNN's layers and ops and ours are
  graph code already: they branch on specs, shapes, dtypes and Python settings, never on tensor
  values (a branch on a tensor fails loudly without autograph, so the suite would show one).
  Converting TF-GNN took about a fifth of the CPU of a tiny pipeline run in a fresh process,
  converting ours 13% more (benchmarks/README.md, 2026-12-04 (9) and (10)). A function
  that tf.function decorates is still converted (the IG exporter's loop over `tf.range` needs
  it), and so is a user module's model code. Autograph has no public per-package switch: this
  adds rules as TensorFlow's own converter tests do (tests/test_fit_speed.py checks it)."""
  from tensorflow.python.autograph.core import config as autograph_config
  from tensorflow.python.autograph.core import config_lib
  rules = autograph_config.CONVERSION_RULES
  missing = tuple(config_lib.DoNotConvert(p) for p in GRAPH_CODE_PACKAGES
                  if not any(isinstance(r, config_lib.DoNotConvert) and r.matches(p)
                             for r in rules))
  autograph_config.CONVERSION_RULES = missing + rules


skip_autograph()

# The user module's hook (template `custom`): model_fn(graph_tensor_spec, *,
# readout_node_sets, model_config) -> a Keras layer, GraphTensor in and out (see GnnTrainer).
UserModelFn = Callable[..., tf.keras.layers.Layer]


class ModelError(ValueError):
  """A model config that does not fit the graph (e.g. GCN on a heterogeneous graph)."""


def _input_features(node_set_spec) -> list[str]:
  return sorted(k for k in node_set_spec.features_spec if not k.startswith("#"))


def _l2(factor: float):
  return tf.keras.regularizers.l2(factor) if factor else None


def _node_sets(gtspec: tfgnn.GraphTensorSpec) -> list[str]:
  return sorted(n for n in gtspec.node_sets_spec if not tfgnn.get_aux_type_prefix(n))


def _edge_sets(gtspec: tfgnn.GraphTensorSpec) -> list[str]:
  return sorted(e for e in gtspec.edge_sets_spec if not tfgnn.get_aux_type_prefix(e))


def normalize_features_processor(cfg: ModelConfig, exclude_features: Sequence[str] = ()
                                 ) -> Optional[tf.keras.layers.Layer]:
  """`model.feature_normalization` as a Runner feature processor (None for `none`): each node's
  input features (those `initial_states` reads; never `#id`, `exclude_features` such as labels
  and targets, nor GCN's degree feature), taken together, divided by their sum of absolute
  values (`sum`, as GCN and GAT row-normalize bag-of-words) or their L2 norm (`l2`).

  It runs in the input pipeline and in the exported models' preprocessing, before the model,
  so that integrated gradients interpolate the normalized features: inside the model, a
  normalization that ignores scale is flat along the path from the all-zeros baseline except
  at zero itself, where its gradient explodes (attributions of ~1e9 were seen)."""
  mode = getattr(cfg, "feature_normalization", "none")
  if mode == "none":
    return None
  skip = set(exclude_features) | {getattr(cfg, "degree_feature", None)}

  def normalize(node_set, *, node_set_name):
    features = dict(node_set.features)
    names = [n for n in sorted(features) if not n.startswith("#") and n not in skip]
    if tfgnn.get_aux_type_prefix(node_set_name) or not names:
      return features
    values = {n: tf.cast(features[n], tf.float32) for n in names}
    rows = {n: v if v.shape.rank > 1 else tf.expand_dims(v, -1) for n, v in values.items()}
    if mode == "sum":
      scale = tf.maximum(tf.add_n([tf.reduce_sum(tf.abs(v), -1, keepdims=True)
                                   for v in rows.values()]), 1e-12)
    else:  # l2, as tf.math.l2_normalize over the concatenated features
      scale = tf.sqrt(tf.maximum(tf.add_n([tf.reduce_sum(tf.square(v), -1, keepdims=True)
                                           for v in rows.values()]), 1e-12))
    for n in names:
      normalized = rows[n] / scale
      features[n] = normalized if values[n].shape.rank > 1 else tf.squeeze(normalized, -1)
    return features

  return tfgnn.keras.layers.MapFeatures(node_sets_fn=normalize, name="normalize_features")


def initial_states(gtspec: tfgnn.GraphTensorSpec, cfg: ModelConfig,
                   exclude_features: Sequence[str] = ()) -> tf.keras.layers.Layer:
  """Initial node states: dense features projected to `units`; node sets without features get
  a trainable embedding of their hashed `#id` (as TF-GNN's OGBN-MAG example does).
  `exclude_features` (e.g. labels) are never inputs."""
  # Only some templates have these options; the input layer follows them where they do.
  degree_feature = getattr(cfg, "degree_feature", None)
  l2 = _l2(getattr(cfg, "l2_regularization", 0.0))

  def node_sets_fn(node_set, *, node_set_name):
    names = [n for n in _input_features(gtspec.node_sets_spec[node_set_name])
             if n not in exclude_features and n != degree_feature]
    if names:
      parts = []
      for name in names:
        value = tf.cast(node_set[name], tf.float32)
        if value.shape.rank == 1:
          value = tf.expand_dims(value, -1)
        parts.append(value)
      # Already normalized (`feature_normalization`) by normalize_features_processor.
      x = tf.concat(parts, -1) if len(parts) > 1 else parts[0]
      if cfg.input_dropout_rate:
        x = tf.keras.layers.Dropout(cfg.input_dropout_rate)(x)
      if not cfg.input_projection:
        return x
      return tf.keras.layers.Dense(
          cfg.units, name=f"project_{node_set_name}", kernel_regularizer=l2)(x)
    if cfg.id_embeddings and graph_io.ID in gtspec.node_sets_spec[node_set_name].features_spec:
      ids = node_set[graph_io.ID]
      if ids.dtype == tf.string:  # else already hashed in preprocessing (hash_ids_processor)
        ids = tf.keras.layers.Hashing(cfg.id_hash_bins)(ids)
      x = tf.keras.layers.Embedding(
          cfg.id_hash_bins, cfg.id_embedding_dim, name=f"embed_{node_set_name}",
          embeddings_regularizer=l2)(ids)
      if cfg.template == "hgt" and cfg.id_embedding_dim != cfg.units:
        x = tf.keras.layers.Dense(cfg.units, name=f"project_{node_set_name}")(x)  # HGT: same dims
      return x
    # Neither features nor ids: a constant state; messages still carry structure.
    return tfgnn.keras.layers.MakeEmptyFeature()(node_set)

  def keep_degree(node_set, *, node_set_name):
    # GCN's model.degree_feature passes through beside the state (GCN normalizes by it).
    state = node_sets_fn(node_set, node_set_name=node_set_name)
    if degree_feature and degree_feature in node_set.features:
      return {tfgnn.HIDDEN_STATE: state, degree_feature: node_set[degree_feature]}
    return state

  edge_features = getattr(cfg, "edge_features", None)
  if not edge_features:
    return tfgnn.keras.layers.MapFeatures(node_sets_fn=keep_degree, name="initial_states")
  check_edge_features(gtspec, edge_features)

  def edge_sets_fn(edge_set, *, edge_set_name):
    # The edge's state, read by the convolutions as their edge input: the chosen features
    # concatenated; an edge set without any gets an empty one (the templates take one edge
    # feature name for all edge sets).
    names = edge_features.get(edge_set_name)
    if not names:
      return tfgnn.keras.layers.MakeEmptyFeature()(edge_set)
    parts = [tf.cast(edge_set[name], tf.float32) for name in names]
    parts = [tf.expand_dims(p, -1) if p.shape.rank == 1 else p for p in parts]
    return tf.concat(parts, -1) if len(parts) > 1 else parts[0]

  return tfgnn.keras.layers.MapFeatures(node_sets_fn=keep_degree, edge_sets_fn=edge_sets_fn,
                                        name="initial_states")


def check_edge_features(gtspec: tfgnn.GraphTensorSpec, edge_features: dict) -> None:
  """Every `model.edge_features` entry names an edge set of the subgraphs and numeric features
  of it."""
  for edge_set, names in edge_features.items():
    key = f"model.edge_features.{edge_set}"
    if edge_set not in _edge_sets(gtspec):
      raise ModelError(f"{key}: unknown edge set {edge_set!r} (edge sets: {_edge_sets(gtspec)})")
    present = gtspec.edge_sets_spec[edge_set].features_spec
    for name in names:
      if name not in present:
        raise ModelError(f"{key}: edge set {edge_set!r} has no feature {name!r} (its features: "
                         f"{sorted(present) or 'none'})")
      if not (present[name].dtype.is_floating or present[name].dtype.is_integer
              or present[name].dtype.is_bool):
        raise ModelError(f"{key}: feature {name!r} of edge set {edge_set!r} is "
                         f"{present[name].dtype.name}, not a number")


class _SumAndDropout(tf.keras.layers.Layer):
  """GCN's next state: the sum of the edge sets' convolution results (each already includes
  the node's own state through a self-loop), then dropout."""

  def __init__(self, dropout_rate: float = 0.0, **kwargs):
    super().__init__(**kwargs)
    self._dropout_rate = dropout_rate
    self._dropout = tf.keras.layers.Dropout(dropout_rate)

  def get_config(self):
    return dict(dropout_rate=self._dropout_rate, **super().get_config())

  def call(self, inputs, training=None):
    _, edge_inputs, _ = inputs
    return self._dropout(tf.add_n(list(edge_inputs.values())), training=training)


GCN_INPUT = "gcn_input"  # the sender states GCNConv reads, scaled by full-graph degrees
GCN_WEIGHT = "gcn_weight"  # the edge weights that complete the normalization


class _FullGraphDegreeScaling(tf.keras.layers.Layer):
  """Sets up GCNConv (degree_normalization "none", weighted edges) to compute
  h'_i = W (sum_j h_j / sqrt(d_i d_j) + h_i / d_i) with d the full-graph degrees from node
  feature `degree_feature` (+1 for the self-loop), not the sampled subgraph's: node feature
  GCN_INPUT = h / d and edge weight GCN_WEIGHT = sqrt(d_sender / d_receiver) (messages flow
  to the edge's SOURCE); GCNConv's unit-weight self-loop then adds h_i / d_i."""

  def __init__(self, node_set: str, edge_set: str, degree_feature: str, add_self_loops: bool,
               **kwargs):
    super().__init__(**kwargs)
    self._node_set, self._edge_set = node_set, edge_set
    self._degree_feature, self._add_self_loops = degree_feature, add_self_loops

  def get_config(self):
    return dict(node_set=self._node_set, edge_set=self._edge_set,
                degree_feature=self._degree_feature, add_self_loops=self._add_self_loops,
                **super().get_config())

  def call(self, graph: tfgnn.GraphTensor) -> tfgnn.GraphTensor:
    nodes = graph.node_sets[self._node_set]
    degree = tf.cast(nodes[self._degree_feature], tf.float32)
    degree = tf.maximum(degree + (1.0 if self._add_self_loops else 0.0), 1.0)
    state = nodes[tfgnn.HIDDEN_STATE]
    scaled = state / tf.reshape(degree, [-1] + [1] * (state.shape.rank - 1))
    sender = tfgnn.broadcast_node_to_edges(graph, self._edge_set, tfgnn.TARGET,
                                           feature_value=degree)
    receiver = tfgnn.broadcast_node_to_edges(graph, self._edge_set, tfgnn.SOURCE,
                                             feature_value=degree)
    return graph.replace_features(
        node_sets={self._node_set: {**nodes.features, GCN_INPUT: scaled}},
        edge_sets={self._edge_set: {**graph.edge_sets[self._edge_set].features,
                                    GCN_WEIGHT: tf.sqrt(sender / receiver)}})


def _gcn_update(cfg: ModelConfig, gtspec: tfgnn.GraphTensorSpec,
                node_set_names: Optional[Sequence[str]], last_round: bool = False):
  node_sets = _node_sets(gtspec)
  if len(node_sets) != 1:
    raise ModelError(f"model.template: gcn needs a homogeneous graph (one node set); this one "
                     f"has {node_sets}; choose another template (e.g. graph_sage or gat_v2)")
  node_set = node_sets[0]
  if node_set_names is not None and list(node_set_names) != [node_set]:
    return None  # nothing to update
  edge_sets = _edge_sets(gtspec)
  # Dropout on the states the next round reads (Kipf & Welling drop each layer's input); the
  # last round's states go to the task's head as they are.
  dropout = _SumAndDropout(0.0 if last_round else cfg.state_dropout_rate)
  activation = "linear" if last_round and cfg.last_round_activation == "linear" else "relu"
  conv_options = dict(activation=activation, kernel_regularizer=_l2(cfg.l2_regularization))
  if last_round and not cfg.last_round_transform:
    if cfg.num_rounds < 2:
      raise ModelError("model.last_round_transform: false needs model.num_rounds >= 2 (the "
                       "last round aggregates the previous round's model.units-wide states)")
    # Aggregation only: GCNConv with a fixed identity kernel, no bias, linear.
    conv_options = dict(activation="linear", use_bias=False, kernel_initializer="identity",
                        trainable=False)
  if cfg.degree_feature is not None:
    if len(edge_sets) != 1:
      raise ModelError(f"model.degree_feature needs one edge set (e.g. an undirected one, "
                       f"data.tables.edge_sets.<set>.undirected: true); this graph has "
                       f"{edge_sets}")
    if cfg.degree_feature not in gtspec.node_sets_spec[node_set].features_spec:
      raise ModelError(f"model.degree_feature: node set {node_set!r} has no feature "
                       f"{cfg.degree_feature!r} (e.g. set data.tables.edge_sets."
                       f"{edge_sets[0]}.degree_feature: {cfg.degree_feature})")
    conv = gcn.GCNConv(cfg.units, receiver_tag=tfgnn.SOURCE, add_self_loops=cfg.add_self_loops,
                       degree_normalization="none", node_feature=GCN_INPUT,
                       edge_weight_feature_name=GCN_WEIGHT, **conv_options)
    update = tfgnn.keras.layers.GraphUpdate(node_sets={
        node_set: tfgnn.keras.layers.NodeSetUpdate({edge_sets[0]: conv}, dropout)})
    scaling = _FullGraphDegreeScaling(node_set, edge_sets[0], cfg.degree_feature,
                                      cfg.add_self_loops)
    return lambda graph: update(scaling(graph))
  # One GCNConv per edge set (TF-GNN's advice for several edge sets on one node set); each
  # normalizes by its own edge set's degrees.
  convs = {
      e: gcn.GCNConv(cfg.units, receiver_tag=tfgnn.SOURCE, add_self_loops=cfg.add_self_loops,
                     degree_normalization=cfg.degree_normalization, **conv_options)
      for e in edge_sets}
  return tfgnn.keras.layers.GraphUpdate(node_sets={
      node_set: tfgnn.keras.layers.NodeSetUpdate(convs, dropout)})


def graph_update(cfg: ModelConfig, gtspec: tfgnn.GraphTensorSpec,
                 node_set_names: Optional[Sequence[str]],
                 round_index: int = 0) -> Optional[tf.keras.layers.Layer]:
  """One round of the configured template; `node_set_names=None` updates every node set that
  receives messages."""
  t = cfg.template
  common = dict(receiver_tag=tfgnn.SOURCE, node_set_names=node_set_names)
  # model.edge_features: the input layer made them the edges' states (initial_states).
  edge_feature = tfgnn.HIDDEN_STATE if getattr(cfg, "edge_features", None) else None
  if t == "mt_albis":
    return mt_albis.MtAlbisGraphUpdate(
        **common, units=cfg.units, message_dim=cfg.message_dim,
        attention_type=cfg.attention_type, attention_edge_set_names=cfg.attention_edge_set_names,
        attention_num_heads=cfg.attention_num_heads,
        simple_conv_reduce_type=cfg.simple_conv_reduce_type,
        simple_conv_use_receiver_state=cfg.simple_conv_use_receiver_state,
        state_dropout_rate=cfg.state_dropout_rate, edge_dropout_rate=cfg.edge_dropout_rate,
        l2_regularization=cfg.l2_regularization, normalization_type=cfg.normalization_type,
        batch_normalization_momentum=cfg.batch_normalization_momentum,
        next_state_type=cfg.next_state_type, edge_set_combine_type=cfg.edge_set_combine_type,
        edge_feature_name=edge_feature)
  if t == "gat_v2":
    return gat_v2.GATv2MPNNGraphUpdate(
        **common, units=cfg.units, message_dim=cfg.message_dim, num_heads=cfg.num_heads,
        heads_merge_type=cfg.heads_merge_type, l2_regularization=cfg.l2_regularization,
        edge_dropout_rate=cfg.edge_dropout_rate, state_dropout_rate=cfg.state_dropout_rate,
        edge_feature=edge_feature)
  if t == "multi_head_attention":
    return multi_head_attention.MultiHeadAttentionMPNNGraphUpdate(
        **common, units=cfg.units, message_dim=cfg.message_dim, num_heads=cfg.num_heads,
        l2_regularization=cfg.l2_regularization, edge_dropout_rate=cfg.edge_dropout_rate,
        state_dropout_rate=cfg.state_dropout_rate)
  if t == "vanilla_mpnn":
    return vanilla_mpnn.VanillaMPNNGraphUpdate(
        **common, units=cfg.units, message_dim=cfg.message_dim, reduce_type=cfg.reduce_type,
        l2_regularization=cfg.l2_regularization, dropout_rate=cfg.state_dropout_rate,
        use_layer_normalization=cfg.use_layer_normalization, edge_feature=edge_feature)
  if t == "graph_sage":
    return graph_sage.GraphSAGEGraphUpdate(
        **common, units=cfg.units, hidden_units=cfg.message_dim if cfg.use_pooling else None,
        reduce_type=cfg.reduce_type, use_pooling=cfg.use_pooling,
        dropout_rate=cfg.state_dropout_rate, l2_normalize=cfg.l2_normalize,
        combine_type=cfg.combine_type, name=f"graph_sage_{round_index}")
  if t == "hgt":
    if cfg.units % cfg.num_heads:
      raise ModelError(f"model.num_heads: {cfg.num_heads} does not divide model.units "
                       f"{cfg.units} (HGT splits the state into heads)")
    # HGT updates every node set that receives messages; it has no node_set_names.
    return hgt.HGTGraphUpdate(
        num_heads=cfg.num_heads, per_head_channels=cfg.units // cfg.num_heads,
        receiver_tag=tfgnn.SOURCE, dropout_rate=cfg.state_dropout_rate,
        use_layer_norm=cfg.use_layer_normalization, use_weighted_skip=cfg.use_weighted_skip)
  if t == "gcn":
    return _gcn_update(cfg, gtspec, node_set_names, round_index == cfg.num_rounds - 1)
  raise ModelError(f"model.template: unknown template {t!r}")


def trims_to_layer(cfg: ModelConfig, root_task: bool, jit_compile: bool = False) -> bool:
  """Whether the model trims its rounds to the root's neighbourhood (`model.trim_to_layer`):
  null (the default) where the root's predictions stay the same; true there, and an error
  elsewhere; false never."""
  asked = getattr(cfg, "trim_to_layer", None)
  if asked is False or cfg.num_rounds < 2:
    return False
  why_not = trim_to_layer_problem(cfg, root_task, jit_compile)
  if why_not and asked:
    raise ModelError(f"model.trim_to_layer: true does not apply: {why_not}")
  return why_not is None


def build_model_fn(cfg: ModelConfig, root_node_set,
                   exclude_features: Sequence[str] = (),
                   user_model_fn: Optional[UserModelFn] = None, *,
                   trim_to_layer: bool = False
                   ) -> Callable[[tfgnn.GraphTensorSpec], tf.keras.Model]:
  """The Runner's `model_fn`: GraphTensor in, GraphTensor with hidden states out.

  `root_node_set` is the node set the task reads after the last round, or a list of them
  (link prediction: the endpoints' sets); None: every node set is updated in every round,
  as graph-level tasks need. `user_model_fn` (template `custom`) builds the body on the
  initial states instead of the template's rounds. `trim_to_layer` (see `trims_to_layer`;
  root-node tasks only): each round after the first updates only the nodes that the root's
  final state depends on (trimming.py); the output graph then holds the root and its
  neighbours only."""
  if (cfg.template == "custom") != (user_model_fn is not None):
    raise ModelError("model.template: custom needs a user module's model_fn (module_file or "
                     "module_path), and a model_fn needs template custom; got template "
                     f"{cfg.template!r} with{'out' if user_model_fn is None else ''} one")
  readout = ([root_node_set] if isinstance(root_node_set, str) else
             list(root_node_set) if root_node_set is not None else None)
  if trim_to_layer and (readout is None or user_model_fn is not None or cfg.features_only):
    raise ModelError("model.trim_to_layer needs a root node set and template rounds")

  def model_fn(gtspec: tfgnn.GraphTensorSpec) -> tf.keras.Model:
    inputs = tf.keras.layers.Input(type_spec=gtspec)
    graph = initial_states(gtspec, cfg, exclude_features)(inputs)
    if cfg.features_only:
      # The baseline without message passing: an MLP on the node's own features.
      graph = tfgnn.keras.layers.MapFeatures(
          node_sets_fn=lambda ns, node_set_name: (
              tf.keras.layers.Dense(cfg.units, "relu")(ns[tfgnn.HIDDEN_STATE])
              if readout is None or node_set_name in readout else ns[tfgnn.HIDDEN_STATE]),
          name="features_only")(graph)
      return tf.keras.Model(inputs, graph)
    if user_model_fn is not None:
      body = user_model_fn(graph.spec, readout_node_sets=readout, model_config=cfg)
      outputs = body(graph)
      if not isinstance(getattr(outputs, "spec", None), tfgnn.GraphTensorSpec):
        raise ModelError("the user module's model_fn must return a Keras layer or model that "
                         "maps a GraphTensor to a GraphTensor")
      return tf.keras.Model(inputs, outputs)
    last_round_node_sets = getattr(cfg, "last_round_node_sets", None)
    if last_round_node_sets is not None:
      unknown = sorted(set(last_round_node_sets) - set(_node_sets(gtspec)))
      if unknown:
        raise ModelError(f"model.last_round_node_sets: unknown node set(s) {unknown} "
                         f"(node sets: {_node_sets(gtspec)})")
      last = list(last_round_node_sets)
    else:
      # Only the root's node set matters after the last round.
      last = readout
    if trim_to_layer:
      # Round 1 reads every node within num_rounds hops (all a sampled subgraph of as many
      # hops holds); each later round i + 1 needs those within num_rounds - i.
      graph = trimming.RootHops(readout, cfg.num_rounds - 1, name="root_hops")(graph)
    for i in range(cfg.num_rounds):
      if trim_to_layer and i > 0:
        graph = trimming.TrimToHop(cfg.num_rounds - i, name=f"trim_to_hop_{cfg.num_rounds - i}")(
            graph)
      update = graph_update(cfg, gtspec, last if i == cfg.num_rounds - 1 else None, i)
      if update is not None:
        graph = update(graph)
    return tf.keras.Model(inputs, graph)

  return model_fn
