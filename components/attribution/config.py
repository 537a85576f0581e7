"""Attribution's config: the run config's `attribution` section (the model's integrated-gradients
export is the trainer's: `trainer.integrated_gradients`)."""
from __future__ import annotations

from typing import Literal

import pydantic

from tfx_gnn.components.config_base import Strict


class AttributionConfig(Strict):
  """The Attribution component: integrated gradients over test-split subgraphs."""
  enabled: bool = True
  num_subgraphs: int = pydantic.Field(256, gt=0)  # test subgraphs attributed (the first N)
  batch_size: int = pydantic.Field(32, gt=0)
  # Hop distance from the root: BFS over the sampled edges taken in both directions
  # ("undirected") or only in their sampled direction, away from the root ("sampled").
  hop_edges: Literal["undirected", "sampled"] = "undirected"
  drawn_subgraphs: int = pydantic.Field(3, ge=0)  # example subgraphs drawn in the report
