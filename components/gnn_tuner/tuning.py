"""GnnTuner's search, as plain functions: a seeded Optuna TPE study over the search space,
each trial a TF-GNN Runner training on subgraphs sampled in memory (the dynamic mode's
`EpochSubgraphs`, fresh every epoch), judged on the eval split. The test split is never read.

The order: trial 0 is the config's own settings, then the start points that apply to the
graph (recipes enqueued before TPE draws anything), then the TPE search, whose trials Optuna's
MedianPruner may stop from the trainer's epoch callback. After the search the top trials are
trained again with more trainer seeds, and the best mean eval objective wins.

`tune()` returns the best trial's settings as overrides of the run config's `model`,
`trainer` and `sampling` sections (`best_hyperparameters.txt`, JSON, as TFX's Tuner names
its file), and the same as YAML that a user can pin in the config.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd
import yaml

from tfx_gnn.components import config_base, graph_io, hyperparameters
from tfx_gnn.components.gnn_trainer.config import (
    MODEL_TEMPLATES, ModelConfig, TaskConfig, TrainerConfig)
from tfx_gnn.components.gnn_tuner.config import (
    SECTION_OF, START_POINTS, FloatRange, IntRange, SearchSpace, TunerConfig)
from tfx_gnn.components.subgraph_sampler import relation_paths
from tfx_gnn.components.subgraph_sampler.config import SamplingConfig

BEST_HYPERPARAMETERS_FILE = hyperparameters.BEST_HYPERPARAMETERS_FILE  # TFX Tuner's name
BEST_YAML_FILE = "best_hyperparameters.yaml"  # the same, to pin in the run config
TRIALS_FILE = "trials.json"


class TunerError(ValueError):
  """A search that cannot run (no eval split, no fanouts) or in which no trial succeeded."""


def non_default(cfg) -> dict:
  """The settings of a config section that differ from its defaults (what a user would
  write; a section re-read from its JSON has every key set)."""
  defaults = type(cfg)().model_dump(mode="json")
  return {k: v for k, v in cfg.model_dump(mode="json").items() if v != defaults[k]}


def applies(key: str, template: str) -> bool:
  """Whether a searched key applies to a trial of `template` (trainer and sampling keys
  always do; a model option only where that template's options have it)."""
  return SECTION_OF.get(key) != "model" or key in MODEL_TEMPLATES[template].model_fields


# Templates that need a graph with one node set (GCN here is homogeneous).
HOMOGENEOUS_TEMPLATES = ("gcn",)


def searched_space(space: SearchSpace, num_node_sets: int = 1) -> dict:
  """{key: candidates} the search draws from on a graph of `num_node_sets` node sets:
  homogeneous templates left out of `template` on a heterogeneous graph."""
  searched = space.searched()
  if "template" in searched and num_node_sets > 1:
    templates = [t for t in searched["template"] if t not in HOMOGENEOUS_TEMPLATES]
    if not templates:
      raise TunerError(f"tuner.search_space.template: {searched['template']} are homogeneous "
                       f"templates and the graph has {num_node_sets} node sets")
    searched["template"] = templates
  return searched


def _suggest_one(trial, key: str, candidates):
  if isinstance(candidates, FloatRange):
    return trial.suggest_float(key, candidates.low, candidates.high, log=candidates.log)
  if isinstance(candidates, IntRange):
    return trial.suggest_int(key, candidates.low, candidates.high, step=candidates.step)
  return trial.suggest_categorical(key, list(candidates))


def suggest(trial, space: SearchSpace, base_template: str,
            num_node_sets: int = 1) -> dict[str, Any]:
  """One trial's values of the searched keys (Optuna's define-by-run): a template's own
  options only for trials of that template, as in TF-GNN's Vizier space for MtAlbis."""
  searched = searched_space(space, num_node_sets)
  params: dict[str, Any] = {}
  if "template" in searched:
    params["template"] = trial.suggest_categorical("template", searched.pop("template"))
  template = params.get("template", base_template)
  for key, candidates in searched.items():
    if not applies(key, template):
      continue
    if key == "attention_num_heads" and params.get("attention_type", "none") == "none":
      continue
    params[key] = _suggest_one(trial, key, candidates)
  return params


def in_space(value, candidates) -> bool:
  """Whether the search could draw `value` for a key of these candidates."""
  if isinstance(candidates, (FloatRange, IntRange)):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and candidates.low <= value <= candidates.high)
  return value in list(candidates)


