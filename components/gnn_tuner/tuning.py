"""GnnTuner's search, as plain functions: a seeded Optuna TPE study over the search space,
each trial a TF-GNN Runner training on subgraphs sampled in memory (the dynamic mode's
`EpochSubgraphs`, fresh every epoch), judged on the eval split. The test split is never read.

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

import yaml

from tfx_gnn.components import config_base, graph_io, hyperparameters
from tfx_gnn.components.gnn_trainer.config import (
    MODEL_TEMPLATES, ModelConfig, TaskConfig, TrainerConfig)
from tfx_gnn.components.gnn_tuner.config import (
    SECTION_OF, FloatRange, IntRange, SearchSpace, TunerConfig)
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


def suggest(trial, space: SearchSpace, base_template: str) -> dict[str, Any]:
  """One trial's values of the searched keys (Optuna's define-by-run): a template's own
  options only for trials of that template, as in TF-GNN's Vizier space for MtAlbis."""
  searched = space.searched()
  params: dict[str, Any] = {}
  if "template" in searched:
    params["template"] = trial.suggest_categorical("template", searched.pop("template"))
  template = params.get("template", base_template)
  for key, candidates in searched.items():
    if not applies(key, template):
      continue
    if key == "attention_num_heads" and params.get("attention_type", "none") == "none":
      continue
    if isinstance(candidates, FloatRange):
      params[key] = trial.suggest_float(key, candidates.low, candidates.high,
                                        log=candidates.log)
    elif isinstance(candidates, IntRange):
      params[key] = trial.suggest_int(key, candidates.low, candidates.high,
                                      step=candidates.step)
    else:
      params[key] = trial.suggest_categorical(key, list(candidates))
  return params


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
    by_section[SECTION_OF[key]][key] = value
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
  which only gives a state with id embeddings)."""
  empty = []
  for name, node_set in schema.node_sets.items():
    features = set(node_set.features) - {graph_io.ID}
    if label is not None and name == label.node_set:
      features.discard(label.feature)
    if not features and not (id_embeddings and graph_io.ID in node_set.features):
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
      model_dir=os.path.join(trial_dir, "model"), export_dir=os.path.join(trial_dir, "export"),
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
  best_value: float
  metric: str
  best_trial: int
  trials: list[dict]  # per trial: number, state, params, value, seconds
  wall_seconds: float
  yaml: str


def tune(graph_dir: str, *, tuner: TunerConfig, model: ModelConfig, trainer: TrainerConfig,
         task: TaskConfig, sampling: SamplingConfig, workdir: Optional[str] = None,
         tracking=None, experiment: str = "",
         memory_limit_gb: Optional[float] = None) -> TuneResult:
  """Runs the search. `tracking`: a `components.tracking.Run` (the tuning run, in MLflow
  experiment `experiment`), whose child run each trial becomes; none: no MLflow."""
  import optuna
  from absl import logging
  if task.level != "node" or task.type == "dgi":
    raise TunerError(f"task.type {task.type!r}: the tuner tunes supervised root-node tasks")
  if not sampling.fanouts:
    raise TunerError("sampling.fanouts: the tuner's trials sample in memory and need fanouts "
                     "(not a SamplingSpec file)")
  started = time.monotonic()
  # The budget bounds the whole search: no trial starts after it (Optuna's timeout), and the
  # running one stops at its first validated epoch past it.
  deadline = started + tuner.max_minutes * 60
  own_workdir = workdir is None
  workdir = workdir or tempfile.mkdtemp(prefix="gnn_tuner_")
  os.makedirs(workdir, exist_ok=True)
  data = TrialData(graph_dir, workdir, memory_limit_gb)
  direction = "maximize" if tuner.objective == "accuracy" else "minimize"
  study = optuna.create_study(direction=direction,
                              sampler=optuna.samplers.TPESampler(seed=tuner.seed))
  trials: list[dict] = []
  metric_name = {"name": "val_loss"}

  def objective(trial):
    params = suggest(trial, tuner.search_space, model.template)
    configs = trial_configs(params, model, trainer, sampling, tuner.trial_epochs)
    trial.set_user_attr("overrides", configs.overrides)
    empty = empty_state_node_sets(data.schema, data.label, configs.model.id_embeddings)
    if empty and attends(configs.model):
      logging.warning("GnnTuner trial %d pruned: attention over empty states of %s",
                      trial.number, empty)
      trials.append({"number": trial.number, "params": params, "state": "PRUNED",
                     "error": f"attention over node sets without initial states {empty}"})
      raise optuna.TrialPruned()
    record = {"number": trial.number, "params": params, "state": "FAILED"}
    trials.append(record)
    child = None
    if tracking is not None:
      from tfx_gnn.components import tracking as tracking_lib
      child = tracking_lib.Run(tracking.tracking_uri, experiment,
                               run_name=f"trial-{trial.number}",
                               tags={"mlflow.parentRunId": tracking.run_id,
                                     "tfx.component": "GnnTuner",
                                     "trial": str(trial.number)})
      child.log_params(tracking_lib.flatten("", configs.overrides))
    trial_started = time.monotonic()
    trial_dir = os.path.join(workdir, f"trial-{trial.number}")
    ok = False
    try:
      result = run_trial(data, configs, task, trial_dir,
                         on_epoch=(lambda e, logs: child.log_metrics(logs, step=e))
                         if child else None, deadline=deadline)
      value, metric_name["name"] = objective_value(result.history, tuner.objective)
      record.update(state="COMPLETE", value=value, metric=metric_name["name"],
                    epochs=len(result.history.get("loss", [])),
                    stopped_at_deadline=result.stopped_at_deadline)
      if child:
        child.log_metrics({"objective": value})
      ok = True
      logging.info("GnnTuner trial %d: %s %.4f with %s", trial.number, metric_name["name"],
                   value, params)
      return value
    except Exception as e:
      record["error"] = f"{type(e).__name__}: {e}"[:2000]
      logging.warning("GnnTuner trial %d failed: %s", trial.number, record["error"])
      raise
    finally:
      record["seconds"] = round(time.monotonic() - trial_started, 1)
      if child:
        child.finish(ok)
      shutil.rmtree(trial_dir, ignore_errors=True)

  optuna.logging.set_verbosity(optuna.logging.WARNING)
  try:
    study.optimize(objective, n_trials=tuner.trials, timeout=deadline - time.monotonic(),
                   catch=(Exception,), gc_after_trial=True)
  finally:
    if own_workdir:
      shutil.rmtree(workdir, ignore_errors=True)
  completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
  if not completed:
    errors = "; ".join(t.get("error", "?") for t in trials[:3])
    raise TunerError(f"no trial of the search succeeded ({len(trials)} run): {errors}")
  best = study.best_trial
  overrides = best.user_attrs["overrides"]
  wall = time.monotonic() - started
  text = best_yaml(overrides, best.value, metric_name["name"], best.number)
  if tracking is not None:
    tracking.log_metrics({"best_objective": best.value, "trials_completed": len(completed),
                          "wall_seconds": wall})
    tracking.set_tags({"best_trial": best.number})
  logging.info("GnnTuner: best of %d trials in %.0f s (pin it in the config):\n%s",
               len(completed), wall, text)
  for record in trials:  # JSON-safe (math.nan is not)
    if isinstance(record.get("value"), float) and math.isnan(record["value"]):
      record["value"] = None
  return TuneResult(best=overrides, best_value=best.value, metric=metric_name["name"],
                    best_trial=best.number, trials=trials, wall_seconds=wall, yaml=text)


def write_result(result: TuneResult, output_dir: str) -> None:
  """The HyperParameters artifact's files: best_hyperparameters.txt (JSON overrides, what the
  trainer reads), best_hyperparameters.yaml (to pin) and trials.json."""
  graph_io.write_text(os.path.join(output_dir, BEST_HYPERPARAMETERS_FILE),
                      json.dumps(result.best, indent=2, sort_keys=True))
  graph_io.write_text(os.path.join(output_dir, BEST_YAML_FILE), result.yaml)
  graph_io.write_text(os.path.join(output_dir, TRIALS_FILE), json.dumps(
      {"best_trial": result.best_trial, "metric": result.metric,
       "best_value": result.best_value, "wall_seconds": result.wall_seconds,
       "trials": result.trials}, indent=2, sort_keys=True, default=str))
