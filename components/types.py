"""tfx-gnn's own artifact types. Everything else uses TFX's standard types (`Examples`,
`Model`, `ModelRun`, `ModelEvaluation`, `ModelBlessing`, `PushedModel`)."""
from tfx.types import artifact
from tfx.types import standard_artifacts  # noqa: F401  (re-exported)

# Two constraints from Kubeflow Pipelines v2 (TFX's KubeflowV2DagRunner and its container
# entrypoint): a custom type's TYPE_NAME must be `module.Class` with one dot (the compiler's
# schema-title pattern) and the import path of the class (the entrypoint imports it by that
# name: the `tfx_gnn` package exports these types), and facts about an artifact must be custom
# properties, not typed PROPERTIES (custom types compile with an empty property schema).


class Graph(artifact.Artifact):
  """A heterogeneous graph as a TF-GNN unigraph directory (see `tfx_gnn.components.graph_io`).

  Custom properties: `node_counts`, `edge_counts`, `split_counts` (JSON objects set name ->
  count), `label_node_set`, `num_classes`; `input_fingerprint` (each input file's path, size
  and sha256, or the synthetic source's parameters), `input_files` (JSON, with mtimes), `span`
  and `version` (TFX's span/version of `{SPAN}` table patterns; span 0 without one).
  """
  TYPE_NAME = "tfx_gnn.Graph"


class GraphStatistics(artifact.Artifact):
  """Statistics of a Graph: counts, feature summaries, degree distributions (`statistics.json`)."""
  TYPE_NAME = "tfx_gnn.GraphStatistics"


class GraphAnomalies(artifact.Artifact):
  """What GraphValidator found (`anomalies.json`, `report.txt`); `num_anomalies` custom
  property."""
  TYPE_NAME = "tfx_gnn.GraphAnomalies"


class Attributions(artifact.Artifact):
  """Integrated-gradients attributions of a Model on test subgraphs
  (`tfx_gnn.components.attribution`): Parquet tables per node set, feature and hop,
  `summary.json`, a self-contained `report.html`; custom properties `num_subgraphs`,
  `top_feature`, `mlflow_run_id`."""
  TYPE_NAME = "tfx_gnn.Attributions"


class Report(artifact.Artifact):
  """One pipeline run, reviewed (`tfx_gnn.components.run_report`): a self-contained `report.html`
  and `report.json`; custom properties `pipeline_run_id`, `mlflow_run_id`."""
  TYPE_NAME = "tfx_gnn.Report"



class NodePredictions(artifact.Artifact):
  """A pushed model's predictions for nodes of the target node set (GnnBulkInferrer):
  `predictions.parquet` with columns `id`, `prediction`, `probabilities`, `embedding`; custom
  properties `inferred` (0: the model was not pushed, nothing scored), `num_nodes`,
  `node_set`, `selection`, `mlflow_run_id`."""
  TYPE_NAME = "tfx_gnn.NodePredictions"
