"""tfx-gnn as a library: the components and artifact types, for your own TFX pipelines.

  from tfx_gnn import GraphIngest, GraphValidator, SubgraphSampler, GnnTrainer, GnnEvaluator
  from tfx_gnn import Graph, GraphStatistics, GraphAnomalies, Attributions, Report  # artifact types
  from tfx_gnn import interactive   # sample and show subgraphs in a notebook

The repository's top-level `components/` and `pipelines/` folders are this package's
`tfx_gnn.components` and `tfx_gnn.pipelines` (setup.py maps them; the wheel has one top-level
package).
"""
import os

# The environment every tfx-gnn process needs, set here before TensorFlow is first imported:
# the one place (the CLI, executors, training workers, tests and benchmarks import tfx_gnn
# first, and child processes inherit it). A value already in the environment wins.
# The container image sets the same in its ENV (k8s/Dockerfile), because TFX's container
# entrypoint imports TensorFlow before any tfx_gnn module. `tfx-gnn` itself quiets the C++
# logs further unless --verbose (pipelines/console.py).
ENVIRONMENT = {
    "TF_USE_LEGACY_KERAS": "1",  # TF-GNN needs Keras 2
    "TF_CPP_MIN_LOG_LEVEL": "1",  # TensorFlow's C++ INFO lines
}
for _name, _value in ENVIRONMENT.items():
  os.environ.setdefault(_name, _value)

_COMPONENTS = {
    "GraphIngest": "tfx_gnn.components.graph_ingest.component",
    "GraphValidator": "tfx_gnn.components.graph_validator.component",
    "SubgraphSampler": "tfx_gnn.components.subgraph_sampler.component",
    "GnnTrainer": "tfx_gnn.components.gnn_trainer.component",
    "GnnEvaluator": "tfx_gnn.components.gnn_evaluator.component",
    "Pusher": "tfx_gnn.components.pusher.component",
    "Attribution": "tfx_gnn.components.attribution.component",
    "RunReport": "tfx_gnn.components.run_report.component",
    "GnnBulkInferrer": "tfx_gnn.components.bulk_inferrer.component",
}

# The artifact types, by the names Kubeflow's container entrypoint imports them: a custom
# type's TYPE_NAME is `tfx_gnn.<Class>` (see components/types.py).
_TYPES = ("Graph", "GraphStatistics", "GraphAnomalies", "Attributions", "Report",
          "NodePredictions")

__all__ = [*_COMPONENTS, *_TYPES]


def __getattr__(name):
  # Components and types load on first use: `import tfx_gnn` stays cheap.
  import importlib
  if name in _COMPONENTS:
    return getattr(importlib.import_module(_COMPONENTS[name]), name)
  if name in _TYPES:
    return getattr(importlib.import_module("tfx_gnn.components.types"), name)
  raise AttributeError(f"module 'tfx_gnn' has no attribute {name!r}")
