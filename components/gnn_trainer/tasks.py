"""`TaskConfig` -> the Runner's task(s), loss weights and exporters (tensorflow_gnn.runner).

Supervised tasks read the label of the subgraph's root node. Deep Graph Infomax
(`contrastive_losses.DeepGraphInfomaxTask`) needs no label; mixed with classification, the
label is first moved into a `_readout` feature (a label_fn cannot be shared by two tasks) and
the classification task reads it by `label_feature_name`.

Link prediction (runner.DotProductLinkPrediction, HadamardProductLinkPrediction) reads the
`_readout` structure that the sampler writes (components/subgraph_sampler/links.py); the
graph-level tasks (runner.GraphMulticlassClassification, GraphMeanSquaredError,
GraphMeanAbsoluteError) pool the node states of a whole graph of a collection
(whole_graphs.py) and read its label from the context.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import tensorflow as tf
import tensorflow_gnn as tfgnn
from tensorflow_gnn import runner
from tensorflow_gnn.models import contrastive_losses

from tfx_gnn.components import graph_io
from tfx_gnn.components.gnn_trainer.config import TaskConfig

OUTPUT_NAME = "logits"  # classification and regression models' serving output
# Supervised root-node models also serve the root node's state after the last round (the task
# head's input): its embedding, for bulk inference and nearest-neighbour uses.
ROOT_EMBEDDING_OUTPUT = "root_embedding"
ROOT_EMBEDDING_SIGNATURE = "logits_and_root_embedding"  # beside `serving_default`
EMBEDDINGS_OUTPUT = "embeddings"  # unsupervised (DGI) models' serving output
# DeepGraphInfomaxTask names its root-node representation layer like this by default.
DGI_REPRESENTATIONS = "clean_representations"


REGRESSION_TYPES = ("root_node_regression", "graph_regression")


class TaskError(ValueError):
  """A task config that does not fit the graph's label."""


@dataclasses.dataclass
class Tasks:
  task: object  # a runner.Task or a mapping of names to tasks
  loss_weights: Optional[dict]
  feature_processors: list
  exclude_features: list  # features of the root node set the model must not see
  unsupervised: bool
  # Node sets whose states the task reads after the last round (None: all of them).
  readout_node_sets: Optional[list] = None
  # Where the evaluator finds each example's target: (location, feature), location one of
  # `root` (the root node), `readout` (the `_readout` node set) or `context`.
  target: tuple = ("root", "label")
  # Multi-task: each supervised head's type and target (name -> {type, feature, num_classes}),
  # the serving outputs of the model; None for a single task.
  heads: Optional[dict] = None


def _check_label(cfg: TaskConfig, label: Optional[graph_io.Label]) -> graph_io.Label:
  if label is None:
    raise TaskError(f"task.type: {cfg.type} needs a labelled node set; the graph has none "
                    "(use task.type: dgi to train without labels)")
  if label.real_valued and cfg.type not in REGRESSION_TYPES:
    raise TaskError(f"task.type: {cfg.type} needs class labels; {label.node_set}."
                    f"{label.feature} holds real numbers (use task.type: "
                    f"{'graph' if cfg.level == 'graph' else 'root_node'}_regression)")
  if cfg.type == "root_node_binary" and label.num_classes != 2:
    raise TaskError(f"task.type: root_node_binary needs a label with 2 classes; "
                    f"{label.node_set}.{label.feature} has {label.num_classes}")
  return label


def _member_node_sets(gtspec: Optional[tfgnn.GraphTensorSpec]) -> list:
  if gtspec is None:
    raise TaskError("graph-level and link tasks need the subgraphs' GraphTensorSpec")
  return sorted(n for n in gtspec.node_sets_spec if not tfgnn.get_aux_type_prefix(n))


def make_tasks(cfg: TaskConfig, label: Optional[graph_io.Label], seed: int = 0,
               gtspec: Optional[tfgnn.GraphTensorSpec] = None) -> Tasks:
  """The Runner task(s) for `cfg`; `gtspec` (the subgraphs') is needed by link and
  graph-level tasks, which read node sets other than the label's."""
  if cfg.type == "link_prediction":
    return _link_prediction(cfg, label, gtspec)
  if cfg.level == "graph":
    return _graph_task(cfg, label, gtspec)
  if label is None and cfg.type == "dgi":
    raise TaskError("task.type: dgi needs the node set to embed (the graph's labelled one)")
  tasks = _root_node_tasks(cfg, label, seed, gtspec)
  tasks.readout_node_sets = [label.node_set]
  tasks.target = ("root", _target_feature(cfg, label, gtspec))
  return tasks


