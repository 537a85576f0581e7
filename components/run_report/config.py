"""RunReport's config: the run config's `report` section."""
from __future__ import annotations



from tfx_gnn.components.config_base import Strict


class ReportConfig(Strict):
  """The RunReport component: one self-contained HTML report per run, logged to MLflow."""
  enabled: bool = True
