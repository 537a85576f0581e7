"""GnnTrainer's config: the run config's `model`, `task` and `trainer` sections."""
from __future__ import annotations

from typing import Literal, Optional

import pydantic

from tfx_gnn.components.config_base import Strict


MODEL_TEMPLATE_OPTIONS: dict[str, tuple[str, ...]] = {
    "message_dim": ("mt_albis", "gat_v2", "multi_head_attention", "vanilla_mpnn", "graph_sage"),
    "attention_type": ("mt_albis",),
    "attention_edge_set_names": ("mt_albis",),
    "attention_num_heads": ("mt_albis",),
    "simple_conv_reduce_type": ("mt_albis",),
    "simple_conv_use_receiver_state": ("mt_albis",),
    "edge_dropout_rate": ("mt_albis", "gat_v2", "multi_head_attention"),
    "normalization_type": ("mt_albis",),
    "batch_normalization_momentum": ("mt_albis",),
    "next_state_type": ("mt_albis",),
    "edge_set_combine_type": ("mt_albis",),
    "num_heads": ("gat_v2", "multi_head_attention", "hgt"),
    "heads_merge_type": ("gat_v2",),
    "reduce_type": ("vanilla_mpnn", "graph_sage"),
    "use_layer_normalization": ("vanilla_mpnn", "hgt"),
    "use_pooling": ("graph_sage",),
    "l2_normalize": ("graph_sage",),
    "combine_type": ("graph_sage",),
    "use_weighted_skip": ("hgt",),
    "add_self_loops": ("gcn",),
    "degree_normalization": ("gcn",),
    "degree_feature": ("gcn",),
    "last_round_activation": ("gcn",),
    "last_round_transform": ("gcn",),
    "l2_regularization": ("mt_albis", "gat_v2", "multi_head_attention", "vanilla_mpnn", "gcn"),
    "last_round_node_sets": ("mt_albis", "gat_v2", "multi_head_attention", "vanilla_mpnn",
                             "graph_sage", "gcn"),
}


class ModelConfig(Strict):
  """The GNN: a template from TF-GNN's model zoo (`tensorflow_gnn.models.*`), its options,
  and the input layer shared by all templates. Every MtAlbisGraphUpdate option is here."""
  template: Literal["mt_albis", "graph_sage", "gat_v2", "hgt", "vanilla_mpnn",
                    "multi_head_attention", "gcn"] = "mt_albis"
  num_rounds: int = pydantic.Field(2, ge=1)
  units: int = pydantic.Field(64, gt=0)
  state_dropout_rate: float = pydantic.Field(0.0, ge=0, lt=1)
  # Node sets updated in the last round; default: the task's root node set (all for graph-level
  # tasks). Not for hgt, which updates every node set that receives messages.
  last_round_node_sets: Optional[list[str]] = None
  # -- template-specific (see MODEL_TEMPLATE_OPTIONS)
  message_dim: int = pydantic.Field(64, gt=0)
  l2_regularization: float = pydantic.Field(0.0, ge=0)
  # mt_albis
  attention_type: Literal["none", "multi_head", "gat_v2"] = "none"
  attention_edge_set_names: Optional[list[str]] = None
  attention_num_heads: int = 4
  simple_conv_reduce_type: str = "mean"
  simple_conv_use_receiver_state: bool = True
  edge_dropout_rate: float = pydantic.Field(0.0, ge=0, lt=1)
  normalization_type: Literal["layer", "batch", "none"] = "layer"
  batch_normalization_momentum: float = 0.99
  next_state_type: Literal["dense", "residual"] = "dense"
  edge_set_combine_type: Literal["concat", "sum"] = "concat"
  # gat_v2, multi_head_attention, hgt
  num_heads: int = pydantic.Field(4, gt=0)
  heads_merge_type: Literal["concat", "mean"] = "concat"
  # vanilla_mpnn, graph_sage
  reduce_type: str = "mean"
  use_layer_normalization: bool = False
  use_pooling: bool = False
  l2_normalize: bool = True
  combine_type: Literal["sum", "concat"] = "sum"
  use_weighted_skip: bool = True
  # gcn (homogeneous graphs: one node set)
  add_self_loops: bool = True
  degree_normalization: Literal["none", "in", "out", "in_out", "in_in"] = "in_out"
  # A node feature holding each node's degree in the whole graph (e.g. written by
  # data.tables.edge_sets.<set>.degree_feature; never a model input): GCN's symmetric
  # normalization uses it instead of the sampled subgraph's degrees, which are too small at
  # the outer hop. With one undirected edge set, fanouts covering every neighbour and
  # num_rounds == hops, this computes full-graph GCN at the root exactly.
  degree_feature: Optional[str] = None
  # The last round's activation: "linear" as in Kipf & Welling, whose last layer feeds the
  # softmax directly (here the task's head); its states get no dropout either way.
  last_round_activation: Literal["relu", "linear"] = "relu"
  # false: the last round only aggregates (normalized sum with the self-loop, no weights, no
  # bias, no activation), so the task head's Dense is Kipf & Welling's second-layer weights and
  # bias: softmax(A (H W2) + b2), with L2 on the first layer only, as in the paper.
  last_round_transform: bool = True
  # -- the input layer
  # Node sets without features get a trainable embedding of their hashed ids; with
  # `id_embeddings: false` they start empty and only relay messages (nodes unseen in training
  # then get no random state).
  id_embeddings: bool = True
  id_embedding_dim: int = pydantic.Field(32, gt=0)
  id_hash_bins: int = pydantic.Field(50_000, gt=0)
  input_dropout_rate: float = pydantic.Field(0.0, ge=0, lt=1)
  # false: the (normalized) features themselves are the initial states, without a Dense
  # projection to `units` — as in the GCN and GAT papers, whose first layer transforms them.
  input_projection: bool = True
  # Per-node normalization of the input feature vector: "sum" divides by its L1 norm (as
  # GCN and GAT do for bag-of-words), "l2" by its L2 norm.
  feature_normalization: Literal["none", "sum", "l2"] = "none"
  # Drop message passing altogether: a features-only baseline on the root node.
  features_only: bool = False

  @pydantic.model_validator(mode="after")
  def _options_fit_template(self):
    # Set and not the default (a config re-read from its full JSON dump has every key set).
    wrong = sorted(k for k in self.model_fields_set
                   if k in MODEL_TEMPLATE_OPTIONS
                   and self.template not in MODEL_TEMPLATE_OPTIONS[k]
                   and getattr(self, k) != type(self).model_fields[k].default)
    if not self.input_projection and self.template == "hgt":
      raise ValueError("input_projection: false does not apply to template 'hgt' (HGT needs "
                       "every initial state to have `units` dimensions)")
    if wrong:
      raise ValueError("; ".join(
          f"option {k!r} does not apply to template {self.template!r} (only to "
          f"{', '.join(MODEL_TEMPLATE_OPTIONS[k])})" for k in wrong))
    return self


