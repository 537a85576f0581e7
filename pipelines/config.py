"""The run configuration: one YAML file, validated on load.

Every section rejects unknown keys, so a typo is an error that names the key rather than a
silently ignored setting. Relative paths are resolved against the config file's directory.
"""
from __future__ import annotations

import os
from typing import Literal, Optional

import pydantic
import yaml

from components import secrets


class ConfigError(ValueError):
  """A configuration file that cannot be used; the message names the file and the key."""


class _Strict(pydantic.BaseModel):
  model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- data: the graph spec
class NodeTable(_Strict):
  """A node set read from one table: one row per node."""
  file: str
  id_column: str = "id"
  # Feature columns; by default every column but the id and the label. A string column of
  # space-separated numbers (e.g. `features`) becomes one fixed-length float vector.
  features: Optional[list[str]] = None
  label_column: Optional[str] = None


class EdgeTable(_Strict):
  """An edge set read from one table: one row per directed edge."""
  file: str
  source: str  # node set of the source endpoint
  target: str  # node set of the target endpoint
  source_column: str = "source"
  target_column: str = "target"
  features: Optional[list[str]] = None
  reverse: Optional[str] = None  # also add the reversed edge set under this name
  # Each row is an undirected edge: the edge set holds it in both directions (source and
  # target must be one node set), as GCN's symmetric adjacency expects.
  undirected: bool = False
  # Adds to the source node set a float feature of this name: each node's number of edges in
  # this set in the whole graph (its degree, for an undirected set). GCN can normalize by it
  # (model.degree_feature) instead of by the sampled subgraph's degrees.
  degree_feature: Optional[str] = None

  @pydantic.model_validator(mode="after")
  def _undirected(self):
    if self.undirected and self.source != self.target:
      raise ValueError(f"undirected needs one node set at both ends, got source "
                       f"{self.source!r} and target {self.target!r}")
    if self.undirected and self.reverse is not None:
      raise ValueError("an undirected edge set already holds both directions; drop `reverse`")
    return self


class SplitTable(_Strict):
  """Train/eval/test membership of the labelled node set: from a table, by ratio, or by the
  value of one of its features (e.g. OGBN-MAG's year: train < 2018, eval 2018, test 2019)."""
  file: Optional[str] = None  # columns `id`, `split` (train, eval/val/valid/validation, test)
  id_column: str = "id"
  split_column: str = "split"
  ratios: Optional[dict[Literal["train", "eval", "test"], float]] = None
  seed: int = 0
  # A scalar numeric feature of the labelled node set and where eval and test start: nodes
  # with feature < boundaries.eval are train, < boundaries.test eval, the rest test.
  feature: Optional[str] = None
  boundaries: Optional[dict[Literal["eval", "test"], float]] = None

  @pydantic.model_validator(mode="after")
  def _one_source(self):
    given = [k for k in ("file", "ratios", "feature") if getattr(self, k) is not None]
    if len(given) != 1:
      raise ValueError(f"give exactly one of `file`, `ratios` or `feature` (got "
                       f"{', '.join(given) or 'none'})")
    if (self.feature is None) != (self.boundaries is None):
      raise ValueError("`feature` and `boundaries` go together")
    if self.boundaries is not None:
      if set(self.boundaries) != {"eval", "test"}:
        raise ValueError("boundaries: give both `eval` and `test` (where each split starts)")
      if self.boundaries["eval"] > self.boundaries["test"]:
        raise ValueError(f"boundaries: eval ({self.boundaries['eval']}) must not be above "
                         f"test ({self.boundaries['test']})")
    if self.ratios is not None and abs(sum(self.ratios.values()) - 1.0) > 1e-6:
      raise ValueError(f"ratios must sum to 1, got {sum(self.ratios.values())}")
    return self


class TablesSource(_Strict):
  """A graph from node and edge tables (CSV, CSV.gz, Parquet)."""
  directory: str = "."
  node_sets: dict[str, NodeTable]
  edge_sets: dict[str, EdgeTable]
  label_node_set: Optional[str] = None  # default: the one node set with a label_column
  num_classes: Optional[int] = None  # default: max label + 1
  # Of the labelled node set (required with one); a graph without labels (no label_column)
  # has none: link prediction splits its links.
  splits: Optional[SplitTable] = None


