"""GnnEvaluator's config: the run config's `evaluation` section."""
from __future__ import annotations

from typing import Literal, Optional

import pydantic

from tfx_gnn.components.config_base import Strict


class GateConfig(Strict):
  """The blessing gate, applied on the eval split (the test split is reported too)."""
  # Classification: accuracy, macro_f1, micro_f1 (binary also auc; dgi: a logistic-regression
  # probe's on the embeddings); regression: mse, rmse, mae (lower is better), r2. Default: the
  # task's, accuracy (auc for link_prediction, rmse for regression).
  metric: Optional[Literal["accuracy", "macro_f1", "micro_f1", "auc", "mse", "rmse", "mae",
                          "r2"]] = None
  lower_bound: float = pydantic.Field(0.0, ge=0, le=1)
  upper_bound: Optional[float] = None  # for mse, rmse, mae
  # The model must beat the trivial predictor on the same examples (majority class; a constant
  # score for binary and link tasks, so AUC 0.5; the mean target for regression, the median
  # for mae) by closing at least this fraction of the gap between the trivial score and a
  # perfect one: with 0.1, accuracy >= 0.55 against a 50% majority class, AUC >= 0.55, rmse <=
  # 0.9 x the mean predictor's. A model at or below the trivial score is never blessed, even
  # with 0.
  min_margin_over_trivial: float = pydantic.Field(0.1, ge=0, lt=1)
  # The candidate may be at most this much worse than the baseline (negative: must improve);
  # "worse" is higher for mse/rmse/mae.
  max_regression: float = 0.0

  def for_task(self, task: str) -> "EvaluationConfig":
    """This config with `metric` resolved for a task (TaskConfig.type)."""
    if self.metric is not None:
      return self
    default = ("auc" if task == "link_prediction" else
               "rmse" if task in ("root_node_regression", "graph_regression") else "accuracy")
    return self.model_copy(update={"metric": default})


class EvaluationConfig(GateConfig):
  # Multi-task (`tasks:`): every head is gated on its own against its own trivial baseline,
  # and the model is blessed only if every head passes. A head's gate is its entry here (task
  # name -> the options above), else the options above (with the head type's default metric
  # when `metric` is not one of its metrics).
  tasks: Optional[dict[str, GateConfig]] = None

  def gate_for(self, name: str, task: str) -> GateConfig:
    """The gate of head `name` (of TaskConfig.type `task`), its metric resolved."""
    if self.tasks and name in self.tasks:
      return self.tasks[name].for_task(task)
    gate = GateConfig(**self.model_dump(exclude={"tasks"}))
    if gate.metric is not None and gate.metric not in metrics_of(task):
      gate = gate.model_copy(update={"metric": None})
    return gate.for_task(task)


def metrics_of(task: str) -> tuple:
  """The metrics `evaluation.metric` may name for a task type."""
  if task in ("root_node_regression", "graph_regression"):
    return ("mse", "rmse", "mae", "r2")
  if task in ("root_node_binary", "link_prediction"):
    return ("accuracy", "macro_f1", "micro_f1", "auc")
  return ("accuracy", "macro_f1", "micro_f1")
