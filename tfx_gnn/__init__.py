"""tfx-gnn as a library: the components and artifact types, for your own TFX pipelines.

  from tfx_gnn import GraphIngest, GraphValidator, SubgraphSampler, GnnTrainer, GnnEvaluator
  from tfx_gnn import interactive   # sample and show subgraphs in a notebook

This module is also where Kubeflow finds the custom artifact types: TFX's Kubeflow v2
container entrypoint imports a custom type by its schema title (`tfx_gnn.Graph`), which must
have the form `module.Class`.
"""
import os

# TF-GNN needs Keras 2; this must be set before TensorFlow is first imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from components.types import (  # noqa: E402
    Attributions, Graph, GraphAnomalies, GraphStatistics, RunReport)

_COMPONENTS = {
    "GraphIngest": "components.graph_ingest.component",
    "GraphValidator": "components.graph_validator.component",
    "SubgraphSampler": "components.subgraph_sampler.component",
    "GnnTrainer": "components.gnn_trainer.component",
    "GnnEvaluator": "components.gnn_evaluator.component",
    "Pusher": "components.pusher.component",
    "Attribution": "components.attribution.component",
    "RunReport": "components.run_report.component",
}

__all__ = ["Attributions", "Graph", "GraphAnomalies", "GraphStatistics", "RunReport",
           *_COMPONENTS]


def __getattr__(name):
  # Components load on first use, so `tfx_gnn.Graph` stays as light as TFX's own types.
  if name in _COMPONENTS:
    import importlib  # pylint: disable=g-import-not-at-top
    return getattr(importlib.import_module(_COMPONENTS[name]), name)
  raise AttributeError(f"module 'tfx_gnn' has no attribute {name!r}")
