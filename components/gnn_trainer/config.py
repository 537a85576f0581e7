"""GnnTrainer's config: the run config's `model`, `task` and `trainer` sections.

`model` and `task` are discriminated unions, as TF-GNN keeps one config per model family: one
class per model template (on `template`) and per task type (on `type`), each holding exactly
the options that apply to it, so an option of another template or type is an error naming the
key. The YAML stays flat: `model: {template: gat_v2, num_heads: 4}`.
"""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Optional, Union, get_args

import pydantic

from tfx_gnn.components.config_base import Strict


def _members(union, key: str) -> dict:
  return {cls.model_fields[key].default: cls for cls in get_args(union)}


def _discriminated(union, key: str, default: str, what: str):
  """`union` tagged by field `key` (`default` where a mapping leaves it out). A key that only
  other members take is refused with the members it applies to, before pydantic's own
  `extra="forbid"` would just call it unknown."""
  members = _members(union, key)

  def fill_and_check(value: Any) -> Any:
    if not isinstance(value, dict):
      return value  # a member instance, or something pydantic will refuse
    value = {key: default, **value}
    cls = members.get(value[key])
    if cls is None:
      return value  # pydantic names the unknown tag and the valid ones
    wrong = [k for k in value if k not in cls.model_fields
             and any(k in other.model_fields for other in members.values())]
    if wrong:
      raise ValueError("; ".join(
          f"option {k!r} does not apply to {what} {value[key]!r} (only to "
          f"{', '.join(t for t, other in members.items() if k in other.model_fields)})"
          for k in wrong))
    return value

  return Annotated[union, pydantic.Field(discriminator=key),
                   pydantic.BeforeValidator(fill_and_check)]


# ------------------------------------------------------------------------------- the model
# Options that several templates take: each is defined once here and declared by every
# template class it applies to.
LastRoundNodeSets = Annotated[Optional[list[str]], pydantic.Field(description=(
    "Node sets updated in the last round; default: the task's root node set (all of them "
    "for graph-level tasks)."))]
MessageDim = Annotated[int, pydantic.Field(gt=0, description="Width of the messages.")]
L2Regularization = Annotated[float, pydantic.Field(ge=0, description=(
    "L2 regularization of the template's weights and of the input layer's."))]
EdgeDropoutRate = Annotated[float, pydantic.Field(ge=0, lt=1, description=(
    "Dropout of the attention edges / messages."))]
NumHeads = Annotated[int, pydantic.Field(gt=0, description="Attention heads.")]
ReduceType = Annotated[str, pydantic.Field(description=(
    "How messages are pooled per receiver (a tfgnn reduce type, e.g. mean, sum, max)."))]
UseLayerNormalization = Annotated[bool, pydantic.Field(description=(
    "Layer normalization of the next states."))]
EdgeFeatures = Annotated[Optional[dict[str, list[str]]], pydantic.Field(description=(
    "Edge features as message inputs, per edge set (edge set -> its numeric features, "
    "concatenated); the template's convolutions read them beside the sender's state. Edge sets "
    "not named here send node states only."))]
# The input layer's and the states' regularization: ModelOptions' defaults, which a template
# may change (GraphSageOptions, the default template).
StateDropoutRate = Annotated[float, pydantic.Field(ge=0, lt=1, description=(
    "Dropout of the node states."))]
InputDropoutRate = Annotated[float, pydantic.Field(ge=0, lt=1, description=(
    "Dropout of the input features."))]
FeatureNormalization = Annotated[Literal["none", "sum", "l2"], pydantic.Field(description=(
    "Per-node normalization of the input feature vector: sum divides by its L1 norm (as GCN "
    "and GAT do for bag-of-words), l2 by its L2 norm."))]


