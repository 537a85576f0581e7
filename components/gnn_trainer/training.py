"""GNN training with TF-GNN's Runner: a model-zoo template (models.py) on sampled subgraphs.

`train()` is `tensorflow_gnn.runner.run` with a `RootNodeMulticlassClassification` task whose
label is the root node's label feature (removed from every node of that set before the model
sees it), a model built from `ModelConfig` (or a user module's `model_fn`, template `custom`),
and a KerasModelExporter whose `serving_default` takes serialized GraphTensor tf.Examples.
"""
from __future__ import annotations

import dataclasses
import importlib
import math
import os
import sys
import tempfile
import time
from typing import Callable, Optional, Sequence

import tensorflow as tf
import tensorflow_gnn as tfgnn
from absl import logging
from tensorflow_gnn import runner

from tfx_gnn.components import graph_io
from tfx_gnn.components.gnn_trainer import distributed as multi_worker
from tfx_gnn.components.gnn_trainer import models
from tfx_gnn.components.gnn_trainer import tasks
from tfx_gnn.components.gnn_trainer import ig_exporter
from tfx_gnn.components.gnn_trainer.config import (ModelConfig, RootNodeMulticlassOptions,
                                                    TaskConfig, TrainerConfig)

OUTPUT_NAME = tasks.OUTPUT_NAME
USER_MODEL_FN = "model_fn"  # what a user module defines (see GnnTrainer)
IG_SUBDIR = graph_io.IG_SUBDIR
IG_OUTPUT_NAME = graph_io.IG_OUTPUT_NAME
NEVER_STEPS = 1 << 62  # a checkpoint step count that training never reaches


@dataclasses.dataclass
class TrainResult:
  history: dict[str, list[float]]  # per-epoch metrics, Keras names
  export_dir: Optional[str]  # None: nothing exported (see `train`)
  # Where each example's target is: (location, feature), see tasks.Tasks.target.
  target: tuple = ("root", "label")
  heads: Optional[dict] = None  # multi-task: tasks.Tasks.heads
  stopped_at_deadline: bool = False  # see StopAtDeadline


class _History(tf.keras.callbacks.Callback):
  """Records per-epoch logs and forwards them (e.g. to MLflow)."""

  def __init__(self, on_epoch: Optional[Callable[[int, dict], None]]):
    super().__init__()
    self.history: dict[str, list[float]] = {}
    self._on_epoch = on_epoch

  def on_epoch_end(self, epoch, logs=None):
    logs = {k: float(v) for k, v in (logs or {}).items()}
    for k, v in logs.items():
      self.history.setdefault(k, []).append(v)
    if self._on_epoch:
      self._on_epoch(epoch, logs)


def exported_epoch(epoch_logs: Sequence[tuple[int, dict]], validated: bool) -> Optional[int]:
  """The epoch (1-based, as Keras counts them) whose weights `train()` exported, from the
  (epoch, logs) it reported: with a validation split, KerasTrainer restores its best
  checkpoint, which tf.keras.callbacks.ModelCheckpoint keeps by the lowest finite `val_loss`
  (the first on a tie); without one, the last epoch's weights are exported."""
  if not epoch_logs:
    return None
  if validated:
    scored = [(logs["val_loss"], epoch) for epoch, logs in epoch_logs
              if math.isfinite(logs.get("val_loss", math.nan))]
    if scored:
      return min(scored)[1] + 1
  return epoch_logs[-1][0] + 1


def count_examples(files: Sequence[str]) -> int:
  return sum(1 for f in files for _ in tf.data.TFRecordDataset(f))


def fits_in_cache(files: Sequence[str], cfg: TrainerConfig) -> bool:
  """Whether a split's serialized examples are kept in memory across epochs
  (`trainer.cache_examples_mb`: the most its files may total)."""
  return sum(tf.io.gfile.stat(f).length for f in files) <= cfg.cache_examples_mb * 2**20


