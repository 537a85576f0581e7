"""GnnEvaluator's config: the run config's `evaluation` section."""
from __future__ import annotations

from typing import Literal, Optional

import pydantic

from tfx_gnn.components.config_base import Strict


class EvaluationConfig(Strict):
  # Classification: accuracy, macro_f1, micro_f1 (binary also auc; dgi: a logistic-regression
  # probe's on the embeddings); regression: mse, rmse, mae (lower is better).
  metric: Literal["accuracy", "macro_f1", "micro_f1", "auc", "mse", "rmse", "mae"] = "accuracy"
  lower_bound: float = pydantic.Field(0.0, ge=0, le=1)
  upper_bound: Optional[float] = None  # for mse, rmse, mae
  # The candidate may be at most this much worse than the baseline (negative: must improve);
  # "worse" is higher for mse/rmse/mae.
  max_regression: float = 0.0