# ------------------------------------------------------------------ start points
def degree_feature_of(graph: graph_io.Graph, node_set: str) -> Optional[str]:
  """A feature of `node_set` whose values are its nodes' degrees in one of its edge sets (as
  the ingest's `degree_feature` writes them), found from the data; None when none is."""
  nodes = graph.node_sets[node_set]
  index = None
  for name in sorted(nodes.features):
    values = np.asarray(nodes.features[name])
    if values.dtype.kind not in "fiu" or values.reshape(len(nodes), -1).shape[1] != 1:
      continue
    values = values.reshape(-1)
    for edge_set in graph.edge_sets.values():
      for end, ids in (("source", edge_set.sources), ("target", edge_set.targets)):
        if getattr(edge_set, f"{end}_set") != node_set:
          continue
        if index is None:
          index = pd.Index(nodes.ids)
        rows = index.get_indexer(ids)
        degrees = np.bincount(rows[rows >= 0], minlength=len(nodes))
        if degrees.any() and np.array_equal(values, degrees):
          return name
  return None


def start_point_params(name: str, trainer_defaults: TrainerConfig, num_train: int,
                       degree_feature: Optional[str], hops: int = 2) -> dict[str, Any]:
  """A start point's settings, as search-space keys (and `degree_feature`). `hops`: the
  sampled hops (given, or from the relation paths)."""
  if name == "gcn_kipf_welling":
    # Kipf & Welling (2017): 2 layers of 16, dropout 0.5, L2 5e-4 on the first layer (TF's
    # l2_loss is half Keras' l2, so 2.5e-4 here), Adam at 0.01, full batch, row-normalized
    # features; the second layer is the task head's Dense (a last round that only
    # aggregates, linear).
    return {"template": "gcn", "num_rounds": 2, "units": 16, "add_self_loops": True,
            "input_projection": False, "last_round_transform": False,
            "last_round_activation": "linear", "feature_normalization": "sum",
            "input_dropout_rate": 0.5, "state_dropout_rate": 0.5,
            "l2_regularization": 2.5e-4, "degree_feature": degree_feature,
            "learning_rate": 0.01, "weight_decay": 0.0,
            "batch_size": max(num_train, 1)}
  if name == "graph_sage_mean_128":
    # The trainer's own defaults, not values of any one graph. As many rounds as hops, at
    # least 2: where the relation paths sample deeper (an author's venue's other papers,
    # 3 hops away), the root state needs a round per hop to hear them.
    return {"template": "graph_sage", "num_rounds": max(2, hops), "units": 128,
            "reduce_type": "mean",
            "id_embeddings": False, "feature_normalization": "sum",
            "input_dropout_rate": 0.5, "state_dropout_rate": 0.5,
            "learning_rate": trainer_defaults.learning_rate,
            "weight_decay": trainer_defaults.weight_decay,
            "batch_size": trainer_defaults.batch_size}
  raise ValueError(f"unknown start point {name!r}")


def start_point_applies(name: str, num_node_sets: int) -> bool:
  return name != "gcn_kipf_welling" or num_node_sets == 1