def _target_feature(cfg: TaskConfig, label: graph_io.Label,
                    gtspec: Optional[tfgnn.GraphTensorSpec], key: str = "task") -> str:
  """The root node's feature that `cfg` predicts: its target_feature (regression) or the
  label; a target_feature must be a scalar feature of the labelled node set."""
  feature = getattr(cfg, "target_feature", None)
  if not feature:
    return label.feature
  if gtspec is not None:
    features = gtspec.node_sets_spec[label.node_set].features_spec
    if feature not in features:
      raise TaskError(f"{key}.target_feature: node set {label.node_set!r} has no feature "
                      f"{feature!r} (it has {', '.join(sorted(features))})")
    if features[feature].shape[1:].num_elements() != 1:
      raise TaskError(f"{key}.target_feature: {label.node_set}.{feature} is not one number "
                      f"per node (shape {features[feature].shape[1:].as_list()})")
  return feature


class _ScaledLoss(tf.keras.losses.Loss):
  """`weight` times a Keras loss."""

  def __init__(self, loss, weight: float):
    super().__init__(name=getattr(loss, "name", None))
    self._loss, self._weight = loss, float(weight)

  def __call__(self, y_true, y_pred, sample_weight=None):
    return self._weight * self._loss(y_true, y_pred, sample_weight=sample_weight)


class WeightedTask(runner.Task):
  """A runner task whose losses are scaled by its loss weight.

  Multi-task loss weights are applied here rather than by `runner.run(loss_weights=...)`:
  Keras pairs the flattened weights with the flattened outputs, and a task with several
  outputs (DeepGraphInfomaxTask: predictions and representations) shifts every later task's
  weight onto another output (seen: DGI took the classification's weight, the classification
  loss none, and it stayed at chance), while the Runner only takes weights shaped like the
  task mapping."""

  def __init__(self, task: runner.Task, weight: float):
    self.task, self.weight = task, float(weight)

  def preprocess(self, inputs):
    return self.task.preprocess(inputs)

  def predict(self, *args):
    return self.task.predict(*args)

  def losses(self):
    return tf.nest.map_structure(lambda loss: _ScaledLoss(loss, self.weight),
                                 self.task.losses())

  def metrics(self):
    return self.task.metrics()


def weighted(tasks: dict, weights: dict) -> dict:
  """Each task of a mapping with its loss weight applied (WeightedTask; 1: as it is)."""
  return {name: task if weights[name] == 1.0 else WeightedTask(task, weights[name])
          for name, task in tasks.items()}


def make_multi_tasks(cfgs: dict, label: Optional[graph_io.Label], seed: int = 0,
                     gtspec: Optional[tfgnn.GraphTensorSpec] = None) -> Tasks:
  """Named root-node tasks (`tasks:`) trained together by the Runner, each with its head and
  loss weight. Every target is moved into the `_readout` node set before any task sees the
  graph (the Runner's multi-task rule: no task may change the GraphTensor) and removed from
  every node of the labelled set, so that no task's target is a model input; the tasks then
  read it by `label_feature_name`."""
  if label is None:
    raise TaskError(f"tasks: {', '.join(cfgs)} need a labelled node set (the root of every "
                    "subgraph); the graph has none")
  root = label.node_set
  readout_name = {}  # task -> the `_readout` feature holding its target
  targets = {}  # root feature -> its `_readout` feature
  for name, cfg in cfgs.items():
    if cfg.type == "dgi":
      continue
    _check_label(cfg, label)
    feature = _target_feature(cfg, label, gtspec, key=f"tasks.{name}")
    targets.setdefault(feature, f"target_{feature}")
    readout_name[name] = targets[feature]
  regression = {readout_name[n] for n, c in cfgs.items() if c.type == "root_node_regression"}

  def targets_into_readout(graph: tfgnn.GraphTensor) -> tfgnn.GraphTensor:
    graph = tfgnn.keras.layers.AddReadoutFromFirstNode("root", node_set_name=root)(graph)
    for feature, new_name in targets.items():
      graph = tfgnn.structured_readout_into_feature(
          graph, "root", feature_name=feature, new_feature_name=new_name)
    readout = dict(graph.node_sets["_readout"].features)
    for new_name in regression:
      readout[new_name] = tf.cast(readout[new_name], tf.float32)
    features = {k: v for k, v in graph.node_sets[root].features.items() if k not in targets}
    return graph.replace_features(node_sets={root: features, "_readout": readout})

  task, heads = {}, {}
  for name, cfg in cfgs.items():
    if cfg.type == "dgi":
      task[name] = contrastive_losses.DeepGraphInfomaxTask(root, seed=seed)
      continue
    head = f"{name}_logits"
    if cfg.type == "root_node_multiclass":
      task[name] = runner.RootNodeMulticlassClassification(
          root, num_classes=label.num_classes, name=head, label_feature_name=readout_name[name])
    elif cfg.type == "root_node_binary":
      task[name] = runner.RootNodeBinaryClassification(
          root, name=head, label_feature_name=readout_name[name])
    else:
      cls = {"mse": runner.RootNodeMeanSquaredError,
             "mae": runner.RootNodeMeanAbsoluteError}[cfg.regression_loss]
      task[name] = cls(root, name=head, label_feature_name=readout_name[name])
    heads[name] = {"type": cfg.type, "feature": _target_feature(cfg, label, gtspec),
                   "num_classes": label.num_classes, "layer": head}
  return Tasks(weighted(task, {name: cfg.loss_weight for name, cfg in cfgs.items()}), None,
               [targets_into_readout],
               # The graph's label is no input, even where no task predicts it.
               [] if label.feature in targets else [label.feature], unsupervised=not heads,
               readout_node_sets=[root], target=("root", label.feature), heads=heads)