class ModelOptions(Strict):
  """What every template shares: the rounds and the input layer (initial node states)."""
  template: str
  num_rounds: int = pydantic.Field(2, ge=1, description="Graph updates (message passing rounds).")
  units: int = pydantic.Field(64, gt=0, description="Width of the node states.")
  # Default 0.2: part of the defaults chosen by benchmarks/defaults_study.py (docs/tuning.md).
  state_dropout_rate: StateDropoutRate = 0.2
  id_embeddings: bool = pydantic.Field(True, description=(
      "Node sets without features get a trainable embedding of their hashed ids; false: they "
      "start empty and only relay messages (nodes unseen in training then get no random "
      "state)."))
  id_embedding_dim: int = pydantic.Field(32, gt=0)
  id_hash_bins: int = pydantic.Field(50_000, gt=0)
  input_dropout_rate: InputDropoutRate = 0.0
  input_projection: bool = pydantic.Field(True, description=(
      "false: the (normalized) features themselves are the initial states, without a Dense "
      "projection to `units`, as in the GCN and GAT papers, whose first layer transforms "
      "them."))
  feature_normalization: FeatureNormalization = "none"
  features_only: bool = pydantic.Field(False, description=(
      "Drop message passing altogether: a features-only baseline on the root node."))
  trim_to_layer: Optional[bool] = pydantic.Field(None, description=(
      "Root-node tasks: round r of K updates only the nodes within K - r hops of the root, "
      "which is all the root's final state depends on (PyG's trim_to_layer); the root's "
      "predictions are the same as without it, for less work. null: on wherever it keeps "
      "them the same (not for link and graph-level tasks, template custom, GCN with "
      "out/in_out/in_in degree normalization, trainer.jit_compile); true: on, an error where "
      "it cannot be; false: off."))

  def for_task_level(self, level: str) -> "ModelOptions":
    """These options with the defaults a task level ("node", "link", "graph") takes where
    the config left them unset (as they are, for most templates)."""
    return self


class MtAlbisOptions(ModelOptions):
  """TF-GNN's MtAlbisGraphUpdate (`tensorflow_gnn.models.mt_albis`): every option of it."""
  template: Literal["mt_albis"] = "mt_albis"
  edge_features: EdgeFeatures = None
  last_round_node_sets: LastRoundNodeSets = None
  message_dim: MessageDim = 64
  l2_regularization: L2Regularization = 0.0
  edge_dropout_rate: EdgeDropoutRate = 0.0
  attention_type: Literal["none", "multi_head", "gat_v2"] = "none"
  attention_edge_set_names: Optional[list[str]] = None
  attention_num_heads: int = 4
  simple_conv_reduce_type: str = "mean"
  simple_conv_use_receiver_state: bool = True
  normalization_type: Literal["layer", "batch", "none"] = "layer"
  batch_normalization_momentum: float = 0.99
  next_state_type: Literal["dense", "residual"] = "dense"
  edge_set_combine_type: Literal["concat", "sum"] = "concat"


class GraphSageOptions(ModelOptions):
  """GraphSAGE (`tensorflow_gnn.models.graph_sage`): the default template, with the input
  settings chosen for it by benchmarks/defaults_study.py (docs/tuning.md)."""
  template: Literal["graph_sage"] = "graph_sage"
  state_dropout_rate: StateDropoutRate = 0.5
  input_dropout_rate: InputDropoutRate = 0.2
  feature_normalization: FeatureNormalization = "sum"
  last_round_node_sets: LastRoundNodeSets = None
  message_dim: MessageDim = 64
  reduce_type: str = pydantic.Field("mean", description=(
      "How messages are pooled per receiver (a tfgnn reduce type, e.g. mean, sum, max). "
      "Unset, a graph-level task takes sum: a graph's class may depend on how many neighbours "
      "its nodes have, which a mean cannot see (benchmarks/graph_task_study.py)."))
  use_pooling: bool = pydantic.Field(False, description=(
      "Pooling aggregator (a hidden layer of `message_dim` before the reduction)."))
  l2_normalize: bool = True
  combine_type: Literal["sum", "concat"] = "sum"

  def for_task_level(self, level: str) -> "GraphSageOptions":
    if level == "graph" and "reduce_type" not in self.model_fields_set:
      return self.model_copy(update={"reduce_type": "sum"})
    return self


class GATv2Options(ModelOptions):
  """GATv2 (`tensorflow_gnn.models.gat_v2`)."""
  template: Literal["gat_v2"] = "gat_v2"
  edge_features: EdgeFeatures = None
  last_round_node_sets: LastRoundNodeSets = None
  message_dim: MessageDim = 64
  l2_regularization: L2Regularization = 0.0
  edge_dropout_rate: EdgeDropoutRate = 0.0
  num_heads: NumHeads = 4
  heads_merge_type: Literal["concat", "mean"] = "concat"


