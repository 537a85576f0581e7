"""GnnBulkInferrer's config: the run config's `bulk_inference` section."""
from __future__ import annotations

from typing import Literal, Optional

import pydantic

from tfx_gnn.components.config_base import Strict


class BulkInferenceConfig(Strict):
  """Which nodes of the target node set (the labelled one) the pushed model scores after each
  blessed push: all of them (default), one split's, or the listed ids."""
  enabled: bool = True
  split: Optional[Literal["train", "eval", "test"]] = None
  ids: Optional[list[str]] = None
  # Subgraphs per model call (the prediction batch; independent of the trainer's batch).
  batch_size: int = pydantic.Field(256, gt=0)
  # Model batches per Beam element, the unit that workers share: within one, the next batch
  # is sampled while the model runs the current one.
  element_batches: int = pydantic.Field(8, gt=0)

  @pydantic.model_validator(mode="after")
  def _one_selection(self):
    if self.split is not None and self.ids is not None:
      raise ValueError("give either `split` or `ids`, not both")
    if self.ids is not None and not self.ids:
      raise ValueError("`ids` is empty (leave it out to score every node)")
    return self