class SyntheticSource(_Strict):
  """The embedded OGBN-MAG-shaped graph, generated deterministically from `seed`."""
  num_papers: int = pydantic.Field(4000, gt=0)
  num_classes: int = pydantic.Field(8, ge=2)
  feature_dim: int = pydantic.Field(32, gt=0)
  seed: int = 0


class UnigraphSource(_Strict):
  """An existing unigraph directory (its GraphSchema plus files), with a split table; e.g. the
  output of TF-GNN's `tfgnn_convert_ogb_dataset` (see pipelines/configs/mag.yaml)."""
  schema_file: str  # the GraphSchema .pbtxt (or its directory)
  label_node_set: str
  label_feature: str = "label"
  num_classes: Optional[int] = None
  splits: SplitTable
  # Reversed edge sets to add, forward name -> reverse name (e.g. {writes: written}), for a
  # schema that does not declare them (TF-GNN's converter writes forward edge sets only).
  reverse: dict[str, str] = {}


class SyntheticGraphsSource(_Strict):
  """The embedded graph collection (for graph-level tasks): many small graphs whose class
  (`label`) and float `target` depend on their structure and node features, written as tables:
  a `graph` node set (label, target), a `node` node set, `edge` (node->node, both directions)
  and `member_of` (node->graph). See pipelines/synthetic.py."""
  num_graphs: int = pydantic.Field(600, ge=30)
  num_classes: int = pydantic.Field(3, ge=2, le=4)
  feature_dim: int = pydantic.Field(8, gt=0)
  min_nodes: int = pydantic.Field(8, ge=4)
  max_nodes: int = pydantic.Field(20, ge=4)
  seed: int = 0


class DataConfig(_Strict):
  synthetic: Optional[SyntheticSource] = None
  tables: Optional[TablesSource] = None
  unigraph: Optional[UnigraphSource] = None
  synthetic_graphs: Optional[SyntheticGraphsSource] = None

  @pydantic.model_validator(mode="after")
  def _one_source(self):
    kinds = ("synthetic", "tables", "unigraph", "synthetic_graphs")
    given = [k for k in kinds if getattr(self, k) is not None]
    if len(given) != 1:
      raise ValueError(f"give exactly one of {', '.join(kinds)} (got {given or 'none'})")
    return self


# ---------------------------------------------------------------- the other sections
class ValidationConfig(_Strict):
  allow_self_loops: bool = True
  allow_duplicate_edges: bool = True
  max_isolated_fraction: float = pydantic.Field(1.0, ge=0, le=1)


class SamplingConfig(_Strict):
  """Subgraphs rooted at each seed: `hops` rounds of uniform sampling without replacement,
  from each reached node set along each of its outgoing edge sets named in `fanouts`."""
  hops: int = pydantic.Field(2, ge=1, le=5)
  # Required (or a SamplingSpec instead) for node and link tasks; graph-level tasks take whole
  # graphs and sample nothing.
  fanouts: Optional[dict[str, int]] = None
  # Instead of hops and fanouts: a tensorflow_gnn SamplingSpec in text format (a file, e.g.
  # TF-GNN's examples/mag/sampling_spec.pbtxt, whose text is read when the config loads, so the
  # compiled pipeline carries it; or the text itself). Its seed op must start from the
  # labelled node set; uniform sampling ops only for the fast engine; node tasks only.
  spec_file: Optional[str] = None
  spec_text: Optional[str] = None
  # `fast`: the project's engine (numpy CSR, reproducible from `seed`), run in Beam DoFns;
  # `tfgnn_beam`: TF-GNN's Beam sampler (unseeded).
  engine: Literal["fast", "tfgnn_beam"] = "fast"
  seed: int = 0  # the fast engine's subgraphs are a function of (seed, split, seed node id)
  batch_size: int = pydantic.Field(256, gt=0)  # seeds per Beam element (fast engine)
  # `batch`: the SubgraphSampler writes every split's subgraphs once and the trainer reads
  # them; `dynamic`: the sampler writes only eval and test (fixed, for validation, evaluation
  # and attribution) and the trainer samples fresh train subgraphs in memory every epoch from
  # the Graph artifact, with the fast engine (salted with the epoch).
  mode: Literal["batch", "dynamic"] = "batch"

  @pydantic.model_validator(mode="after")
  def _dynamic_needs_fast(self):
    if self.mode == "dynamic" and self.engine != "fast":
      raise ValueError(f"mode 'dynamic' samples in the trainer with the fast engine; "
                       f"engine {self.engine!r} is for mode 'batch' only")
    return self

  @pydantic.field_validator("fanouts")
  @classmethod
  def _positive(cls, fanouts):
    for name, value in (fanouts or {}).items():
      if value <= 0:
        raise ValueError(f"fanout of edge set {name!r} must be > 0, got {value}")
    return fanouts

  @pydantic.model_validator(mode="after")
  def _one_spec(self):
    if self.fanouts is not None and (self.spec_file or self.spec_text):
      raise ValueError("give either `fanouts` (with `hops`) or a SamplingSpec "
                       "(`spec_file` / `spec_text`), not both")
    if self.spec_file and self.spec_text is None:
      try:
        with open(self.spec_file) as f:
          text = f.read()
      except OSError as e:
        raise ValueError(f"spec_file {self.spec_file}: cannot read it ({e.strerror})") from None
      object.__setattr__(self, "spec_text", text)  # frozen model: set once, while validating
    return self