class HGTOptions(ModelOptions):
  """HGT (`tensorflow_gnn.models.hgt`): updates every node set that receives messages."""
  template: Literal["hgt"] = "hgt"
  num_heads: NumHeads = 4
  use_layer_normalization: UseLayerNormalization = False
  use_weighted_skip: bool = True

  @pydantic.model_validator(mode="after")
  def _states_of_units(self):
    if not self.input_projection:
      raise ValueError("input_projection: false does not apply to template 'hgt' (HGT needs "
                       "every initial state to have `units` dimensions)")
    return self


class VanillaMPNNOptions(ModelOptions):
  """VanillaMPNN (`tensorflow_gnn.models.vanilla_mpnn`)."""
  template: Literal["vanilla_mpnn"] = "vanilla_mpnn"
  edge_features: EdgeFeatures = None
  last_round_node_sets: LastRoundNodeSets = None
  message_dim: MessageDim = 64
  l2_regularization: L2Regularization = 0.0
  reduce_type: ReduceType = "mean"
  use_layer_normalization: UseLayerNormalization = False


class MultiHeadAttentionOptions(ModelOptions):
  """Transformer-style attention (`tensorflow_gnn.models.multi_head_attention`)."""
  template: Literal["multi_head_attention"] = "multi_head_attention"
  last_round_node_sets: LastRoundNodeSets = None
  message_dim: MessageDim = 64
  l2_regularization: L2Regularization = 0.0
  edge_dropout_rate: EdgeDropoutRate = 0.0
  num_heads: NumHeads = 4


class GCNOptions(ModelOptions):
  """GCN (`tensorflow_gnn.models.gcn`), for homogeneous graphs (one node set)."""
  template: Literal["gcn"] = "gcn"
  last_round_node_sets: LastRoundNodeSets = None
  l2_regularization: L2Regularization = 0.0
  add_self_loops: bool = True
  degree_normalization: Literal["none", "in", "out", "in_out", "in_in"] = "in_out"
  degree_feature: Optional[str] = pydantic.Field(None, description=(
      "A node feature holding each node's degree in the whole graph (e.g. written by "
      "data.tables.edge_sets.<set>.degree_feature; never a model input): GCN's symmetric "
      "normalization uses it instead of the sampled subgraph's degrees, which are too small "
      "at the outer hop. With one undirected edge set, fanouts covering every neighbour and "
      "num_rounds == hops, this computes full-graph GCN at the root exactly."))
  last_round_activation: Literal["relu", "linear"] = pydantic.Field("relu", description=(
      "The last round's activation: linear as in Kipf & Welling, whose last layer feeds the "
      "softmax directly (here the task's head); its states get no dropout either way."))
  last_round_transform: bool = pydantic.Field(True, description=(
      "false: the last round only aggregates (normalized sum with the self-loop, no weights, "
      "no bias, no activation), so the task head's Dense is Kipf & Welling's second-layer "
      "weights and bias, with L2 on the first layer only, as in the paper."))


class CustomModelOptions(ModelOptions):
  """A user module's `model_fn` instead of a model-zoo template (see GnnTrainer): the input
  layer and these shared options still apply; `module_file` (a .py file, relative to the config
  file) or `module_path` (an importable module) names it, or the GnnTrainer's own arguments."""
  template: Literal["custom"] = "custom"
  module_file: Optional[str] = None
  module_path: Optional[str] = None

  @pydantic.model_validator(mode="after")
  def _one_module(self):
    if self.module_file and self.module_path:
      raise ValueError("give module_file or module_path, not both")
    return self


def trim_to_layer_problem(model: ModelOptions, root_task: bool,
                          jit_compile: bool = False) -> Optional[str]:
  """Why `model.trim_to_layer` cannot hold for this model, task and trainer (None: it can):
  where trimming would change the root's state or cannot run."""
  if not root_task:
    return "the task does not read a root node (link and graph-level tasks read more)"
  if model.template == "custom" or model.features_only:
    return "there are no template rounds (template custom or features_only)"
  if (model.template == "gcn" and model.degree_feature is None
      and model.degree_normalization not in ("none", "in")):
    # Trimming removes edges of the senders, whose subgraph degrees these normalize by.
    return (f"GCN's degree_normalization {model.degree_normalization!r} counts the senders' "
            "edges, which trimming removes (use in, none or degree_feature)")
  if jit_compile:
    return "trainer.jit_compile needs fixed shapes, and trimming makes them vary"
  return None