def plan_start_points(names: Optional[list[str]], num_node_sets: int, num_train: int,
                      degree_feature: Optional[str],
                      hops: int = 2) -> tuple[dict[str, dict], list[str]]:
  """({start point: its settings} in the order they are enqueued, the config's own first;
  the named start points that do not apply to this graph). `names` None: all."""
  names = list(START_POINTS) if names is None else list(names)
  not_applicable = [n for n in names if not start_point_applies(n, num_node_sets)]
  start_params = {"config": {}}
  for name in names:
    if name not in not_applicable:
      start_params[name] = start_point_params(name, TrainerConfig(), num_train, degree_feature,
                                              hops)
  return start_params, not_applicable


def config_params(space: dict, model: ModelConfig, trainer: TrainerConfig,
                  sampling: SamplingConfig) -> dict[str, Any]:
  """The config's own values of the searched keys (trial 0's, told to the sampler)."""
  sections = {"model": model, "trainer": trainer, "sampling": sampling}
  values = {}
  for key in space:
    if key == "fanout_scale":
      values[key] = 1.0
    elif hasattr(sections[SECTION_OF[key]], key):
      value = getattr(sections[SECTION_OF[key]], key)
      if value is not None:
        values[key] = value
  return values


@dataclasses.dataclass
class TrialConfigs:
  model: ModelConfig
  trainer: TrainerConfig
  sampling: SamplingConfig
  overrides: dict  # {"model": the whole section, "trainer": ..., "sampling": ...}


def trial_configs(params: dict, model: ModelConfig, trainer: TrainerConfig,
                  sampling: SamplingConfig, trial_epochs: Optional[int] = None) -> TrialConfigs:
  """The sections one trial trains with: the config's own, the trial's values on top (options
  of another template dropped when the template changes), sampling in memory."""
  by_section = {"model": {}, "trainer": {}, "sampling": {}}
  for key, value in params.items():
    if value is None and key not in SECTION_OF:
      continue  # a start point's optional setting the graph does not have
    by_section[SECTION_OF.get(key, "model")][key] = value
  model_raw = non_default(model)
  template = by_section["model"].get("template", model.template)
  model_raw = {k: v for k, v in model_raw.items() if k in MODEL_TEMPLATES[template].model_fields}
  model_cfg = config_base.validate(
      ModelConfig, {**model_raw, **by_section["model"], "template": template})
  sampling_over = dict(by_section["sampling"])
  scale = sampling_over.pop("fanout_scale", None)
  if scale is not None:
    sampling_over["fanouts"] = {k: max(1, int(round(v * scale)))
                                for k, v in sampling.fanouts.items()}
  sampling_cfg = SamplingConfig.model_validate(
      {**non_default(sampling), **sampling_over, "mode": "dynamic", "engine": "fast"})
  trainer_over = dict(by_section["trainer"])
  # One process, no attribution: the final training keeps the config's strategy and export.
  trainer_raw = {**non_default(trainer), **trainer_over, "integrated_gradients": None,
                 "strategy": "default", "num_workers": 1}
  if trial_epochs:
    trainer_raw["epochs"] = trial_epochs
    trainer_raw["validation_freq"] = min(trainer.validation_freq, trial_epochs)
  trainer_cfg = TrainerConfig.model_validate(trainer_raw)
  # The template always: a template class's default is its own tag, and the model section
  # replaces the whole of the trainer's (validated as the union, whose default is graph_sage).
  overrides = {"model": {"template": model_cfg.template, **non_default(model_cfg)},
               "trainer": trainer_over,
               "sampling": sampling_over}
  return TrialConfigs(model_cfg, trainer_cfg, sampling_cfg, overrides)