def random_preprocessing(task) -> bool:
  """Whether a task (or any of a mapping's, or a WeightedTask's) draws random numbers in its
  preprocessing, which then differs from epoch to epoch (DeepGraphInfomaxTask corrupts its
  input there): its preprocessed batches must not be cached."""
  for one in tf.nest.flatten(task) if isinstance(task, dict) else [task]:
    one = getattr(one, "task", one)  # tasks.WeightedTask
    if type(one).__module__.startswith("tensorflow_gnn.models.contrastive_losses"):
      return True
  return False


def batch_caching(cfg: TrainerConfig, task, train_files: Sequence[str],
                  eval_files: Sequence[str], dynamic: bool = False) -> tuple[bool, bool]:
  """Whether the train and the eval split's parsed, preprocessed batches stay in memory after
  the first epoch (`trainer.cache_batches`, `CachingKerasTrainer`): where the split's files fit
  `cache_examples_mb` (its serialized examples are then not cached as well); never for fresh
  dynamic subgraphs nor a task's random preprocessing."""
  on = cfg.cache_batches and not random_preprocessing(task)
  return (bool(on and not dynamic and train_files and fits_in_cache(train_files, cfg)),
          bool(on and eval_files and fits_in_cache(eval_files, cfg)))


def learning_rate(cfg: TrainerConfig, steps_per_epoch: int):
  """The configured schedule, stepped per batch."""
  if cfg.learning_rate_schedule == "cosine":
    return tf.keras.optimizers.schedules.CosineDecay(
        cfg.learning_rate, decay_steps=max(1, cfg.epochs * steps_per_epoch))
  if cfg.learning_rate_schedule == "exponential":
    return tf.keras.optimizers.schedules.ExponentialDecay(
        cfg.learning_rate, decay_steps=steps_per_epoch, decay_rate=cfg.decay_rate)
  return cfg.learning_rate


class StopAtDeadline(tf.keras.callbacks.Callback):
  """Ends training after the first validated epoch that ends past `deadline`
  (`time.monotonic()`): a wall-clock budget (GnnTuner's `max_minutes`) then bounds the
  running trial too, not only when trials start. The exported weights are still the best
  validated epoch's."""

  def __init__(self, deadline: float, validated: bool):
    super().__init__()
    self.deadline, self.validated = deadline, validated
    self.stopped = False

  def on_epoch_end(self, epoch, logs=None):
    if time.monotonic() < self.deadline:
      return
    if self.validated and "val_loss" not in (logs or {}):
      return  # an objective needs a validated epoch
    self.stopped = self.model.stop_training = True


class IntervalBackupAndRestore(tf.keras.callbacks.BackupAndRestore):
  """Keras's BackupAndRestore (what the Runner adds), backing up after the first epoch and
  then after an epoch only once `interval_s` seconds have passed since the last backup, as
  TensorFlow's checkpoint managers save by time: each backup writes every weight and optimizer
  slot, a tenth of a short epoch. A crash loses at most the interval and the epoch in flight;
  training resumes after the last backed-up epoch, as before."""

  def __init__(self, backup_dir: str, interval_s: float):
    super().__init__(backup_dir=backup_dir)
    self._interval_s = interval_s
    self._last_backup: Optional[float] = None

  def on_epoch_end(self, epoch, logs=None):
    if self._last_backup is not None and (
        time.monotonic() - self._last_backup < self._interval_s):
      return
    super().on_epoch_end(epoch, logs)
    self._last_backup = time.monotonic()


