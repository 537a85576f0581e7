"""GNN training with TF-GNN's Runner: a model-zoo template (models.py) on sampled subgraphs.

`train()` is `tensorflow_gnn.runner.run` with a `RootNodeMulticlassClassification` task whose
label is the root node's label feature (removed from every node of that set before the model
sees it), a model built from `ModelConfig`, and a KerasModelExporter whose `serving_default`
takes serialized GraphTensor tf.Examples.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence

import tensorflow as tf
import tensorflow_gnn as tfgnn
from tensorflow_gnn import runner

from components import graph_io
from components.gnn_trainer import models
from pipelines.config import ModelConfig, TaskConfig, TrainerConfig

OUTPUT_NAME = "logits"
MT_ALBIS_OPTIONS = models.MT_ALBIS_OPTIONS


@dataclasses.dataclass
class TrainResult:
  history: dict[str, list[float]]  # per-epoch metrics, Keras names
  export_dir: str


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


def count_examples(files: Sequence[str]) -> int:
  return sum(1 for f in files for _ in tf.data.TFRecordDataset(f))


def learning_rate(cfg: TrainerConfig, steps_per_epoch: int):
  """The configured schedule, stepped per batch."""
  if cfg.learning_rate_schedule == "cosine":
    return tf.keras.optimizers.schedules.CosineDecay(
        cfg.learning_rate, decay_steps=max(1, cfg.epochs * steps_per_epoch))
  if cfg.learning_rate_schedule == "exponential":
    return tf.keras.optimizers.schedules.ExponentialDecay(
        cfg.learning_rate, decay_steps=steps_per_epoch, decay_rate=cfg.decay_rate)
  return cfg.learning_rate


def train(*, train_files: Sequence[str], eval_files: Sequence[str],
          subgraph_schema: tfgnn.GraphSchema, label: graph_io.Label, model_cfg: ModelConfig,
          trainer_cfg: TrainerConfig, model_dir: str, export_dir: str,
          task_cfg: Optional[TaskConfig] = None,
          on_epoch: Optional[Callable[[int, dict], None]] = None) -> TrainResult:
  """Trains and exports the model; `model_dir` holds checkpoints (training resumes from them)."""
  del task_cfg  # only root-node multiclass classification so far
  tf.keras.utils.set_random_seed(trainer_cfg.seed)
  gtspec = tfgnn.create_graph_spec_from_schema_pb(subgraph_schema)
  task = runner.RootNodeMulticlassClassification(
      label.node_set, num_classes=label.num_classes,
      label_fn=runner.RootNodeLabelFn(label.node_set, feature_name=label.feature))
  history = _History(on_epoch)
  callbacks = [history]
  if trainer_cfg.early_stopping_patience and eval_files:
    callbacks.append(tf.keras.callbacks.EarlyStopping(
        monitor=f"val_{trainer_cfg.early_stopping_metric}",
        patience=trainer_cfg.early_stopping_patience,
        mode="min" if trainer_cfg.early_stopping_metric.endswith("loss") else "max"))
  trainer = runner.KerasTrainer(
      strategy=tf.distribute.get_strategy(),
      model_dir=model_dir,
      steps_per_epoch=trainer_cfg.steps_per_epoch,
      callbacks=callbacks,
      summarize_every_n_steps="never",
      verbose=0)
  steps_per_epoch = trainer_cfg.steps_per_epoch or max(
      1, -(-count_examples(train_files) // trainer_cfg.batch_size))

  def optimizer_fn():
    return tf.keras.optimizers.AdamW(learning_rate(trainer_cfg, steps_per_epoch),
                                     weight_decay=trainer_cfg.weight_decay)

  train_ds = runner.TFRecordDatasetProvider(
      filenames=list(train_files), shuffle_filenames=True,
      examples_shuffle_size=trainer_cfg.shuffle_buffer)
  eval_ds = runner.TFRecordDatasetProvider(filenames=list(eval_files)) if eval_files else None
  runner.run(
      train_ds_provider=train_ds,
      valid_ds_provider=eval_ds,
      model_fn=models.build_model_fn(model_cfg, label.node_set),
      optimizer_fn=optimizer_fn,
      trainer=trainer,
      task=task,
      gtspec=gtspec,
      global_batch_size=trainer_cfg.batch_size,
      epochs=trainer_cfg.epochs,
      model_exporters=[runner.KerasModelExporter(output_names=OUTPUT_NAME)],
      export_dirs=[export_dir])
  return TrainResult(history.history, export_dir)