ModelConfig = _discriminated(
    Union[MtAlbisOptions, GraphSageOptions, GATv2Options, HGTOptions, VanillaMPNNOptions,
          MultiHeadAttentionOptions, GCNOptions, CustomModelOptions],
    "template", "graph_sage", "template")
"""The `model` section: a template from TF-GNN's model zoo (`tensorflow_gnn.models.*`) or a
user module, its options, and the input layer shared by all (ModelOptions)."""
MODEL_TEMPLATES: dict[str, type[ModelOptions]] = _members(get_args(ModelConfig)[0], "template")


# -------------------------------------------------------------------------------- the task
class TaskOptions(Strict):
  """What the model learns (tensorflow_gnn.runner tasks); one class per `type`."""
  type: str
  level: ClassVar[str] = "node"  # node (root-node tasks), link or graph
  loss_weight: float = pydantic.Field(1.0, gt=0, description=(
      "Multi-task (`tasks:`): this task's weight in the summed loss (TF-GNN's "
      "`runner.run(loss_weights=...)`); a single `task:` has none."))

  def seeds(self) -> dict:
    """What the sampler must produce for this task (only what changes the subgraphs, so that
    e.g. another scorer reuses the sampled examples)."""
    return {"kind": "nodes"}

  @property
  def has_integrated_gradients(self) -> bool:
    """Whether the trained model gets an integrated-gradients export (and Attribution runs):
    single supervised root-node tasks only; DGI's model feeds two graphs, which TF-GNN's IG
    exporter cannot take, and attribution by hops from a root means nothing to link and
    graph-level tasks."""
    return self.level == "node" and self.type != "dgi"


RegressionLoss = Annotated[Literal["mse", "mae"], pydantic.Field(
    description="Mean squared or mean absolute error.")]


class RootNodeMulticlassOptions(TaskOptions):
  """The class of each subgraph's root node (its label)."""
  type: Literal["root_node_multiclass"] = "root_node_multiclass"
  dgi_loss_weight: float = pydantic.Field(0.0, ge=0, description=(
      "> 0 adds a DeepGraphInfomaxTask (multi-task) with this loss weight (classification's "
      "is 1)."))

  @property
  def has_integrated_gradients(self) -> bool:
    return not self.dgi_loss_weight


class RootNodeBinaryOptions(TaskOptions):
  """The root node's label of 2 classes."""
  type: Literal["root_node_binary"] = "root_node_binary"


class RootNodeRegressionOptions(TaskOptions):
  """The root node's label as a number."""
  type: Literal["root_node_regression"] = "root_node_regression"
  regression_loss: RegressionLoss = "mse"
  target_feature: Optional[str] = pydantic.Field(None, description=(
      "A numeric feature of the labelled node set to predict (never a model input); default: "
      "the label."))


class DGIOptions(TaskOptions):
  """Deep Graph Infomax: no label; the model serves root-node embeddings, also written to
  Parquet per node id."""
  type: Literal["dgi"] = "dgi"


class LinkPredictionOptions(TaskOptions):
  """runner.DotProductLinkPrediction or HadamardProductLinkPrediction on the links of
  `edge_set`: its edges are split into train/eval/test positives, each with
  `negatives_per_positive` random non-links; each labelled pair is one subgraph sampled
  around both endpoints, with TF-GNN's `_readout` structure; eval/test positives are removed
  from the graph, and a train positive from its own subgraph."""
  type: Literal["link_prediction"] = "link_prediction"
  level: ClassVar[str] = "link"
  edge_set: str = pydantic.Field(description="The links to predict.")
  scorer: Literal["dot_product", "hadamard"] = pydantic.Field("hadamard", description=(
      "How a pair's two endpoint states become its logit: runner.HadamardProductLinkPrediction "
      "(their elementwise product into a learned Dense) or dot_product. Hadamard reached eval "
      "ROC AUC 0.632 against 0.561 over 3 graph shapes (benchmarks/graph_task_study.py)."))
  dot_product_projection: bool = pydantic.Field(True, description=(
      "dot_product: project both endpoints' states by one learned linear map first and scale "
      "by 1/sqrt(dim) (false: the library's plain dot product of the GNN's last states, which "
      "are non-negative after ReLU, so every logit is >= 0; it does not learn)."))
  negatives_per_positive: int = pydantic.Field(1, ge=1, le=100)
  edge_split: dict[Literal["train", "eval", "test"], float] = {
      "train": 0.8, "eval": 0.1, "test": 0.1}

  @pydantic.model_validator(mode="after")
  def _split_sums_to_one(self):
    if abs(sum(self.edge_split.values()) - 1.0) > 1e-6 or not self.edge_split.get("train"):
      raise ValueError(f"edge_split must sum to 1 with a train share, got {self.edge_split}")
    return self

  def seeds(self) -> dict:
    return {"kind": "links", "edge_set": self.edge_set,
            "negatives_per_positive": self.negatives_per_positive,
            "edge_split": dict(self.edge_split)}