def _root_node_tasks(cfg: TaskConfig, label: Optional[graph_io.Label], seed: int,
                     gtspec: Optional[tfgnn.GraphTensorSpec] = None) -> Tasks:
  if label is None:
    _check_label(cfg, label)
  root = label.node_set
  label_fn = runner.RootNodeLabelFn(root, feature_name=label.feature)
  if cfg.type == "dgi":
    dgi = contrastive_losses.DeepGraphInfomaxTask(root, seed=seed)
    return Tasks(dgi, None, [], [label.feature], unsupervised=True)
  _check_label(cfg, label)
  if cfg.type == "root_node_multiclass":
    if cfg.dgi_loss_weight:
      # Multi-task: the label goes into the `_readout` node set before either task sees the
      # graph; DGI's corruption then cannot shuffle it, and the model never reads it.
      def label_into_readout(graph: tfgnn.GraphTensor) -> tfgnn.GraphTensor:
        graph = tfgnn.keras.layers.AddReadoutFromFirstNode("root", node_set_name=root)(graph)
        return tfgnn.structured_readout_into_feature(
            graph, "root", feature_name=label.feature, new_feature_name="label",
            remove_input_feature=True)
      task = {
          "classification": runner.RootNodeMulticlassClassification(
              root, num_classes=label.num_classes, label_feature_name="label"),
          "dgi": contrastive_losses.DeepGraphInfomaxTask(root, seed=seed)}
      return Tasks(weighted(task, {"classification": 1.0, "dgi": cfg.dgi_loss_weight}), None,
                   [label_into_readout], [], unsupervised=False)
    return Tasks(runner.RootNodeMulticlassClassification(
        root, num_classes=label.num_classes, label_fn=label_fn), None, [], [], False)
  if cfg.type == "root_node_binary":
    return Tasks(runner.RootNodeBinaryClassification(root, label_fn=label_fn),
                 None, [], [], False)
  if cfg.type == "root_node_regression":
    cls = {"mse": runner.RootNodeMeanSquaredError,
           "mae": runner.RootNodeMeanAbsoluteError}[cfg.regression_loss]
    target = _target_feature(cfg, label, gtspec)
    label_fn = runner.RootNodeLabelFn(root, feature_name=target)
    # Another feature's regression: the graph's label is no input either.
    return Tasks(cls(root, label_fn=_float_label(label_fn)), None, [],
                 [label.feature] if target != label.feature else [], False)
  raise TaskError(f"task.type: unknown task {cfg.type!r}")


class ProjectedDotProductLinkPrediction(runner.DotProductLinkPrediction):
  """The library's dot product, of both endpoints' states projected by one shared linear map
  (no bias), scaled by 1/sqrt(dim): a bilinear score <W u, W v> / sqrt(d).

  The GNN's last states are non-negative (ReLU) and, layer-normalized, of norm ~sqrt(d): their
  plain dot product is a logit >= 0, of tens, that cannot score a non-link below 1/2; trained,
  it collapses to a constant (README, link prediction)."""
  _projection: Optional[tf.keras.layers.Layer] = None

  def _compute_edge_scores(self, src_features, tgt_features):
    dim = src_features.shape[-1]
    if self._projection is None:
      self._projection = tf.keras.layers.Dense(dim, use_bias=False, name="linkpred_projection")
    scores = super()._compute_edge_scores(self._projection(src_features),
                                          self._projection(tgt_features))
    return scores * (1.0 / float(dim) ** 0.5)


