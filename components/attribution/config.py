"""Attribution's config: the run config's `attribution` section (the model's integrated-gradients
export is the trainer's: `trainer.integrated_gradients`)."""
from __future__ import annotations

from typing import Literal, Optional

import pydantic

from tfx_gnn.components.config_base import Strict


class AttributionConfig(Strict):
  """The Attribution component: integrated gradients over test-split subgraphs."""
  enabled: bool = True
  # Test subgraphs attributed (the first N). 256 stays: with 128, Cora's and the 128-d
  # synthetic graph's feature rankings drift from a 512-subgraph reference
  # (benchmarks/attribution_study.py, 2026-12-04 (8)).
  num_subgraphs: int = pydantic.Field(256, gt=0)
  batch_size: int = pydantic.Field(32, gt=0)
  # Stop starting new batches after this many seconds (the batches done so far are summarized;
  # the first always runs); null: attribute all `num_subgraphs`. Caps the component's cost on
  # wide graphs, where each subgraph's gradients cost more.
  time_budget_s: Optional[float] = pydantic.Field(None, gt=0)
  # Hop distance from the root: BFS over the sampled edges taken in both directions
  # ("undirected") or only in their sampled direction, away from the root ("sampled").
  hop_edges: Literal["undirected", "sampled"] = "undirected"
  drawn_subgraphs: int = pydantic.Field(3, ge=0)  # example subgraphs drawn in the report