# Template-specific ModelConfig options: which templates each applies to. Setting one for
# another template is an error that names the key (a silently ignored option misleads).
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


class ModelConfig(_Strict):
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


class TaskConfig(_Strict):
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


class IntegratedGradientsConfig(_Strict):
  """The `integrated_gradients` signature exported beside `serving_default` (TF-GNN's
  IntegratedGradientsExporter); its settings are baked into the exported model."""
  steps: int = pydantic.Field(32, ge=2)  # interpolations of the Riemann sum
  # True: a uniform random counterfactual within each feature's range in the subgraph;
  # false: all-zero features (the mean of standardized features).
  random_counterfactual: bool = False
  seed: Optional[int] = None  # of the random counterfactual


class TrainerConfig(_Strict):
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


class EvaluationConfig(_Strict):
  # Classification: accuracy, macro_f1, micro_f1 (binary also auc; dgi: a logistic-regression
  # probe's on the embeddings); regression: mse, rmse, mae (lower is better).
  metric: Literal["accuracy", "macro_f1", "micro_f1", "auc", "mse", "rmse", "mae"] = "accuracy"
  lower_bound: float = pydantic.Field(0.0, ge=0, le=1)
  upper_bound: Optional[float] = None  # for mse, rmse, mae
  # The candidate may be at most this much worse than the baseline (negative: must improve);
  # "worse" is higher for mse/rmse/mae.
  max_regression: float = 0.0


def _inside_root(path: Optional[str], what: str) -> Optional[str]:
  """A relative path must stay inside the pipeline root: `..` may not lead out of it (an
  absolute path is an explicit choice and is kept)."""
  if path is None or os.path.isabs(path) or "://" in path:
    return path
  normalized = os.path.normpath(path)
  if normalized == ".." or normalized.startswith(".." + os.sep):
    raise ValueError(f"{path!r} escapes {what}; give a path inside it (or an absolute path)")
  return path


class AttributionConfig(_Strict):
  """The Attribution component: integrated gradients over test-split subgraphs."""
  enabled: bool = True
  num_subgraphs: int = pydantic.Field(256, gt=0)  # test subgraphs attributed (the first N)
  batch_size: int = pydantic.Field(32, gt=0)
  # Hop distance from the root: BFS over the sampled edges taken in both directions
  # ("undirected") or only in their sampled direction, away from the root ("sampled").
  hop_edges: Literal["undirected", "sampled"] = "undirected"
  drawn_subgraphs: int = pydantic.Field(3, ge=0)  # example subgraphs drawn in the report


class ReportConfig(_Strict):
  """The RunReport component: one self-contained HTML report per run, logged to MLflow."""
  enabled: bool = True


class PushConfig(_Strict):
  destination: str = "serving"  # relative to pipeline.root (kubeflow.pipeline_root when compiled)

  @pydantic.field_validator("destination")
  @classmethod
  def _inside(cls, value):
    return _inside_root(value, "pipeline.root")


class MlflowConfig(_Strict):
  tracking_uri: Optional[str] = None  # default: sqlite:///<root>/mlflow.db
  experiment: Optional[str] = None  # default: the pipeline name