def _link_prediction(cfg: TaskConfig, label: Optional[graph_io.Label],
                     gtspec: Optional[tfgnn.GraphTensorSpec]) -> Tasks:
  from tfx_gnn.components.subgraph_sampler import fast_sampler
  _member_node_sets(gtspec)
  edge_sets = gtspec.edge_sets_spec
  if fast_sampler.READOUT_SOURCE not in edge_sets or fast_sampler.READOUT_TARGET not in edge_sets:
    raise TaskError("task.type: link_prediction needs subgraphs with a `_readout` structure "
                    "(sampled with task.type: link_prediction); these have none")
  endpoints = [edge_sets[n].adjacency_spec.source_name
               for n in (fast_sampler.READOUT_SOURCE, fast_sampler.READOUT_TARGET)]
  cls = {"dot_product": (ProjectedDotProductLinkPrediction if cfg.dot_product_projection
                         else runner.DotProductLinkPrediction),
         "hadamard": runner.HadamardProductLinkPrediction}[cfg.scorer]
  # A node label of the graph (for its node tasks) is no input of a link model.
  exclude = [label.feature] if label is not None else []
  return Tasks(cls(readout_label_feature_name=fast_sampler.LINK_LABEL), None, [], exclude,
               unsupervised=False, readout_node_sets=list(dict.fromkeys(endpoints)),
               target=("readout", fast_sampler.LINK_LABEL))


def _graph_task(cfg: TaskConfig, label: Optional[graph_io.Label],
                gtspec: Optional[tfgnn.GraphTensorSpec]) -> Tasks:
  if label is None:
    raise TaskError(f"task.type: {cfg.type} needs a labelled node set (one node per graph)")
  if cfg.type != "graph_regression":
    _check_label(cfg, label)
  node_sets = _member_node_sets(gtspec)
  context = gtspec.context_spec.features_spec
  feature = ((cfg.target_feature or label.feature) if cfg.type == "graph_regression"
             else label.feature)
  if feature not in context:
    raise TaskError(f"task.type: {cfg.type} reads graph feature {feature!r}; the graphs "
                    f"have {sorted(context)} (features of node set {label.node_set!r})")
  # One reduction: of the first member node set (the one of a homogeneous collection).
  pooling = (dict(cfg.pooling) if isinstance(cfg.pooling, dict)
             else {node_sets[0]: cfg.pooling})
  unknown = sorted(set(pooling) - set(node_sets))
  if unknown:
    raise TaskError(f"task.pooling: unknown node set(s) {', '.join(map(repr, unknown))}; the "
                    f"graphs' node sets are {node_sets}")
  label_fn = runner.ContextLabelFn(feature)
  if cfg.type == "graph_multiclass":
    task = PooledGraphMulticlassClassification(
        pooling, num_classes=label.num_classes, label_fn=label_fn)
  else:
    cls = {"mse": PooledGraphMeanSquaredError,
           "mae": PooledGraphMeanAbsoluteError}[cfg.regression_loss]
    task = cls(pooling, label_fn=_float_label(label_fn))
  return Tasks(task, None, [], [], unsupervised=False, readout_node_sets=None,
               target=("context", feature))


class _PooledNodeSets:
  """A graph-level runner task whose graph state pools several node sets, each by its own
  reduction (node set -> mean, sum or max), concatenated in the mapping's order: the
  library's tasks pool one node set."""

  def __init__(self, pooling: dict, **kwargs):
    first, reduce_type = next(iter(pooling.items()))
    super().__init__(first, reduce_type=reduce_type, **kwargs)
    self._pooling = dict(pooling)

  def gather_activations(self, inputs: tfgnn.GraphTensor) -> tf.Tensor:
    pooled = [tfgnn.keras.layers.Pool(tfgnn.CONTEXT, reduce_type, node_set_name=node_set,
                                      feature_name=tfgnn.HIDDEN_STATE)(inputs)
              for node_set, reduce_type in self._pooling.items()]
    return tf.concat(pooled, -1) if len(pooled) > 1 else pooled[0]


class PooledGraphMulticlassClassification(_PooledNodeSets,
                                          runner.GraphMulticlassClassification):
  pass


class PooledGraphMeanSquaredError(_PooledNodeSets, runner.GraphMeanSquaredError):
  pass