class TrialData:
  """The Graph artifact in memory, read once for all trials: its train and eval seeds, and a
  fast sampler (with its fixed eval subgraphs) per sampling setting."""

  def __init__(self, graph_dir: str, workdir: str, memory_limit_gb: Optional[float] = None):
    self.graph_dir = graph_dir
    self.workdir = workdir
    self.schema = graph_io.read_schema(graph_dir)
    self.label = graph_io.read_label(graph_dir)
    if self.label is None:
      raise TunerError(f"graph {graph_dir} has no labelled node set: the tuner tunes "
                       "root-node tasks")
    counts = graph_io.read_info(graph_dir).get("splits", {})
    for split in ("train", "eval"):  # never "test": selection must not see it
      if not counts.get(split):
        raise TunerError(f"graph {graph_dir}: the {split} split is empty; the tuner trains on "
                         "train and selects on eval")
    self.train_seeds = graph_io.read_seeds(graph_dir, "train")
    self.eval_seeds = graph_io.read_seeds(graph_dir, "eval")
    from tfx_gnn.components.subgraph_sampler import fast_sampler
    # Refused, naming the table, before the kernel's OOM killer would end the run.
    fast_sampler.check_graph_fits(graph_dir, self.schema, memory_limit_gb)
    self.graph = graph_io.read_graph(graph_dir)
    self._samplers: dict = {}

  def sampler(self, sampling: SamplingConfig):
    """(fast sampler, eval TFRecord file) of one sampling setting; eval subgraphs salted with
    the split's name, as the SubgraphSampler's batch mode writes them."""
    key = json.dumps([sampling.hops, sampling.fanouts, sampling.seed], sort_keys=True)
    if key not in self._samplers:
      import tensorflow as tf
      from tfx_gnn.components.subgraph_sampler import fast_sampler, sampling as sampling_lib
      spec = sampling_lib.build_sampling_spec(self.schema, self.label.node_set,
                                              dict(sampling.fanouts), sampling.hops)
      sampler = fast_sampler.FastSampler(self.graph, spec, seed=sampling.seed,
                                         schema=self.schema)
      path = os.path.join(self.workdir, f"eval-{len(self._samplers)}.tfrecord")
      with tf.io.TFRecordWriter(path) as writer:
        for start in range(0, len(self.eval_seeds), sampling.batch_size):
          for example in sampler.sample(self.eval_seeds[start:start + sampling.batch_size],
                                        salt="eval"):
            writer.write(example)
      self._samplers[key] = (sampler, path)
    return self._samplers[key]


# Templates and MtAlbis options that attend over node states: with a node set whose initial
# state is empty (no input features, no id embedding), TF 2.21's oneDNN aborts the whole
# process ("could not create a primitive descriptor for the inner product"), which no
# `except` can catch: such trials are pruned before they train.
ATTENTION_TEMPLATES = ("gat_v2", "multi_head_attention", "hgt")


def empty_state_node_sets(schema, label, id_embeddings: bool) -> list[str]:
  """Node sets whose initial state would be empty: no feature but the label (and `#id`,
  which only gives a state with id embeddings). `schema` is the graph's or the subgraphs':
  the sampler gives `#id` to a graph's node sets that have no features at all."""
  empty = []
  for name, node_set in schema.node_sets.items():
    features = set(node_set.features) - {graph_io.ID}
    has_id = graph_io.ID in node_set.features or not node_set.features
    if label is not None and name == label.node_set:
      features.discard(label.feature)
    if not features and not (id_embeddings and has_id):
      empty.append(name)
  return sorted(empty)


def attends(model: ModelConfig) -> bool:
  return model.template in ATTENTION_TEMPLATES or (
      model.template == "mt_albis" and model.attention_type != "none")


def objective_value(history: dict[str, list[float]], objective: str) -> tuple[float, str]:
  """The trial's score on the eval split, at the validated epoch of lowest eval loss (whose
  weights the Runner exports): (value, metric name)."""
  losses = history.get("val_loss")
  if not losses:
    raise TunerError("the trial validated no epoch on the eval split")
  best = min(range(len(losses)), key=losses.__getitem__)
  if objective == "accuracy":
    names = sorted(k for k in history if k.startswith("val_") and k.endswith("accuracy"))
    if names:
      return history[names[0]][best], names[0]
  return losses[best], "val_loss"