class PipelineConfig(_Strict):
  name: str = "tfx-gnn"
  root: str = "runs"
  metadata: Optional[str] = None  # default: <root>/metadata.sqlite; relative: to the root
  enable_cache: bool = True
  # Local default: Beam's in-process FnApiRunner (plain DirectRunner first tries to download
  # Prism); `sdk_container_image` stops TFX from building an sdist of itself for every run.
  beam_pipeline_args: list[str] = ["--runner=FnApiRunner", "--direct_num_workers=1",
                                   "--sdk_container_image=unused"]
  # The most memory the graph's tables may take once read (GB); a larger graph is refused at
  # ingest, naming the table, before the kernel's OOM killer would end the run. Default: 80%
  # of the memory available when the run starts.
  memory_limit_gb: Optional[float] = pydantic.Field(None, gt=0)

  @pydantic.field_validator("metadata")
  @classmethod
  def _metadata_inside(cls, value):
    return _inside_root(value, "pipeline.root")


class KubeflowConfig(_Strict):
  """`tfx-gnn compile`: a Kubeflow Pipelines v2 pipeline file from the same DAG."""
  image: str = "tfx-gnn:latest"  # the container image every step runs in
  pipeline_root: Optional[str] = None  # e.g. gs://bucket/tfx-gnn or s3://...; default: root
  output_file: str = "pipeline.json"


class Config(_Strict):
  pipeline: PipelineConfig = PipelineConfig()
  data: DataConfig
  validation: ValidationConfig = ValidationConfig()
  sampling: SamplingConfig = SamplingConfig()  # required (fanouts) but for graph-level tasks
  model: ModelConfig = ModelConfig()
  task: TaskConfig = TaskConfig()
  trainer: TrainerConfig = TrainerConfig()
  evaluation: EvaluationConfig = EvaluationConfig()
  attribution: AttributionConfig = AttributionConfig()
  report: ReportConfig = ReportConfig()
  push: PushConfig = PushConfig()
  mlflow: MlflowConfig = MlflowConfig()
  kubeflow: KubeflowConfig = KubeflowConfig()

  @property
  def runs_attribution(self) -> bool:
    """Attribution runs on single supervised root-node tasks, unless disabled."""
    return self.attribution.enabled and self.task.has_integrated_gradients

  # Resolved locations (absolute), derived from the above.
  @property
  def root(self) -> str:
    return os.path.abspath(self.pipeline.root)

  @property
  def metadata_path(self) -> str:
    return os.path.abspath(os.path.join(self.root, self.pipeline.metadata or "metadata.sqlite"))

  @property
  def serving_dir(self) -> str:
    return self.serving_dir_under(self.root)

  def serving_dir_under(self, base: str) -> str:
    """Where pushed versions go when artifacts live under `base` (a path or gs:// URL)."""
    return os.path.join(base, self.push.destination)

  @property
  def tracking_uri(self) -> str:
    """Without credentials: this is what ML Metadata, logs and summaries see (the local runner
    hands a URI's user and password to MLflow through its environment, `secrets`)."""
    uri = self.mlflow.tracking_uri or "sqlite:///" + os.path.join(self.root, "mlflow.db")
    return secrets.strip_credentials(uri)[0]

  @property
  def experiment(self) -> str:
    return self.mlflow.experiment or self.pipeline.name


def _format_errors(source: str, error: pydantic.ValidationError) -> str:
  lines = [f"invalid config {source}:"]
  for e in error.errors():
    key = ".".join(str(p) for p in e["loc"])
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
      msg = "unknown key"
    lines.append(f"  {key}: {msg}")
  return "\n".join(lines)


# Data paths in a config file are relative to that file; the pipeline root is relative to
# the working directory (where the user runs `tfx-gnn`).
_PATH_KEYS = (("data", "tables", "directory"), ("data", "unigraph", "schema_file"),
              ("data", "unigraph", "splits", "file"), ("sampling", "spec_file"))


def _resolve_paths(raw: dict, base: str) -> dict:
  for path in _PATH_KEYS:
    node = raw
    for key in path[:-1]:
      node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict) and isinstance(node.get(path[-1]), str):
      value = node[path[-1]]
      if "://" not in value:
        node[path[-1]] = os.path.normpath(os.path.join(base, value))
  return raw