ROOT_NODE_TASKS = ("root_node_multiclass", "root_node_binary", "root_node_regression", "dgi")
GRAPH_TASKS = ("graph_multiclass", "graph_regression")
LINK_TASKS = ("link_prediction",)

# TaskConfig options: the task types each applies to (another type's option is an error).
TASK_OPTIONS: dict[str, tuple[str, ...]] = {
    "regression_loss": ("root_node_regression", "graph_regression"),
    "dgi_loss_weight": ("root_node_multiclass",),
    "edge_set": LINK_TASKS,
    "scorer": LINK_TASKS,
    "dot_product_projection": LINK_TASKS,
    "negatives_per_positive": LINK_TASKS,
    "edge_split": LINK_TASKS,
    "pooling": GRAPH_TASKS,
    "target_feature": ("graph_regression",),
}


class TaskConfig(Strict):
  """What the model learns (tensorflow_gnn.runner tasks).

  About each subgraph's root node: root_node_multiclass / root_node_binary (the label; binary
  needs 2 classes), root_node_regression (the label as a number), dgi (Deep Graph Infomax: no
  label; the model serves root-node embeddings, also written to Parquet per node id).
  About links: link_prediction (runner.DotProductLinkPrediction or
  HadamardProductLinkPrediction) on the links of `edge_set`: its edges are split into
  train/eval/test positives, each with `negatives_per_positive` random non-links; each
  labelled pair is one subgraph sampled around both endpoints, with TF-GNN's `_readout`
  structure; eval/test positives are removed from the graph, and a train positive from its
  own subgraph.
  About whole graphs of a collection (the labelled node set holds one node per graph, the
  edge sets into it tell each node's graph): graph_multiclass (runner.GraphMulticlass-
  Classification on the graph's label), graph_regression (runner.GraphMeanSquaredError /
  MeanAbsoluteError on `target_feature`, default the label), pooling node states by `pooling`.
  """
  type: Literal["root_node_multiclass", "root_node_binary", "root_node_regression", "dgi",
                "link_prediction", "graph_multiclass", "graph_regression"
                ] = "root_node_multiclass"
  regression_loss: Literal["mse", "mae"] = "mse"
  # root_node_multiclass only: > 0 adds a DeepGraphInfomaxTask (multi-task) with this loss
  # weight (classification's is 1).
  dgi_loss_weight: float = pydantic.Field(0.0, ge=0)
  # link_prediction
  edge_set: Optional[str] = None  # the links to predict (required)
  scorer: Literal["dot_product", "hadamard"] = "dot_product"
  # dot_product: project both endpoints' states by one learned linear map first and scale by
  # 1/sqrt(dim) (false: the library's plain dot product of the GNN's last states, which are
  # non-negative after ReLU, so every logit is >= 0; it does not learn, see README).
  dot_product_projection: bool = True
  negatives_per_positive: int = pydantic.Field(1, ge=1, le=100)
  edge_split: dict[Literal["train", "eval", "test"], float] = {
      "train": 0.8, "eval": 0.1, "test": 0.1}
  # graph_multiclass, graph_regression: how node states are pooled into the graph's
  pooling: Literal["mean", "sum", "max"] = "mean"
  target_feature: Optional[str] = None  # graph_regression: a feature of the graph node set

  @pydantic.model_validator(mode="after")
  def _options_fit_type(self):
    for key, types in TASK_OPTIONS.items():
      if (key in self.model_fields_set and self.type not in types
          and getattr(self, key) != type(self).model_fields[key].default):
        raise ValueError(f"option {key!r} does not apply to task {self.type!r} (only to "
                         f"{', '.join(types)})")
    if self.type == "link_prediction":
      if not self.edge_set:
        raise ValueError("task link_prediction needs `edge_set` (the links to predict)")
      if abs(sum(self.edge_split.values()) - 1.0) > 1e-6 or not self.edge_split.get("train"):
        raise ValueError(f"edge_split must sum to 1 with a train share, got {self.edge_split}")
    return self

  @property
  def level(self) -> str:
    """`node` (root-node tasks), `link` or `graph`."""
    return ("link" if self.type in LINK_TASKS else
            "graph" if self.type in GRAPH_TASKS else "node")

  def seeds(self) -> dict:
    """What the sampler must produce for this task (only what changes the subgraphs, so that
    e.g. another scorer reuses the sampled examples)."""
    if self.level == "link":
      return {"kind": "links", "edge_set": self.edge_set,
              "negatives_per_positive": self.negatives_per_positive,
              "edge_split": dict(self.edge_split)}
    if self.level == "graph":
      return {"kind": "graphs"}
    return {"kind": "nodes"}

  @property
  def has_integrated_gradients(self) -> bool:
    """Whether the trained model gets an integrated-gradients export (and Attribution runs):
    single supervised root-node tasks only; DGI's model feeds two graphs, which TF-GNN's IG
    exporter cannot take, and attribution by hops from a root means nothing to link and
    graph-level tasks."""
    return self.level == "node" and self.type != "dgi" and not self.dgi_loss_weight