def run_trial(data: TrialData, configs: TrialConfigs, task: TaskConfig, trial_dir: str,
              on_epoch: Optional[Callable[[int, dict], None]] = None,
              deadline: Optional[float] = None):
  """Trains one trial's model on fresh in-memory train subgraphs every epoch, validating on
  the fixed eval subgraphs, until its epochs, early stopping or `deadline`
  (`time.monotonic()`); returns the Runner's TrainResult."""
  import tensorflow as tf
  from tfx_gnn.components.gnn_trainer import dynamic, training
  sampler, eval_file = data.sampler(configs.sampling)
  train_ds = dynamic.EpochSubgraphs(sampler, data.train_seeds,
                                    shuffle_seed=configs.trainer.seed,
                                    chunk_size=configs.sampling.batch_size)
  tf.keras.backend.clear_session()  # each trial builds a fresh model in this process
  return training.train(
      train_files=[], eval_files=[eval_file], subgraph_schema=sampler.subgraph_schema(),
      label=data.label, model_cfg=configs.model, trainer_cfg=configs.trainer, task_cfg=task,
      model_dir=os.path.join(trial_dir, "model"), export_dir=None,  # the history is the result
      backup_dir=os.path.join(trial_dir, "backup"), on_epoch=on_epoch,
      train_subgraphs=train_ds, deadline=deadline)


def best_yaml(overrides: dict, value: float, metric: str, trial: int) -> str:
  """The best configuration as YAML sections to paste into the run config."""
  sections = {k: v for k, v in overrides.items() if v}
  header = (f"# GnnTuner's best trial ({trial}): {metric} {value:.4f} on the eval split.\n"
            "# Pin it: copy these sections into the run config (and drop `tuner:`).\n")
  return header + yaml.safe_dump(sections, sort_keys=True, default_flow_style=False)


@dataclasses.dataclass
class TuneResult:
  best: dict  # the overrides, see trial_configs
  best_value: float  # the mean eval objective over the best trial's runs
  metric: str
  best_trial: int
  trials: list[dict]  # per trial: number, state, params, value, seconds, start_point
  wall_seconds: float
  yaml: str
  # Per rerun trial: its values (the search's run first), mean, seeds, skipped seeds.
  reruns: list[dict] = dataclasses.field(default_factory=list)


def fixed_values(params: dict, searched: dict) -> dict:
  """The start point's values of the keys the search draws (and could draw these values
  for): enqueued fixed, told to the sampler as the trial's own."""
  template = params.get("template")
  return {k: v for k, v in params.items()
          if k in searched and (k == "template" or template is None or applies(k, template))
          and in_space(v, searched[k])}


def pick_by_mean(runs: dict[int, list[float]], maximize: bool) -> int:
  """The trial whose runs have the best mean eval objective (the first given on a tie: the
  higher ranked in the search)."""
  def mean(number):
    values = [v for v in runs[number] if v is not None and math.isfinite(v)]
    return sum(values) / len(values) if values else -math.inf if maximize else math.inf
  return (max if maximize else min)(runs, key=mean)


