"""GnnTuner's config: the run config's `tuner` section (budget, seed, objective, search space).

Every key of the search space names a setting of the `model`, `trainer` or `sampling`
section and gives its candidate values: a list of choices, or a range `{low, high, log}`.
A key left out (or null) is not searched: the trials keep the config's own value. Each
candidate is checked against the setting's own constraints when the config loads, so an
impossible value (a dropout of 1.5, a range whose low is above its high, a log range from 0)
is a config error that names the key, before any trial runs.
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

import pydantic

from tfx_gnn.components.config_base import Strict
from tfx_gnn.components.gnn_trainer.config import MODEL_TEMPLATES, ModelOptions, TrainerConfig
from tfx_gnn.components.subgraph_sampler.config import SamplingConfig


class FloatRange(Strict):
  """A continuous range, sampled uniformly (or log-uniformly with `log: true`)."""
  low: float
  high: float
  log: bool = False

  @pydantic.model_validator(mode="after")
  def _possible(self):
    if self.low > self.high:
      raise ValueError(f"low {self.low} is above high {self.high}")
    if self.log and self.low <= 0:
      raise ValueError(f"a log range needs low > 0, got {self.low}")
    return self


class IntRange(Strict):
  low: int
  high: int
  step: int = pydantic.Field(1, gt=0)

  @pydantic.model_validator(mode="after")
  def _possible(self):
    if self.low > self.high:
      raise ValueError(f"low {self.low} is above high {self.high}")
    return self


def _range_or_list(value) -> str:
  return "list" if isinstance(value, (list, tuple)) else "range"


# A mapping is a range, a list the choices (a tagged union: an error names only the one meant).
Floats = Annotated[Union[Annotated[FloatRange, pydantic.Tag("range")],
                         Annotated[list[float], pydantic.Tag("list")]],
                   pydantic.Discriminator(_range_or_list)]
Ints = Annotated[Union[Annotated[IntRange, pydantic.Tag("range")],
                       Annotated[list[int], pydantic.Tag("list")]],
                 pydantic.Discriminator(_range_or_list)]

# Search-space key -> the config section whose field it sets (the field has the key's name).
SECTION_OF: dict[str, str] = {
    "template": "model", "num_rounds": "model", "units": "model", "message_dim": "model",
    "state_dropout_rate": "model", "input_dropout_rate": "model",
    "l2_regularization": "model", "feature_normalization": "model", "id_embeddings": "model",
    # MtAlbis (TF-GNN's hparams_vizier.py), applied to trials of template mt_albis only
    "attention_type": "model", "attention_num_heads": "model",
    "simple_conv_reduce_type": "model", "edge_dropout_rate": "model",
    "next_state_type": "model", "normalization_type": "model",
    # graph_sage, vanilla_mpnn
    "reduce_type": "model",
    "input_projection": "model",
    # gcn (Kipf & Welling's GCN is gcn with input_projection false, last_round_transform false)
    "add_self_loops": "model", "degree_normalization": "model",
    "last_round_activation": "model", "last_round_transform": "model",
    "learning_rate": "trainer", "weight_decay": "trainer",
    "learning_rate_schedule": "trainer", "batch_size": "trainer",
    "hops": "sampling",
    # `fanout_scale`: multiplies every fanout of `sampling.fanouts` (rounded, at least 1)
    "fanout_scale": "sampling",
}
SECTION_MODELS = {"trainer": TrainerConfig, "sampling": SamplingConfig}


def field_owner(key: str):
  """The config class whose field `key` is: a model option's template class (the shared
  ModelOptions first), or the trainer's or sampler's section."""
  if SECTION_OF[key] == "model":
    return next(cls for cls in (ModelOptions, *MODEL_TEMPLATES.values())
                if key in cls.model_fields)
  return SECTION_MODELS[SECTION_OF[key]]


class SearchSpace(Strict):
  """Candidate values per setting. The defaults follow TF-GNN's Vizier space for MtAlbis
  (`tensorflow_gnn/models/mt_albis/hparams_vizier.py`) and the usual ranges of the papers
  (learning rate 1e-3..3e-2, weight decay up to 5e-4, dropout up to 0.5)."""
  template: Optional[list[Literal["mt_albis", "graph_sage", "gat_v2", "hgt", "vanilla_mpnn",
                                  "multi_head_attention", "gcn"]]] = pydantic.Field(
      ["mt_albis", "graph_sage", "gcn"], description=(
          "Model templates to search. `gcn` is homogeneous here: on a graph with several "
          "node sets its trials are left out of the search."))
  num_rounds: Optional[Ints] = [1, 2, 3]
  units: Optional[Ints] = [16, 32, 64, 128]
  message_dim: Optional[Ints] = None
  state_dropout_rate: Optional[Floats] = [0.0, 0.1, 0.2, 0.3, 0.5]
  input_dropout_rate: Optional[Floats] = [0.0, 0.2, 0.5]
  l2_regularization: Optional[Floats] = None
  feature_normalization: Optional[list[Literal["none", "sum", "l2"]]] = ["none", "sum"]
  id_embeddings: Optional[list[bool]] = [True, False]
  attention_type: Optional[list[Literal["none", "multi_head", "gat_v2"]]] = [
      "none", "multi_head"]
  attention_num_heads: Optional[list[int]] = [2, 4, 8]
  simple_conv_reduce_type: Optional[list[str]] = ["mean", "mean|sum", "mean|max",
                                                  "mean|sum|max"]
  edge_dropout_rate: Optional[Floats] = [0.0, 0.1, 0.2, 0.3]
  next_state_type: Optional[list[Literal["dense", "residual"]]] = ["dense", "residual"]
  normalization_type: Optional[list[Literal["layer", "batch", "none"]]] = None
  reduce_type: Optional[list[str]] = None
  input_projection: Optional[list[bool]] = None
  add_self_loops: Optional[list[bool]] = None
  degree_normalization: Optional[list[Literal["none", "in", "out", "in_out", "in_in"]]] = None
  last_round_activation: Optional[list[Literal["relu", "linear"]]] = None
  last_round_transform: Optional[list[bool]] = None
  learning_rate: Optional[Floats] = FloatRange(low=1e-3, high=3e-2, log=True)
  weight_decay: Optional[Floats] = [0.0, 1e-5, 1e-4, 5e-4]
  learning_rate_schedule: Optional[list[Literal["constant", "cosine", "exponential"]]] = None
  batch_size: Optional[Ints] = None
  hops: Optional[Ints] = None
  fanout_scale: Optional[Floats] = None

  @pydantic.model_validator(mode="after")
  def _values_fit_their_settings(self):
    errors = []
    for key in SECTION_OF:
      space = getattr(self, key)
      if space is None:
        continue
      if isinstance(space, list):
        if not space:
          errors.append(f"{key}: no candidate values (leave the key out to keep the "
                        "config's value)")
        candidates = space
      else:
        candidates = [space.low, space.high]
      if key == "fanout_scale":
        errors += [f"{key}: {v} must be > 0" for v in candidates if v <= 0]
        continue
      if key == "template":  # its candidates are checked by their Literal type
        continue
      model = field_owner(key)
      for value in candidates:
        try:  # the field's own constraints (ge, lt, Literal) on each candidate
          model.__pydantic_validator__.validate_assignment(
              model.model_construct(), key, value)
        except pydantic.ValidationError as e:
          errors.append(f"{key}: candidate {value!r}: {e.errors()[0]['msg']}")
    if errors:
      raise ValueError("; ".join(errors))
    return self

  def searched(self) -> dict:
    """{key: candidates} of the keys that are searched."""
    return {k: getattr(self, k) for k in SECTION_OF if getattr(self, k) is not None}


# Start points (see TunerConfig.start_points); their settings are in tuning.start_point_params.
START_POINTS = ("gcn_kipf_welling", "graph_sage_mean_128")


class TunerConfig(Strict):
  """The GnnTuner (TFX's Tuner pattern): a seeded Optuna TPE search, each trial a training on
  in-memory samples (the dynamic mode), judged on the eval split only."""
  trials: int = pydantic.Field(20, ge=1)
  # Wall-clock budget of the whole search and its reruns: no trial starts after it, and the
  # running one stops at its first validated epoch past it (scored on the epochs it trained).
  max_minutes: float = pydantic.Field(30.0, gt=0)
  seed: int = 0
  # What selects the best trial, on the eval split, at the epoch whose weights the trainer
  # would export (the lowest eval loss): `accuracy` (the task's accuracy metric; loss when the
  # task has none) or `loss`.
  objective: Literal["accuracy", "loss"] = "accuracy"
  # Epochs of each trial (default: trainer.epochs, with its early stopping).
  trial_epochs: Optional[int] = pydantic.Field(None, gt=0)
  search_space: SearchSpace = SearchSpace()
  start_points: Optional[list[Literal[START_POINTS]]] = pydantic.Field(None, description=(
      "Recipes tried first, before the TPE search (Optuna's enqueue_trial), after trial 0, "
      "which is always the config's own settings: `gcn_kipf_welling` (Kipf & Welling's GCN: "
      "2 rounds of 16 units, self-loops, no input projection, a linear last round that only "
      "aggregates, dropout 0.5, L2 on the first layer, learning rate 0.01, no weight decay, "
      "full batch; only on graphs with one node set, normalized by the graph's degree "
      "feature where the data has one) and `graph_sage_mean_128` (GraphSAGE, mean reduce, 128 "
      "units, a round per sampled hop and at least 2, no id embeddings, sum-normalized "
      "features, dropout 0.5, the trainer's defaults). null: every recipe that applies to "
      "the graph; []: none. Recipes are never pruned."))
  prune_after_epochs: int = pydantic.Field(20, ge=0, description=(
      "Optuna's MedianPruner: a search trial whose running eval objective is worse than the "
      "median of earlier trials at the same epoch is stopped (state PRUNED in trials.json), "
      "but not before this many epochs (n_warmup_steps); start points never are."))
  rerun_top_k: int = pydantic.Field(3, ge=0, description=(
      "After the search, the top this many completed trials are trained again with "
      "`rerun_seeds` more trainer seeds, and the best is the one with the best mean eval "
      "objective over all its runs (one eval score varies by about a point per seed). 0: the "
      "best single run. Reruns count against max_minutes: those that do not fit are skipped "
      "(said in trials.json)."))
  rerun_seeds: int = pydantic.Field(2, ge=0, description=(
      "Extra trainer seeds (trainer.seed + 1, + 2, ...) of each rerun trial."))