class EpochProgress(tf.keras.callbacks.Callback):
  """One log line per epoch: its metrics, its time and the time left (`tfx-gnn run` shows it
  on stderr). `early_stopping`: the epoch count is a bound that early stopping may cut short,
  so the time left is "at most"."""

  def __init__(self, early_stopping: bool = False):
    super().__init__()
    self._created = time.monotonic()
    self._early_stopping = early_stopping

  def on_train_begin(self, logs=None):
    self._durations: list[float] = []
    self._fit_start = time.monotonic()
    logging.info("GnnTrainer: %.1f s before fit (input pipeline, padding, model)",
                 self._fit_start - self._created)

  def on_train_end(self, logs=None):
    logging.info("GnnTrainer: fit took %.1f s", time.monotonic() - self._fit_start)

  def on_epoch_begin(self, epoch, logs=None):
    self._start = time.monotonic()

  def on_epoch_end(self, epoch, logs=None):
    self._durations.append(time.monotonic() - self._start)
    total = self.params.get("epochs") or epoch + 1
    # The first epoch also traces the model and fills the batch cache: later ones predict
    # the rest better.
    typical = self._durations[1:] or self._durations
    left = (total - epoch - 1) * sum(typical) / len(typical)
    logs = {k: float(v) for k, v in (logs or {}).items()}
    # A metric equal to its loss (the task's cross-entropy) says nothing new.
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in logs.items() if k.endswith("loss") or
                        v != logs.get(("val_" if k.startswith("val_") else "") + "loss"))
    logging.info("GnnTrainer: epoch %d/%d: %s (%.1f s%s)", epoch + 1, total, metrics,
                 self._durations[-1],
                 f"; {'at most' if self._early_stopping else 'about'} {_duration(left)} left"
                 if left >= 1 else "")


def _duration(seconds: float) -> str:
  minutes, seconds = divmod(int(round(seconds)), 60)
  return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


class TimedExporter(runner.ModelExporter):
  """Logs how long an exporter's save takes (the exports are part of the trainer's time)."""

  def __init__(self, exporter: runner.ModelExporter):
    self._exporter = exporter

  def save(self, run_result, export_dir: str):
    start = time.monotonic()
    self._exporter.save(run_result, export_dir)
    logging.info("GnnTrainer: %s took %.1f s", type(self._exporter).__name__,
                 time.monotonic() - start)


def make_strategy(cfg: TrainerConfig) -> tf.distribute.Strategy:
  """The configured tf.distribute strategy (cluster-based ones read TF_CONFIG)."""
  if cfg.strategy == "mirrored":
    return tf.distribute.MirroredStrategy()
  if cfg.strategy == "multi_worker_mirrored":
    return tf.distribute.MultiWorkerMirroredStrategy()
  if cfg.strategy == "parameter_server":
    return runner.ParameterServerStrategy()
  if cfg.strategy == "tpu":
    return runner.TPUStrategy(cfg.tpu_address)
  return tf.distribute.get_strategy()


def make_padding(cfg: TrainerConfig, gtspec: tfgnn.GraphTensorSpec, dataset_provider,
                 root_node_sets: Optional[Sequence[str]] = None):
  # The library assumes a node of every set in every subgraph; a sampled subgraph may have
  # none of some set (a paper without authors), only its root is certain.
  min_nodes = ({n: int(n in root_node_sets) for n in gtspec.node_sets_spec}
               if root_node_sets else None)
  if cfg.padding == "fit_or_skip":
    return runner.FitOrSkipPadding(gtspec, dataset_provider, min_nodes_per_component=min_nodes,
                                   fit_or_skip_success_ratio=cfg.fit_or_skip_success_ratio)
  if cfg.padding == "tight":
    return runner.TightPadding(gtspec, dataset_provider, min_nodes_per_component=min_nodes)
  return None


def sorted_graph_spec(schema: tfgnn.GraphSchema) -> tfgnn.GraphTensorSpec:
  """The GraphTensorSpec of `schema` with its node and edge sets in sorted order. The order
  follows the schema's protobuf maps, whose iteration order differs from process to process;
  Keras creates a model's variables in the order of the sets, and the workers of a multi-worker
  strategy must create them alike (seen: a worker's id embedding [50000, 32] paired with the
  other's Dense kernel [32, 16] in the initial broadcast, CollectiveBcastRecv)."""
  spec = tfgnn.create_graph_spec_from_schema_pb(schema)
  return tfgnn.GraphTensorSpec.from_piece_specs(
      context_spec=spec.context_spec,
      node_sets_spec={name: spec.node_sets_spec[name] for name in sorted(spec.node_sets_spec)},
      edge_sets_spec={name: spec.edge_sets_spec[name] for name in sorted(spec.edge_sets_spec)})