def rerun_reserve(budget_s: float, reruns: int, completed_seconds: list[float],
                  start_points_left: int) -> Optional[float]:
  """Seconds of the budget the search leaves for the reruns and one more trial (None: the
  search goes on regardless): the reruns at the median completed trial's time, at most half
  the budget, and never before every start point has run."""
  if not reruns or not completed_seconds or start_points_left > 0:
    return None
  seconds = sorted(completed_seconds)
  median = seconds[(len(seconds) - 1) // 2]
  return min(reruns * median, budget_s / 2) + median


def tune(graph_dir: str, *, tuner: TunerConfig, model: ModelConfig, trainer: TrainerConfig,
         task: TaskConfig, sampling: SamplingConfig, workdir: Optional[str] = None,
         tracking=None, experiment: str = "",
         memory_limit_gb: Optional[float] = None) -> TuneResult:
  """Runs the search: trial 0 the config's own settings, then the start points (recipes that
  apply to the graph), then TPE, with median pruning of the search trials; then reruns the top
  trials with more trainer seeds and picks the best mean. `tracking`: a
  `components.tracking.Run` (the tuning run, in MLflow experiment `experiment`), whose child
  run each trial becomes; none: no MLflow."""
  import optuna
  from absl import logging
  if task.level != "node" or task.type == "dgi":
    raise TunerError(f"task.type {task.type!r}: the tuner tunes supervised root-node tasks")
  if not sampling.fanouts:
    raise TunerError("sampling.fanouts: the tuner's trials sample in memory and need fanouts "
                     "(not a SamplingSpec file)")
  started = time.monotonic()
  # The budget bounds the whole search and the reruns: no trial starts after it (Optuna's
  # timeout), and the running one stops at its first validated epoch past it.
  deadline = started + tuner.max_minutes * 60
  own_workdir = workdir is None
  workdir = workdir or tempfile.mkdtemp(prefix="gnn_tuner_")
  os.makedirs(workdir, exist_ok=True)
  data = TrialData(graph_dir, workdir, memory_limit_gb)
  num_node_sets = len(data.schema.node_sets)
  searched = searched_space(tuner.search_space, num_node_sets)
  degree_feature = (degree_feature_of(data.graph, data.label.node_set)
                    if num_node_sets == 1 and len(data.graph.edge_sets) == 1 else None)
  maximize = tuner.objective == "accuracy"
  hops = sampling.hops or relation_paths.hops_for_schema(data.schema, data.label.node_set,
                                                         sampling.fanouts)
  start_params, not_applicable = plan_start_points(
      tuner.start_points, num_node_sets, len(data.train_seeds), degree_feature, hops)
  # The tuner logs its trials, failed ones included, itself.
  optuna.logging.set_verbosity(optuna.logging.ERROR)
  study = optuna.create_study(
      direction="maximize" if maximize else "minimize",
      sampler=optuna.samplers.TPESampler(seed=tuner.seed),
      # Not before `prune_after_epochs`, and only once every start point has completed.
      pruner=optuna.pruners.MedianPruner(n_startup_trials=len(start_params),
                                         n_warmup_steps=tuner.prune_after_epochs))
  own_values = config_params(searched, model, trainer, sampling)
  for name, params in start_params.items():
    study.enqueue_trial(fixed_values(own_values if name == "config" else params, searched),
                        user_attrs={"start_point": name})
  trials: list[dict] = []
  configs_of: dict[int, TrialConfigs] = {}
  metric_name = {"name": "val_loss"}

  def train_once(configs: TrialConfigs, trial_dir: str, on_epoch=None):
    try:
      return run_trial(data, configs, task, trial_dir, on_epoch=on_epoch, deadline=deadline)
    finally:
      shutil.rmtree(trial_dir, ignore_errors=True)

  def objective(trial):
    start = trial.user_attrs.get("start_point")
    if start is not None:
      params = dict(start_params[start])
      told = fixed_values(own_values if start == "config" else params, searched)
      for key in told:  # the enqueued values: the sampler learns from start points too
        _suggest_one(trial, key, searched[key])
    else:
      params = suggest(trial, tuner.search_space, model.template, num_node_sets)
      if degree_feature and params.get("template") == "gcn":
        params["degree_feature"] = degree_feature
    configs = trial_configs(params, model, trainer, sampling, tuner.trial_epochs)
    configs_of[trial.number] = configs
    trial.set_user_attr("overrides", configs.overrides)
    record = {"number": trial.number, "params": params, "state": "FAILED"}
    if start is not None:
      record["start_point"] = start
    trials.append(record)
    empty = empty_state_node_sets(data.schema, data.label, configs.model.id_embeddings)
    if empty and attends(configs.model):
      logging.warning("GnnTuner trial %d pruned: attention over empty states of %s",
                      trial.number, empty)
      record.update(state="PRUNED",
                    error=f"attention over node sets without initial states {empty}")
      raise optuna.TrialPruned()
    child = None
    if tracking is not None:
      from tfx_gnn.components import tracking as tracking_lib
      child = tracking_lib.Run(tracking.tracking_uri, experiment,
                               run_name=f"trial-{trial.number}",
                               tags={"mlflow.parentRunId": tracking.run_id,
                                     "tfx.component": "GnnTuner",
                                     "trial": str(trial.number),
                                     "start_point": start or ""})
      child.log_params(tracking_lib.flatten("", configs.overrides))
    history: dict[str, list[float]] = {}
    reported: list[float] = []

    def on_epoch(epoch, logs):
      if child:
        child.log_metrics(logs, step=epoch)
      for key, value in logs.items():
        history.setdefault(key, []).append(value)
      if "val_loss" not in logs:
        return
      # The objective so far (at the lowest eval loss yet), for Optuna's MedianPruner.
      value, _ = objective_value(history, tuner.objective)
      trial.report(value, epoch)
      reported.append(value)
      if start is None and trial.should_prune():
        raise optuna.TrialPruned(f"epoch {epoch + 1}: {value:.4f} below the median of earlier "
                                 "trials")

    trial_started = time.monotonic()
    ok = False
    try:
      result = train_once(configs, os.path.join(workdir, f"trial-{trial.number}"), on_epoch)
      value, metric_name["name"] = objective_value(result.history, tuner.objective)
      record.update(state="COMPLETE", value=value, metric=metric_name["name"],
                    epochs=len(result.history.get("loss", [])),
                    stopped_at_deadline=result.stopped_at_deadline)
      if child:
        child.log_metrics({"objective": value})
      ok = True
      logging.info("GnnTuner trial %d%s: %s %.4f with %s", trial.number,
                   f" ({start})" if start else "", metric_name["name"], value, params)
      return value
    except optuna.TrialPruned as e:
      ok = True  # stopped by the pruner, not failed
      record.update(state="PRUNED", error=str(e), epochs=len(history.get("loss", [])),
                    value=reported[-1] if reported else None)
      if child:
        child.set_tags({"pruned": "true"})
      logging.info("GnnTuner trial %d pruned: %s", trial.number, e)
      raise
    except Exception as e:
      record["error"] = f"{type(e).__name__}: {e}"[:2000]
      logging.warning("GnnTuner trial %d failed: %s", trial.number, record["error"])
      raise
    finally:
      record["seconds"] = round(time.monotonic() - trial_started, 1)
      if child:
        child.finish(ok)

  reruns_planned = tuner.rerun_top_k * tuner.rerun_seeds

  def leave_time_for_reruns(study, _):
    reserve = rerun_reserve(
        tuner.max_minutes * 60, reruns_planned,
        [t["seconds"] for t in trials if t["state"] == "COMPLETE"],
        start_points_left=len(start_params) - len(study.trials))
    if reserve is not None and deadline - time.monotonic() < reserve:
      logging.info("GnnTuner: the search ends to leave %.0f s for %d reruns", reserve,
                   reruns_planned)
      study.stop()

  reruns: list[dict] = []
  try:
    study.optimize(objective, n_trials=tuner.trials, timeout=deadline - time.monotonic(),
                   catch=(Exception,), gc_after_trial=True, callbacks=[leave_time_for_reruns])
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
      errors = "; ".join(t.get("error", "?") for t in trials[:3])
      raise TunerError(f"no trial of the search succeeded ({len(trials)} run): {errors}")
    ranked = sorted(completed, key=lambda t: t.value, reverse=maximize)
    runs = {t.number: [t.value] for t in ranked[:max(1, tuner.rerun_top_k)]}
    seconds_of = {t["number"]: t.get("seconds", 0.0) for t in trials}
    # Reruns: the eval split only (the test split is never read); each trains with further
    # trainer seeds, and starts only if its trial's time still fits the budget.
    for number in list(runs)[:tuner.rerun_top_k]:
      rerun = {"number": number, "seeds": [], "skipped_seeds": []}
      for extra in range(1, tuner.rerun_seeds + 1):
        base = configs_of[number]
        seed = base.trainer.seed + extra
        if time.monotonic() + seconds_of[number] > deadline:
          rerun["skipped_seeds"].append(seed)
          continue
        configs = dataclasses.replace(
            base, trainer=base.trainer.model_copy(update={"seed": seed}))
        try:
          result = train_once(configs, os.path.join(workdir, f"trial-{number}-seed-{seed}"))
          runs[number].append(objective_value(result.history, tuner.objective)[0])
          rerun["seeds"].append(seed)
        except Exception as e:  # one failed rerun leaves the trial's other runs
          rerun.setdefault("errors", []).append(f"seed {seed}: {type(e).__name__}: {e}"[:500])
      if rerun["skipped_seeds"]:
        rerun["skipped"] = "past tuner.max_minutes: these seeds did not fit the budget"
        logging.warning("GnnTuner: reruns of trial %d with seeds %s skipped (budget)",
                        number, rerun["skipped_seeds"])
      reruns.append(rerun)
  finally:
    if own_workdir:
      shutil.rmtree(workdir, ignore_errors=True)
  best_number = pick_by_mean(runs, maximize)
  for rerun in reruns:
    values = runs[rerun["number"]]
    rerun.update(values=values, mean=sum(values) / len(values))
  values = runs[best_number]
  best_value = sum(values) / len(values)
  overrides = study.trials[best_number].user_attrs["overrides"]
  wall = time.monotonic() - started
  metric = metric_name["name"]
  text = best_yaml(overrides, best_value,
                   f"{metric} (mean of {len(values)} runs)" if len(values) > 1 else metric,
                   best_number)
  if tracking is not None:
    tracking.log_metrics({"best_objective": best_value, "trials_completed": len(completed),
                          "trials_pruned": sum(t["state"] == "PRUNED" for t in trials),
                          "wall_seconds": wall})
    tracking.set_tags({"best_trial": best_number})
  logging.info("GnnTuner: best of %d completed trials (%d in all) in %.0f s (pin it in the "
               "config):\n%s", len(completed), len(trials), wall, text)
  for record in trials:  # JSON-safe (math.nan is not)
    if isinstance(record.get("value"), float) and math.isnan(record["value"]):
      record["value"] = None
  for name in not_applicable:
    trials.append({"start_point": name, "state": "SKIPPED",
                   "error": f"start point {name} needs a graph with one node set "
                            f"(this one has {num_node_sets})"})
  return TuneResult(best=overrides, best_value=best_value, metric=metric,
                    best_trial=best_number, trials=trials, wall_seconds=wall, yaml=text,
                    reruns=reruns)


def write_result(result: TuneResult, output_dir: str) -> None:
  """The HyperParameters artifact's files: best_hyperparameters.txt (JSON overrides, what the
  trainer reads), best_hyperparameters.yaml (to pin) and trials.json."""
  graph_io.write_text(os.path.join(output_dir, BEST_HYPERPARAMETERS_FILE),
                      json.dumps(result.best, indent=2, sort_keys=True))
  graph_io.write_text(os.path.join(output_dir, BEST_YAML_FILE), result.yaml)
  graph_io.write_text(os.path.join(output_dir, TRIALS_FILE), json.dumps(
      {"best_trial": result.best_trial, "metric": result.metric,
       "best_value": result.best_value, "wall_seconds": result.wall_seconds,
       "trials": result.trials, "reruns": result.reruns}, indent=2, sort_keys=True, default=str))