Pooling = Annotated[Literal["mean", "sum", "max"], pydantic.Field(
    description="How node states are pooled into the graph's.")]


class GraphTaskOptions(TaskOptions):
  """About whole graphs of a collection: the labelled node set holds one node per graph, the
  edge sets into it tell each node's graph."""
  level: ClassVar[str] = "graph"
  pooling: Union[Pooling, dict[str, Pooling]] = pydantic.Field("mean", description=(
      "How node states are pooled into the graph's: one reduction (mean, sum, max) of the "
      "first member node set (the one of a homogeneous collection), or node set -> reduction "
      "for one or several node sets, whose pooled states are concatenated."))

  @pydantic.field_validator("pooling")
  @classmethod
  def _some_node_set(cls, pooling):
    if isinstance(pooling, dict) and not pooling:
      raise ValueError("give at least one node set (node set -> mean, sum or max)")
    return pooling

  def seeds(self) -> dict:
    return {"kind": "graphs"}


class GraphMulticlassOptions(GraphTaskOptions):
  """runner.GraphMulticlassClassification on the label of each graph."""
  type: Literal["graph_multiclass"] = "graph_multiclass"


class GraphRegressionOptions(GraphTaskOptions):
  """runner.GraphMeanSquaredError / MeanAbsoluteError on `target_feature` of each graph."""
  type: Literal["graph_regression"] = "graph_regression"
  regression_loss: RegressionLoss = "mse"
  target_feature: Optional[str] = pydantic.Field(None, description=(
      "A feature of the graph node set; default: the label."))


TaskConfig = _discriminated(
    Union[RootNodeMulticlassOptions, RootNodeBinaryOptions, RootNodeRegressionOptions,
          DGIOptions, LinkPredictionOptions, GraphMulticlassOptions, GraphRegressionOptions],
    "type", "root_node_multiclass", "task")
"""The `task` section: what the model learns, one TaskOptions class per `type`."""
TASK_TYPES: dict[str, type[TaskOptions]] = _members(get_args(TaskConfig)[0], "type")

# Task types that can share one model in a `tasks:` mapping: root-node tasks on the same
# sampled subgraphs, whose targets TF-GNN's Runner reads from the `_readout` node set.
MULTI_TASK = "multi_task"  # the Model artifact's `task` when it has several heads
MULTI_TASK_TYPES = ("root_node_multiclass", "root_node_binary", "root_node_regression", "dgi")


def _task_names(tasks: dict) -> dict:
  """A `tasks:` mapping: named tasks (names are Keras output names)."""
  if not tasks:
    raise ValueError("give at least one task (name -> task)")
  for name, task in tasks.items():
    if not name.isidentifier():
      raise ValueError(f"task name {name!r}: use letters, digits and _ (it names the "
                       "model's output and its metrics)")
  return tasks


def multi_task_problems(tasks: dict) -> list[str]:
  """What keeps a `tasks:` mapping of several tasks from sharing one model: (key, message)."""
  problems = []
  for name, task in tasks.items():
    if task.type not in MULTI_TASK_TYPES:
      problems.append((f"tasks.{name}.type", f"{task.type!r} cannot share a model with other "
                       f"tasks; a multi-task mapping takes {', '.join(MULTI_TASK_TYPES)}"))
    if getattr(task, "dgi_loss_weight", 0):
      problems.append((f"tasks.{name}.dgi_loss_weight", "in a `tasks:` mapping, add a task of "
                       "type dgi with its own loss_weight instead"))
  if sum(task.type == "dgi" for task in tasks.values()) > 1 or all(
      task.type == "dgi" for task in tasks.values()):
    problems.append(("tasks", "several tasks share a model around one supervised head or more "
                     "and at most one dgi task"))
  return problems