class IntegratedGradientsConfig(Strict):
  """The `integrated_gradients` signature exported beside `serving_default` (TF-GNN's
  IntegratedGradientsExporter); its settings are baked into the exported model."""
  steps: int = pydantic.Field(32, ge=2)  # interpolations of the Riemann sum
  # True: a uniform random counterfactual within each feature's range in the subgraph;
  # false: all-zero features (the mean of standardized features).
  random_counterfactual: bool = False
  seed: Optional[int] = None  # of the random counterfactual


class TrainerConfig(Strict):
  epochs: int = pydantic.Field(5, gt=0)
  batch_size: int = pydantic.Field(128, gt=0)
  learning_rate: float = pydantic.Field(1e-3, gt=0)
  # constant; cosine (to 0 over all epochs); exponential (x decay_rate per epoch)
  learning_rate_schedule: Literal["constant", "cosine", "exponential"] = "constant"
  decay_rate: float = pydantic.Field(0.96, gt=0, le=1)
  weight_decay: float = pydantic.Field(0.0, ge=0)
  steps_per_epoch: Optional[int] = pydantic.Field(None, gt=0)
  shuffle_buffer: int = pydantic.Field(10_000, gt=0)
  # A split whose TFRecord files total at most this many MB is read once and kept in memory
  # (serialized) for the later epochs and validations; 0: always read from the files.
  cache_examples_mb: int = pydantic.Field(1024, ge=0)
  seed: int = 0
  # The model's integrated-gradients signature (what Attribution runs); null: none. A pipeline
  # that does not run Attribution exports none (it costs a second traced SavedModel).
  integrated_gradients: Optional[IntegratedGradientsConfig] = IntegratedGradientsConfig()
  # Early stopping on a validation metric (Keras name without "val_", e.g. loss,
  # sparse_categorical_accuracy): stop after `patience` epochs without improvement. With an eval
  # split, the weights of the epoch with the lowest validation loss are exported.
  early_stopping_patience: Optional[int] = pydantic.Field(None, gt=0)
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
  # Fixed-shape batches (TPUs need them): none; fit_or_skip (sizes that fit
  # `fit_or_skip_success_ratio` of batches, the rest skipped); tight (the largest batch seen).
  padding: Literal["none", "fit_or_skip", "tight"] = "none"
  fit_or_skip_success_ratio: float = pydantic.Field(0.99, gt=0, le=1)

  @pydantic.model_validator(mode="after")
  def _workers_fit_strategy(self):
    # The Runner exports the best validated weights: with no validated epoch there are none
    # (TF-GNN fails at the end of training, on a missing `best` checkpoint).
    if self.validation_freq > self.epochs:
      raise ValueError(f"validation_freq {self.validation_freq} > epochs {self.epochs}: no "
                       f"epoch would be validated (set trainer.validation_freq <= epochs)")
    if self.num_workers > 1:
      if self.strategy != "multi_worker_mirrored":
        raise ValueError(f"num_workers {self.num_workers} needs strategy "
                         f"'multi_worker_mirrored' (not {self.strategy!r})")
      if self.batch_size % self.num_workers:
        raise ValueError(f"batch_size {self.batch_size} (the global batch) is not divisible "
                         f"by num_workers {self.num_workers}")
    return self
