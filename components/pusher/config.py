"""Pusher's config: the run config's `push` section."""
from __future__ import annotations


import pydantic

from tfx_gnn.components.config_base import Strict
from tfx_gnn.components.config_base import inside_root


class PushConfig(Strict):
  destination: str = "serving"  # relative to pipeline.root (kubeflow.pipeline_root when compiled)

  @pydantic.field_validator("destination")
  @classmethod
  def _inside(cls, value):
    return inside_root(value, "pipeline.root")
