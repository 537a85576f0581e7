"""tfx-gnn pipelines (`tfx_gnn.pipelines`): the run config, create_pipeline, the local and
Kubeflow runners, the CLI."""
from tfx_gnn import components  # noqa: F401  (defers tfx/components/__init__.py: see there)