TasksConfig = Annotated[dict[str, TaskConfig], pydantic.AfterValidator(_task_names)]
"""The `tasks` section: named tasks trained together (TF-GNN's multi-task Runner), each with
its own target, head and `loss_weight`."""


class IntegratedGradientsConfig(Strict):
  """The `integrated_gradients` signature exported beside `serving_default` (TF-GNN's
  IntegratedGradientsExporter); its settings are baked into the exported model."""
  # Interpolations of the Riemann sum. 8: on every graph of benchmarks/attribution_study.py
  # (2026-12-04 (8)) the feature ranking agrees with 32 and 64 steps, at 0.55 of the CPU.
  steps: int = pydantic.Field(8, ge=2)
  # True: a uniform random counterfactual within each feature's range in the subgraph;
  # false: all-zero features (the mean of standardized features).
  random_counterfactual: bool = False
  seed: Optional[int] = None  # of the random counterfactual


# The default epochs (`trainer.epochs` not given): an upper bound that early stopping ends
# with an eval split; a fixed count without one (or without early stopping). Chosen, with the
# learning rate, weight decay, patience and dropout below, by benchmarks/defaults_study.py.
MAX_EPOCHS = 300
EPOCHS_WITHOUT_EARLY_STOPPING = 50


class TrainerConfig(Strict):
  epochs: Optional[int] = pydantic.Field(None, gt=0, description=(
      f"Epochs to train. Default: up to {MAX_EPOCHS} with an eval split, where early stopping "
      f"ends training and the best epoch's weights are exported; "
      f"{EPOCHS_WITHOUT_EARLY_STOPPING} without an eval split or early stopping."))
  batch_size: int = pydantic.Field(128, gt=0)
  learning_rate: float = pydantic.Field(5e-3, gt=0)
  # constant; cosine (to 0 over all epochs); exponential (x decay_rate per epoch)
  learning_rate_schedule: Literal["constant", "cosine", "exponential"] = "constant"
  decay_rate: float = pydantic.Field(0.96, gt=0, le=1)
  weight_decay: float = pydantic.Field(5e-4, ge=0)  # decoupled (AdamW)
  steps_per_epoch: Optional[int] = pydantic.Field(None, gt=0)
  shuffle_buffer: int = pydantic.Field(10_000, gt=0)
  # A split whose TFRecord files total at most this many MB is read once and kept in memory
  # (as parsed batches with `cache_batches`, else serialized) for the later epochs and
  # validations; 0: always read from the files.
  cache_examples_mb: int = pydantic.Field(1024, ge=0)
  cache_batches: bool = pydantic.Field(True, description=(
      "Where a split fits `cache_examples_mb`: keep its parsed, preprocessed batches in memory "
      "after the first epoch instead of its serialized examples, so later epochs and "
      "validations neither parse nor preprocess again; each epoch takes the train batches in a "
      "fresh order, but which examples share a batch stays the first epoch's. Not for dynamic "
      "sampling or a task whose preprocessing is random (dgi). false: cache serialized "
      "examples, reshuffled each epoch."))
  lazy_embedding_updates: bool = pydantic.Field(True, description=(
      "AdamW updates only the embedding rows a batch looks up (their moments, step and weight "
      "decay; LazyAdam), not the whole `model.id_hash_bins` table every step. false: "
      "tf_keras's AdamW, dense over every table (also with `jit_compile`, and for a table "
      "with `model.l2_regularization`, whose gradient is dense)."))
  backup_interval_s: float = pydantic.Field(30.0, ge=0, description=(
      "Crash resume: training backs up its state (weights, optimizer, epoch) after the first "
      "epoch, then after an epoch only once this many seconds have passed since the last "
      "backup; a rerun resumes after the last backed-up epoch. 0: after every epoch. The "
      "workers of a multi-worker or parameter-server cluster back up after every epoch."))
  seed: int = 0
  # The model's integrated-gradients signature (what Attribution runs); null: none. A pipeline
  # that does not run Attribution exports none (it costs a second traced SavedModel).
  integrated_gradients: Optional[IntegratedGradientsConfig] = IntegratedGradientsConfig()
  # Early stopping on a validation metric (Keras name without "val_", e.g. loss,
  # sparse_categorical_accuracy): stop after `patience` epochs without improvement. With an eval
  # split, the weights of the epoch with the lowest validation loss are exported.
  # null: no early stopping.
  early_stopping_patience: Optional[int] = pydantic.Field(15, gt=0)
  early_stopping_metric: str = "loss"
  # Validate every this many epochs (patience then counts validations).
  validation_freq: int = pydantic.Field(1, gt=0)
  # tf.distribute strategy: default (one device), mirrored (all local GPUs),
  # multi_worker_mirrored (workers from TF_CONFIG), parameter_server (TF_CONFIG cluster with
  # ps/chief/workers; TF-GNN's runner.ParameterServerStrategy), tpu (runner.TPUStrategy at
  # `tpu_address`, "" = local).
  strategy: Literal["default", "mirrored", "multi_worker_mirrored", "parameter_server",
                    "tpu"] = "default"
  tpu_address: str = ""
  # multi_worker_mirrored only: > 1 trains with this many worker processes on this machine
  # (TF_CONFIG on localhost, launched by the trainer; components/gnn_trainer/distributed.py);
  # 1 trains in the trainer's own process, or as one worker of a cluster TF_CONFIG describes.
  num_workers: int = pydantic.Field(1, gt=0)
  # parameter_server only: > 0 trains on a local cluster the trainer launches on loopback (one
  # coordinator, `num_workers` workers, this many parameter servers; distributed.py); null:
  # the cluster TF_CONFIG describes.
  num_ps: Optional[int] = None
  # Fixed-shape batches (TPUs need them): none; fit_or_skip (sizes that fit
  # `fit_or_skip_success_ratio` of batches, the rest skipped); tight (the largest batch seen).
  padding: Literal["none", "fit_or_skip", "tight"] = "none"
  fit_or_skip_success_ratio: float = pydantic.Field(0.99, gt=0, le=1)
  # Compile the training step with XLA (Keras `jit_compile`; needs `padding` fit_or_skip or
  # tight: XLA compiles once per shape). The string `#id` features are then hashed to
  # `model.id_hash_bins` integer buckets in preprocessing, outside the compiled step (XLA takes
  # no strings); the model's id embeddings read those buckets. benchmarks/README.md: measured.
  jit_compile: bool = False

  @pydantic.field_validator("num_ps")
  @classmethod
  def _some_parameter_server(cls, num_ps):
    if num_ps is not None and num_ps < 1:
      raise ValueError(f"{num_ps} parameter servers: strategy 'parameter_server' needs at "
                       "least one (leave num_ps out to take the cluster from TF_CONFIG)")
    return num_ps

  @pydantic.model_validator(mode="after")
  def _workers_fit_strategy(self):
    # The Runner exports the best validated weights: with no validated epoch there are none
    # (TF-GNN fails at the end of training, on a missing `best` checkpoint).
    if self.validation_freq > self.epochs_to_train(has_eval=True):
      raise ValueError(f"validation_freq {self.validation_freq} > epochs "
                       f"{self.epochs_to_train(has_eval=True)}: no epoch would be validated "
                       f"(set trainer.validation_freq <= epochs)")
    if self.jit_compile and self.padding == "none":
      raise ValueError("jit_compile needs fixed shapes: set trainer.padding to fit_or_skip or "
                       "tight")
    if self.num_ps is not None:
      if self.strategy != "parameter_server":
        raise ValueError(f"num_ps {self.num_ps} needs strategy 'parameter_server' (not "
                         f"{self.strategy!r})")
    elif self.num_workers > 1:
      if self.strategy != "multi_worker_mirrored":
        raise ValueError(f"num_workers {self.num_workers} needs strategy "
                         f"'multi_worker_mirrored' (not {self.strategy!r}), or "
                         "'parameter_server' with num_ps")
      if self.batch_size % self.num_workers:
        raise ValueError(f"batch_size {self.batch_size} (the global batch) is not divisible "
                         f"by num_workers {self.num_workers}")
    return self

  def epochs_to_train(self, has_eval: bool) -> int:
    """`epochs` when given; by default MAX_EPOCHS when early stopping on an eval split ends
    training, EPOCHS_WITHOUT_EARLY_STOPPING otherwise."""
    if self.epochs is not None:
      return self.epochs
    return MAX_EPOCHS if has_eval and self.early_stopping_patience else (
        EPOCHS_WITHOUT_EARLY_STOPPING)
