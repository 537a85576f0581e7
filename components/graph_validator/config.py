"""GraphValidator's config: the run config's `validation` section."""
from __future__ import annotations


import pydantic

from tfx_gnn.components.config_base import Strict


class ValidationConfig(Strict):
  allow_self_loops: bool = True
  allow_duplicate_edges: bool = True
  max_isolated_fraction: float = pydantic.Field(1.0, ge=0, le=1)