def _check_references(config: Config, source: str) -> None:
  """Names that must agree across sections, where the config alone can tell."""
  level = config.task.level
  if config.runs_attribution and config.trainer.integrated_gradients is None:
    raise ConfigError(f"invalid config {source}:\n  trainer.integrated_gradients: null, but "
                      "Attribution runs on it (set attribution.enabled: false, or give it)")
  collection = config.data.synthetic_graphs is not None
  synthetic = collection or config.data.synthetic is not None  # other sources may be either
  if synthetic and (level == "graph") != collection:
    raise ConfigError(
        f"invalid config {source}:\n  task.type: {config.task.type!r} "
        + ("needs a graph collection (data.synthetic_graphs, or data.tables with one node "
           "per graph in the labelled node set)" if level == "graph" else
           "is not a graph-level task; data.synthetic_graphs is a graph collection "
           "(use graph_multiclass or graph_regression)"))
  sampling = config.sampling
  if level == "node" and not (sampling.fanouts or sampling.spec_text):
    raise ConfigError(f"invalid config {source}:\n  sampling.fanouts: required for task "
                      f"{config.task.type!r} (edge set -> fanout), or a SamplingSpec in "
                      "sampling.spec_file")
  if level == "link" and not sampling.fanouts:
    raise ConfigError(f"invalid config {source}:\n  sampling.fanouts: required for task "
                      f"{config.task.type!r} (edge set -> fanout; link prediction samples "
                      "around both endpoints and takes no SamplingSpec)")
  if sampling.mode == "dynamic" and (level != "node" or config.trainer.num_workers > 1):
    raise ConfigError(f"invalid config {source}:\n  sampling.mode: 'dynamic' samples root-node "
                      "subgraphs in the GnnTrainer's own process: it needs a node-level task "
                      f"(task.type is {config.task.type!r}) and trainer.num_workers: 1 "
                      f"(it is {config.trainer.num_workers})")
  tables = config.data.tables
  if tables is not None and level != "link" and (tables.splits is None or not any(
      t.label_column for t in tables.node_sets.values())):
    raise ConfigError(f"invalid config {source}:\n  data.tables: task.type "
                      f"{config.task.type!r} needs a labelled node set (a label_column) "
                      "and data.tables.splits; only link_prediction trains without labels")
  if tables is not None and level == "link":
    edge_sets = set(tables.edge_sets) | {e.reverse for e in tables.edge_sets.values()
                                          if e.reverse}
    if config.task.edge_set not in edge_sets:
      raise ConfigError(f"invalid config {source}:\n  task.edge_set: unknown edge set "
                        f"{config.task.edge_set!r}; the graph has {sorted(edge_sets)}")
  if tables is None:
    return  # other sources' set names are known once the graph is ingested (the sampler checks)
  edge_sets = set(tables.edge_sets) | {e.reverse for e in tables.edge_sets.values() if e.reverse}
  unknown = sorted(set(config.sampling.fanouts or {}) - edge_sets)
  if unknown:
    raise ConfigError(f"invalid config {source}:\n  sampling.fanouts: unknown edge set(s) "
                      f"{', '.join(map(repr, unknown))}; the graph has {sorted(edge_sets)}")


def parse_config(raw: dict, source: str = "<config>", base_dir: str = ".") -> Config:
  """Validates a config dict; relative paths resolve against `base_dir`."""
  if not isinstance(raw, dict):
    raise ConfigError(f"invalid config {source}: expected a mapping at the top level")
  try:
    config = Config.model_validate(_resolve_paths(raw, os.path.abspath(base_dir)))
  except pydantic.ValidationError as e:
    raise ConfigError(_format_errors(source, e)) from None
  _check_references(config, source)
  return config


def load_config(path: str, overrides: Optional[dict] = None) -> Config:
  """Loads and validates a YAML config file; `overrides` are merged on top (nested dicts)."""
  try:
    with open(path) as f:
      raw = yaml.safe_load(f) or {}
  except FileNotFoundError:
    raise ConfigError(f"config file not found: {path}") from None
  except yaml.YAMLError as e:
    raise ConfigError(f"config {path} is not valid YAML: {e}") from None
  if overrides:
    raw = merge(raw, overrides)
  return parse_config(raw, path, os.path.dirname(os.path.abspath(path)))


def merge(base: dict, overrides: dict) -> dict:
  out = dict(base)
  for key, value in overrides.items():
    if isinstance(value, dict) and isinstance(out.get(key), dict):
      out[key] = merge(out[key], value)
    else:
      out[key] = value
  return out


def to_dict(config: Config) -> dict:
  return config.model_dump(mode="json")

