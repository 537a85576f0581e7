"""tfx-gnn's own artifact types. Everything else uses TFX's standard types (`Examples`,
`Model`, `ModelRun`, `ModelEvaluation`, `ModelBlessing`, `PushedModel`)."""
from tfx.types import artifact
from tfx.types import standard_artifacts  # pylint: disable=unused-import  (re-exported)

_STRING = artifact.Property(type=artifact.PropertyType.STRING)
_INT = artifact.Property(type=artifact.PropertyType.INT)


class Graph(artifact.Artifact):
  """A heterogeneous graph as a TF-GNN unigraph directory (see `components.graph_io`).

  Properties: `node_counts` and `edge_counts` (JSON objects set name -> count),
  `split_counts`, `label_node_set`, `num_classes`.
  """
  TYPE_NAME = "tfx_gnn.Graph"
  PROPERTIES = {
      "node_counts": _STRING,
      "edge_counts": _STRING,
      "split_counts": _STRING,
      "label_node_set": _STRING,
      "num_classes": _INT,
  }


class GraphStatistics(artifact.Artifact):
  """Statistics of a Graph: counts, feature summaries, degree distributions (`statistics.json`)."""
  TYPE_NAME = "tfx_gnn.GraphStatistics"


class GraphAnomalies(artifact.Artifact):
  """What GraphValidator found (`anomalies.json`, `report.txt`); `num_anomalies` property."""
  TYPE_NAME = "tfx_gnn.GraphAnomalies"
  PROPERTIES = {"num_anomalies": _INT}