def not_inputs(task_set, label: Optional[graph_io.Label], task_cfg=None,
               task_cfgs: Optional[dict] = None) -> list[str]:
  """Features that feature processors see but the model never reads as inputs: the label and
  every task's target (the tasks take them out after the feature processors run)."""
  names = set(task_set.exclude_features) | ({label.feature} if label is not None else set())
  for cfg in [task_cfg, *(task_cfgs or {}).values()]:
    if getattr(cfg, "target_feature", None):
      names.add(cfg.target_feature)
  return sorted(names)


def hash_ids_processor(num_bins: int) -> Callable[[tfgnn.GraphTensor], tfgnn.GraphTensor]:
  """A Runner feature processor: every node set's string `#id` becomes its hash bucket in
  [0, num_bins) (int64, what tf.keras.layers.Hashing computes), so that no string enters the
  training step, which XLA cannot compile; it runs in the input pipeline and the serving
  model's preprocessing."""

  def hash_ids(node_set, *, node_set_name):
    del node_set_name
    features = dict(node_set.features)
    if graph_io.ID in features and features[graph_io.ID].dtype == tf.string:
      features[graph_io.ID] = tf.strings.to_hash_bucket_fast(features[graph_io.ID], num_bins)
    return features

  return tfgnn.keras.layers.MapFeatures(node_sets_fn=hash_ids, name="hash_ids")


MAX_CACHED_BATCHES = 1 << 16  # the batch-order shuffle's buffer (a larger split: partial)


class CachedBatches(runner.DatasetProvider):
  """A dataset provider over the Runner's batched, parsed and preprocessed dataset (what
  `runner.run` hands the trainer) that keeps its batches in memory after the first pass, so
  later epochs (and validations) neither read, parse nor preprocess again. With `shuffle`,
  each pass after the first takes the batches in a fresh random order
  (`reshuffle_each_iteration`); which examples share a batch is then the first pass's."""

  def __init__(self, delegate: runner.DatasetProvider, *, shuffle: bool):
    self._delegate = delegate
    self._shuffle = shuffle

  def get_dataset(self, context: tf.distribute.InputContext) -> tf.data.Dataset:
    ds = self._delegate.get_dataset(context).cache()
    if self._shuffle:
      ds = ds.shuffle(MAX_CACHED_BATCHES, reshuffle_each_iteration=True)
    return ds.prefetch(tf.data.AUTOTUNE)


class CachingKerasTrainer(runner.KerasTrainer):
  """The Runner's KerasTrainer that keeps the train and validation batches in memory after the
  first epoch (`CachedBatches`) where `cache_train` / `cache_valid` say so: a seam of
  `runner.run`, which batches, parses and preprocesses inside the provider it passes here."""

  def __init__(self, *args, cache_train: bool = False, cache_valid: bool = False, **kwargs):
    super().__init__(*args, **kwargs)
    self._cache_train, self._cache_valid = cache_train, cache_valid

  def train(self, model_fn, train_ds_provider, *, valid_ds_provider=None, **kwargs):
    if self._cache_train:
      train_ds_provider = CachedBatches(train_ds_provider, shuffle=True)
    if self._cache_valid and valid_ds_provider is not None:
      valid_ds_provider = CachedBatches(valid_ds_provider, shuffle=False)
    return super().train(model_fn, train_ds_provider, valid_ds_provider=valid_ds_provider,
                         **kwargs)


