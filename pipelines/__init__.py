"""tfx-gnn pipelines: config, create_pipeline, the local and Kubeflow runners, the CLI."""
import os

# TF-GNN needs Keras 2; this must be set before TensorFlow is first imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import components  # noqa: E402,F401  (defers tfx/components/__init__.py: see there)