class PooledGraphMeanAbsoluteError(_PooledNodeSets, runner.GraphMeanAbsoluteError):
  pass


def _float_label(label_fn):
  """Regression targets as float32 (labels may be stored as integers)."""

  def fn(graph):
    graph, y = label_fn(graph)
    return graph, tf.cast(y, tf.float32)

  return fn


class RootEmbeddingExporter(runner.KerasModelExporter):
  """The Runner's KerasModelExporter's SavedModel (`serving_default`: serialized examples ->
  `logits`, unchanged) plus a signature ROOT_EMBEDDING_SIGNATURE that returns both `logits`
  and `root_embedding`, the task head's input (the root node's state as the head reads it), in
  one pass."""

  def __init__(self, head: str):
    super().__init__(output_names=OUTPUT_NAME)
    self._head = head

  def save(self, run_result, export_dir: str):
    model = run_result.trained_model
    [head] = [layer for layer in model.layers if layer.name == self._head]
    preprocess = run_result.preprocess_model
    xs, *_ = preprocess.output
    logits, embedding = tf.keras.Model(model.input, [head.output, head.input])(xs)
    both = tf.keras.Model(preprocess.input, {OUTPUT_NAME: logits,
                                             ROOT_EMBEDDING_OUTPUT: embedding})
    spec = tf.TensorSpec([None], tf.string, name="examples")

    @tf.function(input_signature=[spec])
    def with_embedding(examples):
      return both(examples)

    # Calls the traced function above: the model is traced once for both signatures.
    @tf.function(input_signature=[spec])
    def serving_default(examples):
      return {OUTPUT_NAME: with_embedding(examples)[OUTPUT_NAME]}

    tf.keras.models.save_model(
        both, export_dir, save_format="tf", include_optimizer=False, save_traces=False,
        signatures={"serving_default": serving_default, ROOT_EMBEDDING_SIGNATURE: with_embedding})


class MultiHeadExporter(runner.ModelExporter):
  """A multi-task model's SavedModel: `serving_default` takes serialized subgraphs and returns
  every supervised head's output by task name. It parses them without the tasks' targets
  (they are no inputs: serving needs no label) and puts the `_readout` structure on the root
  node itself, as the training preprocessing did."""

  def __init__(self, heads: dict, root: str, subgraph_schema: tfgnn.GraphSchema):
    self._heads = heads
    self._root = root
    schema = tfgnn.GraphSchema()
    schema.CopyFrom(subgraph_schema)
    for head in heads.values():
      schema.node_sets[root].features.pop(head["feature"], None)
    self._spec = tfgnn.create_graph_spec_from_schema_pb(schema)

  def save(self, run_result, export_dir: str):
    model = run_result.trained_model
    heads = tf.keras.Model(model.inputs, {name: model.get_layer(head["layer"]).output
                                          for name, head in self._heads.items()})
    examples = tf.keras.Input([], dtype=tf.string, name="examples")
    graph = tfgnn.keras.layers.ParseExample(self._spec)(examples)
    graph = graph.merge_batch_to_components()
    graph = tfgnn.keras.layers.AddReadoutFromFirstNode("root", node_set_name=self._root)(graph)
    # DGI's corrupted copy is an input of the trained model that no head reads.
    serving = tf.keras.Model(examples, heads([graph] * len(model.inputs)))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serving_default(examples):
      return serving(examples)

    tf.keras.models.save_model(serving, export_dir, save_format="tf", include_optimizer=False,
                               save_traces=False, signatures={"serving_default": serving_default})


def exporters(tasks: Tasks, subgraph_schema: Optional[tfgnn.GraphSchema] = None) -> list:
  """The serving model: task outputs for supervised tasks (root-node tasks also the root's
  embedding); for DGI the root node's clean representation (its embedding) as `embeddings`."""
  if tasks.heads:
    return [MultiHeadExporter(tasks.heads, tasks.readout_node_sets[0], subgraph_schema)]
  if tasks.unsupervised:
    return [runner.SubmoduleExporter(DGI_REPRESENTATIONS, output_names=EMBEDDINGS_OUTPUT,
                                     include_preprocessing=True)]
  if tasks.target[0] == "root":
    # The head is named by the Runner's tasks (multi-task: serve the classification head only,
    # DGI feeds two graphs).
    regression = isinstance(tasks.task, (runner.RootNodeMeanSquaredError,
                                         runner.RootNodeMeanAbsoluteError))
    return [RootEmbeddingExporter("regression_logits" if regression else "classification_logits")]
  return [runner.KerasModelExporter(output_names=OUTPUT_NAME)]