class LazyAdamW(tf.keras.optimizers.AdamW):
  """AdamW whose sparse gradients (embedding lookups: `tf.IndexedSlices`) update only the rows
  they touch: those rows' moments, their Adam step and their decoupled weight decay, as
  LazyAdam does. tf_keras's AdamW decays both moments of the whole table, steps every row and
  decays every row, each step; the cost then grows with the table (`model.id_hash_bins`), not
  the batch. Dense gradients: AdamW unchanged. (An embedding with an L2 regularizer has a dense
  gradient: AdamW's dense update.)"""

  def apply_gradients(self, grads_and_vars, *args, **kwargs):
    grads_and_vars = list(grads_and_vars)
    # Traced once per step function: which variables take the lazy path (no dense decay).
    self._sparse_keys = {self._var_key(v) for g, v in grads_and_vars
                         if isinstance(g, tf.IndexedSlices)}
    return super().apply_gradients(grads_and_vars, *args, **kwargs)

  def _use_weight_decay(self, variable):
    if self._var_key(variable) in getattr(self, "_sparse_keys", ()):
      return False  # decayed in update_step, its touched rows only
    return super()._use_weight_decay(variable)

  def _update_step_xla(self, gradient, variable, key):
    # The optimizer compiles its steps with XLA on GPUs; XLA has no tf.unique (rows vary).
    if isinstance(gradient, tf.IndexedSlices):
      return self._update_step(gradient, variable)
    return super()._update_step_xla(gradient, variable, key)

  def update_step(self, gradient, variable):
    if not isinstance(gradient, tf.IndexedSlices) or self.amsgrad:
      return super().update_step(gradient, variable)
    dtype = variable.dtype
    lr = tf.cast(self.learning_rate, dtype)
    step = tf.cast(self.iterations + 1, dtype)
    beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
    alpha = lr * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))
    index = self._index_dict[self._var_key(variable)]
    m, v = self._momentums[index], self._velocities[index]
    rows, positions = tf.unique(gradient.indices)  # a row looked up twice: its gradients' sum
    grad = tf.math.unsorted_segment_sum(gradient.values, positions, tf.shape(rows)[0])
    m_rows = tf.gather(m, rows) * beta_1 + grad * (1 - beta_1)
    v_rows = tf.gather(v, rows) * beta_2 + tf.square(grad) * (1 - beta_2)
    m.scatter_update(tf.IndexedSlices(m_rows, rows))
    v.scatter_update(tf.IndexedSlices(v_rows, rows))
    delta = m_rows * alpha / (tf.sqrt(v_rows) + self.epsilon)
    if self.weight_decay and tf.keras.optimizers.AdamW._use_weight_decay(self, variable):
      delta += tf.gather(variable, rows) * tf.cast(self.weight_decay, dtype) * lr
    variable.scatter_sub(tf.IndexedSlices(delta, rows))


class XlaKerasTrainer(CachingKerasTrainer):
  """The Runner's KerasTrainer with the compiled model's train, test and predict steps
  compiled by XLA (Keras `jit_compile`), which `runner.run` does not pass to compile()."""

  def train(self, model_fn, train_ds_provider, **kwargs):
    def jit_model_fn():
      model = model_fn()
      model.jit_compile = True
      return model
    return super().train(jit_model_fn, train_ds_provider, **kwargs)


def load_user_model_fn(module_file: Optional[str] = None,
                       module_path: Optional[str] = None) -> Optional[models.UserModelFn]:
  """The `model_fn` of a user module (TFX's Trainer keys): a .py file, an importable module,
  or `module@wheel` (a module file that the pipeline packaged, see GnnTrainer); None: none."""
  if not module_file and not module_path:
    return None
  from tfx.components.util import udf_utils
  from tfx.utils import io_utils
  module_name, wheels = udf_utils.decode_user_module_key(module_path)
  if not wheels:
    return udf_utils.get_fn({"module_file": module_file, "module_path": module_path},
                            USER_MODEL_FN)
  # A pure-Python wheel imports as a zip archive: no pip install into a temporary directory
  # (TFX's way, which needs pip in the environment). The wheel's name holds its sources'
  # hash, so another version of the module is another path.
  wheel = io_utils.ensure_local(wheels[0])
  sys.modules.pop(module_name, None)
  sys.path.insert(0, wheel)
  try:
    module = importlib.import_module(module_name)
  finally:
    sys.path.remove(wheel)
  if not hasattr(module, USER_MODEL_FN):
    raise AttributeError(f"user module {module_name} ({module_path}) defines no "
                         f"{USER_MODEL_FN}")
  return getattr(module, USER_MODEL_FN)


def train(*, train_files: Sequence[str], eval_files: Sequence[str],
          subgraph_schema: tfgnn.GraphSchema, label: Optional[graph_io.Label],
          model_cfg: ModelConfig,
          trainer_cfg: TrainerConfig, model_dir: str, export_dir: Optional[str],
          backup_dir: Optional[str] = None,
          task_cfg: Optional[TaskConfig] = None,
          task_cfgs: Optional[dict] = None,
          on_epoch: Optional[Callable[[int, dict], None]] = None,
          train_subgraphs=None, module_file: Optional[str] = None,
          module_path: Optional[str] = None,
          deadline: Optional[float] = None) -> TrainResult:
  """Trains and exports the model; `model_dir` holds checkpoints; training backs up to
  `backup_dir` (default `<model_dir>/backup`), see `trainer.backup_interval_s`, and resumes
  from it.
  `export_dir` None: no export at all (a tuner trial reads only the history; the serving
  export traces the model once more).
  `train_subgraphs` (dynamic mode: a `dynamic.EpochSubgraphs`, fresh subgraphs every epoch)
  replaces `train_files`. `module_file` / `module_path`: the user module of template
  `custom` (see `load_user_model_fn`). `deadline`: see `StopAtDeadline`."""
  tf.keras.utils.set_random_seed(trainer_cfg.seed)
  backup_dir = backup_dir or os.path.join(model_dir, "backup")  # the Runner's default
  # Default epochs: a bound when early stopping on the eval split ends training, else fixed.
  trainer_cfg = trainer_cfg.model_copy(
      update={"epochs": trainer_cfg.epochs_to_train(has_eval=bool(eval_files))})
  # First, before any TF op runs: a multi-worker strategy configures the runtime's collectives.
  strategy = make_strategy(trainer_cfg)
  gtspec = sorted_graph_spec(subgraph_schema)
  task_cfg = task_cfg or RootNodeMulticlassOptions()
  # Several named tasks (`tasks:`): one model, a head per task.
  task_set = (tasks.make_multi_tasks(task_cfgs, label, trainer_cfg.seed, gtspec)
              if task_cfgs and len(task_cfgs) > 1 else
              tasks.make_tasks(task_cfg, label, trainer_cfg.seed, gtspec))
  history = _History(on_epoch)
  early_stopping = bool(trainer_cfg.early_stopping_patience and eval_files)
  callbacks = [history, EpochProgress(early_stopping)]
  if early_stopping:
    callbacks.append(tf.keras.callbacks.EarlyStopping(
        monitor=f"val_{trainer_cfg.early_stopping_metric}",
        patience=trainer_cfg.early_stopping_patience,
        mode="min" if trainer_cfg.early_stopping_metric.endswith("loss") else "max"))
  if trainer_cfg.strategy == "multi_worker_mirrored":
    callbacks.append(multi_worker.SyncAtTrainEnd())
  stop_at_deadline = None
  if deadline is not None:
    stop_at_deadline = StopAtDeadline(deadline, validated=bool(eval_files))
    callbacks.append(stop_at_deadline)
  # Keras needs step counts for the distributed datasets of a non-default strategy, and the
  # learning-rate schedules count steps; otherwise an epoch is one pass over the data.
  distributed = trainer_cfg.strategy != "default"
  # The workers of a cluster back up together, every epoch (each one's clock would decide
  # differently); one process backs up by time.
  backup_by_time = (trainer_cfg.backup_interval_s > 0 and trainer_cfg.strategy
                    not in ("multi_worker_mirrored", "parameter_server"))
  if backup_by_time:
    callbacks.append(IntervalBackupAndRestore(backup_dir, trainer_cfg.backup_interval_s))
  steps_per_epoch = trainer_cfg.steps_per_epoch
  if not steps_per_epoch and (distributed or trainer_cfg.learning_rate_schedule != "constant"):
    num_train = (len(train_subgraphs) if train_subgraphs is not None
                 else count_examples(train_files))
    steps_per_epoch = max(1, -(-num_train // trainer_cfg.batch_size))
  cache_train, cache_valid = batch_caching(trainer_cfg, task_set.task, train_files, eval_files,
                                           dynamic=train_subgraphs is not None)
  trainer_cls = XlaKerasTrainer if trainer_cfg.jit_compile else CachingKerasTrainer
  trainer = trainer_cls(
      cache_train=cache_train,
      cache_valid=cache_valid,
      strategy=strategy,
      model_dir=model_dir,
      backup_dir=backup_dir,
      backup_and_restore=not backup_by_time,
      steps_per_epoch=steps_per_epoch if distributed else trainer_cfg.steps_per_epoch,
      validation_steps=(max(1, -(-count_examples(eval_files) // trainer_cfg.batch_size))
                        if distributed and eval_files else None),
      validation_freq=trainer_cfg.validation_freq if eval_files else None,
      callbacks=callbacks,
      summarize_every_n_steps="never",
      # The Runner's per-epoch "latest" checkpoint is never read (the export takes the best
      # epoch's checkpoint, crash resume the backup): a step count never reached skips it,
      # while the best checkpoint stays per epoch. It saved the id-embedding tables each epoch.
      checkpoint_every_n_steps=NEVER_STEPS,
      verbose=0)

  def optimizer_fn():
    # An XLA-compiled train step (trainer.jit_compile) takes AdamW: no tf.unique in XLA.
    optimizer = (LazyAdamW if trainer_cfg.lazy_embedding_updates and not trainer_cfg.jit_compile
                 else tf.keras.optimizers.AdamW)
    return optimizer(learning_rate(trainer_cfg, steps_per_epoch),
                     weight_decay=trainer_cfg.weight_decay)

  # Each worker of a multi-worker strategy reads its own shard (by its InputContext);
  # dynamic subgraphs come in a fresh random order every epoch: no shuffle buffer needed.
  train_ds = train_subgraphs if train_subgraphs is not None else (
      multi_worker.ShardedTFRecordProvider(
          train_files, shuffle_filenames=True, examples_shuffle_size=trainer_cfg.shuffle_buffer,
          cache=not cache_train and fits_in_cache(train_files, trainer_cfg)))
  eval_ds = (multi_worker.ShardedTFRecordProvider(
      eval_files, cache=not cache_valid and fits_in_cache(eval_files, trainer_cfg))
      if eval_files else None)
  exporters = tasks.exporters(task_set, subgraph_schema) if export_dir else []
  if (export_dir and task_cfg.has_integrated_gradients
      and trainer_cfg.integrated_gradients is not None and not task_set.heads):
    exporters.append(ig_exporter.IntegratedGradientsExporter(
        IG_OUTPUT_NAME, subdirectory=IG_SUBDIR, **trainer_cfg.integrated_gradients.model_dump()))
  runner.run(
      train_padding=make_padding(trainer_cfg, gtspec, train_ds, task_set.readout_node_sets),
      valid_padding=(make_padding(trainer_cfg, gtspec, eval_ds, task_set.readout_node_sets)
                     if eval_ds else None),
      train_ds_provider=train_ds,
      valid_ds_provider=eval_ds,
      model_fn=models.build_model_fn(
          model_cfg, task_set.readout_node_sets, task_set.exclude_features,
          load_user_model_fn(module_file, module_path),
          trim_to_layer=models.trims_to_layer(model_cfg, task_set.target[0] == "root",
                                              trainer_cfg.jit_compile)),
      optimizer_fn=optimizer_fn,
      trainer=trainer,
      task=task_set.task,
      loss_weights=task_set.loss_weights,
      feature_processors=task_set.feature_processors + [p for p in (
          models.normalize_features_processor(
              model_cfg, not_inputs(task_set, label, task_cfg, task_cfgs)),
          hash_ids_processor(model_cfg.id_hash_bins) if trainer_cfg.jit_compile else None)
          if p is not None],
      gtspec=gtspec,
      global_batch_size=trainer_cfg.batch_size,
      epochs=trainer_cfg.epochs,
      model_exporters=[TimedExporter(e) for e in exporters],
      export_dirs=[export_dir] if export_dir else None)
  return TrainResult(history.history, export_dir, task_set.target, task_set.heads,
                     stopped_at_deadline=bool(stop_at_deadline and stop_at_deadline.stopped))


def embed(model_dir: str, files, subgraph_schema: tfgnn.GraphSchema,
          label: Optional[graph_io.Label], batch_size: int = 256) -> dict:
  """Runs an embedding model (task dgi's export) over serialized subgraphs (TFRecord files, or
  a tf.data.Dataset of serialized examples); returns columns `node_id` (when the subgraphs
  carry `#id`), `label` (when labelled) and `embedding`."""
  serve = tf.saved_model.load(model_dir).signatures["serving_default"]
  gtspec = tfgnn.create_graph_spec_from_schema_pb(subgraph_schema)
  root_features = gtspec.node_sets_spec[label.node_set].features_spec
  columns = {"embedding": []}
  wanted = [k for k in (graph_io.ID, label.feature) if k in root_features]
  for name in wanted:
    columns["node_id" if name == graph_io.ID else "label"] = []
  dataset = files if isinstance(files, tf.data.Dataset) else tf.data.TFRecordDataset(list(files))
  for batch in dataset.batch(batch_size):
    graph = tfgnn.parse_example(gtspec, batch).merge_batch_to_components()
    for name in wanted:
      value = tfgnn.gather_first_node(graph, label.node_set, feature_name=name).numpy()
      columns["node_id" if name == graph_io.ID else "label"].extend(value.reshape(-1).tolist())
    columns["embedding"].extend(serve(examples=batch)[tasks.EMBEDDINGS_OUTPUT].numpy())
  return columns


def write_embeddings(model_dir: str, files_by_split: dict,
                     subgraph_schema: tfgnn.GraphSchema, label: graph_io.Label,
                     path: str) -> int:
  """Parquet of root-node embeddings (one row per sampled subgraph, with its split), readable
  without TensorFlow; written to a temporary name, then renamed. Returns the row count."""
  import numpy as np
  import pyarrow as pa
  import pyarrow.parquet as pq
  tables = []
  for split, files in files_by_split.items():
    if not isinstance(files, tf.data.Dataset) and not files:
      continue
    columns = embed(model_dir, files, subgraph_schema, label)
    vectors = np.asarray(columns.pop("embedding"), np.float32)
    columns = {k: pa.array(v) for k, v in columns.items()}
    columns["split"] = pa.array([split] * len(vectors))
    columns["embedding"] = pa.FixedSizeListArray.from_arrays(
        pa.array(vectors.reshape(-1)), vectors.shape[1])
    tables.append(pa.table(columns))
  table = pa.concat_tables(tables)
  # Parquet is written locally, then copied beside the destination and renamed into place
  # (the destination may be a remote filesystem that pyarrow does not know).
  tmp = f"{path}.tmp"
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tempfile.TemporaryDirectory() as local:
    pq.write_table(table, os.path.join(local, "embeddings.parquet"))
    tf.io.gfile.copy(os.path.join(local, "embeddings.parquet"), tmp, overwrite=True)
  tf.io.gfile.rename(tmp, path, overwrite=True)
  return table.num_rows
