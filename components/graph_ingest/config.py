"""GraphIngest's config: the run config's `data` section (the graph's source and spec)."""
from __future__ import annotations

from typing import Literal, Optional

import pydantic

from tfx_gnn.components.config_base import Strict


TableFormat = Literal["csv", "parquet", "tfrecord"]


class NodeTable(Strict):
  """A node set read from one table: one row per node."""
  file: str
  # csv, parquet or tfrecord (of tf.Example); default: from the name (.csv, .csv.gz, .parquet,
  # .pq, .tfrecord[s][.gz]). `file` may be a path, an s3:// or gs:// URL, a glob or a directory.
  format: Optional[TableFormat] = None
  id_column: str = "id"
  # Feature columns; by default every column but the id and the label. A string column of
  # space-separated numbers (e.g. `features`) becomes one fixed-length float vector.
  features: Optional[list[str]] = None
  label_column: Optional[str] = None


class EdgeTable(Strict):
  """An edge set read from one table: one row per directed edge."""
  file: str
  # csv, parquet or tfrecord (of tf.Example); default: from the name (.csv, .csv.gz, .parquet,
  # .pq, .tfrecord[s][.gz]). `file` may be a path, an s3:// or gs:// URL, a glob or a directory.
  format: Optional[TableFormat] = None
  source: str  # node set of the source endpoint
  target: str  # node set of the target endpoint
  source_column: str = "source"
  target_column: str = "target"
  features: Optional[list[str]] = None
  reverse: Optional[str] = None  # also add the reversed edge set under this name
  # Each row is an undirected edge: the edge set holds it in both directions (source and
  # target must be one node set), as GCN's symmetric adjacency expects.
  undirected: bool = False
  # Adds to the source node set a float feature of this name: each node's number of edges in
  # this set in the whole graph (its degree, for an undirected set). GCN can normalize by it
  # (model.degree_feature) instead of by the sampled subgraph's degrees.
  degree_feature: Optional[str] = None

  @pydantic.model_validator(mode="after")
  def _undirected(self):
    if self.undirected and self.source != self.target:
      raise ValueError(f"undirected needs one node set at both ends, got source "
                       f"{self.source!r} and target {self.target!r}")
    if self.undirected and self.reverse is not None:
      raise ValueError("an undirected edge set already holds both directions; drop `reverse`")
    return self


class SplitTable(Strict):
  """Train/eval/test membership of the labelled node set: from a table, by ratio, or by the
  value of one of its features (e.g. OGBN-MAG's year: train < 2018, eval 2018, test 2019)."""
  file: Optional[str] = None  # columns `id`, `split` (train, eval/val/valid/validation, test)
  format: Optional[TableFormat] = None  # of `file`, as for node tables
  id_column: str = "id"
  split_column: str = "split"
  ratios: Optional[dict[Literal["train", "eval", "test"], float]] = None
  seed: int = 0
  # A scalar numeric feature of the labelled node set and where eval and test start: nodes
  # with feature < boundaries.eval are train, < boundaries.test eval, the rest test.
  feature: Optional[str] = None
  boundaries: Optional[dict[Literal["eval", "test"], float]] = None

  @pydantic.model_validator(mode="after")
  def _one_source(self):
    given = [k for k in ("file", "ratios", "feature") if getattr(self, k) is not None]
    if len(given) != 1:
      raise ValueError(f"give exactly one of `file`, `ratios` or `feature` (got "
                       f"{', '.join(given) or 'none'})")
    if (self.feature is None) != (self.boundaries is None):
      raise ValueError("`feature` and `boundaries` go together")
    if self.boundaries is not None:
      if set(self.boundaries) != {"eval", "test"}:
        raise ValueError("boundaries: give both `eval` and `test` (where each split starts)")
      if self.boundaries["eval"] > self.boundaries["test"]:
        raise ValueError(f"boundaries: eval ({self.boundaries['eval']}) must not be above "
                         f"test ({self.boundaries['test']})")
    if self.ratios is not None and abs(sum(self.ratios.values()) - 1.0) > 1e-6:
      raise ValueError(f"ratios must sum to 1, got {sum(self.ratios.values())}")
    return self


class TablesSource(Strict):
  """A graph from node and edge tables (CSV, CSV.gz, Parquet, TFRecord of tf.Example), local or
  in an object store (components/graph_ingest/tables.py)."""
  directory: str = "."  # a path, or a URL such as s3://bucket/graph or gs://bucket/graph
  node_sets: dict[str, NodeTable]
  edge_sets: dict[str, EdgeTable]
  label_node_set: Optional[str] = None  # default: the one node set with a label_column
  num_classes: Optional[int] = None  # default: max label + 1
  # Of the labelled node set (required with one); a graph without labels (no label_column)
  # has none: link prediction splits its links.
  splits: Optional[SplitTable] = None
  # Table files may hold TFX's `{SPAN}` (and `{VERSION}`) specs, e.g. "{SPAN}/papers.csv" for
  # tables that arrive in numbered folders: the latest span is read, or this one.
  span: Optional[int] = pydantic.Field(None, ge=0)


class SyntheticSource(Strict):
  """The embedded OGBN-MAG-shaped graph, generated deterministically from `seed`."""
  num_papers: int = pydantic.Field(4000, gt=0)
  num_classes: int = pydantic.Field(8, ge=2)
  feature_dim: int = pydantic.Field(32, gt=0)
  seed: int = 0


class UnigraphSource(Strict):
  """An existing unigraph directory (its GraphSchema plus files), with a split table; e.g. the
  output of TF-GNN's `tfgnn_convert_ogb_dataset` (see pipelines/configs/mag.yaml)."""
  schema_file: str  # the GraphSchema .pbtxt (or its directory)
  label_node_set: str
  label_feature: str = "label"
  num_classes: Optional[int] = None
  splits: SplitTable
  # Reversed edge sets to add, forward name -> reverse name (e.g. {writes: written}), for a
  # schema that does not declare them (TF-GNN's converter writes forward edge sets only).
  reverse: dict[str, str] = {}


class OgbSource(Strict):
  """An OGB node-property dataset as OGB's loader downloads and extracts it (e.g. ogbn-mag):
  `<root>/<name with _ for ->/raw/...` and `split/<split>/...`, read without PyTorch or the
  `ogb` package (components/graph_ingest/ogb.py). Node ids are OGB's node indices ("0", "1",
  ...); edge sets are named by relation (`writes`); node features are `feat` (node-feat.csv.gz)
  and one per additional node file (`node_year.csv.gz` -> `year`); the label is `label`."""
  name: str = pydantic.Field(pattern=r"^ogbn-[a-z0-9-]+$")  # e.g. ogbn-mag
  root: str  # the `root` given to OGB's loader (a path, or an s3:// / gs:// URL)
  split: Optional[str] = None  # the folder under split/; default: the only one (ogbn-mag: time)
  label_node_set: Optional[str] = None  # default: the one node type that has labels
  num_classes: Optional[int] = None  # default: max label + 1
  # Reversed edge sets to add, relation -> reverse name (e.g. {writes: written}), as TF-GNN's
  # MAG example declares them.
  reverse: dict[str, str] = {}


class SyntheticGraphsSource(Strict):
  """The embedded graph collection (for graph-level tasks): many small graphs whose class
  (`label`) and float `target` depend on their structure and node features, written as tables:
  a `graph` node set (label, target), a `node` node set, `edge` (node->node, both directions)
  and `member_of` (node->graph). See components/graph_ingest/synthetic.py."""
  num_graphs: int = pydantic.Field(600, ge=30)
  num_classes: int = pydantic.Field(3, ge=2, le=4)
  feature_dim: int = pydantic.Field(8, gt=0)
  min_nodes: int = pydantic.Field(8, ge=4)
  max_nodes: int = pydantic.Field(20, ge=4)
  seed: int = 0


class DataConfig(Strict):
  synthetic: Optional[SyntheticSource] = None
  tables: Optional[TablesSource] = None
  unigraph: Optional[UnigraphSource] = None
  synthetic_graphs: Optional[SyntheticGraphsSource] = None
  ogb: Optional[OgbSource] = None
  # Tables (and synthetic tables) larger than this in storage are ingested as a Beam pipeline
  # over the component's beam_pipeline_args, file by file on the runner's workers, instead of
  # in this process's memory; same artifact either way (components/graph_ingest/beam_ingest.py).
  beam_threshold_mb: float = pydantic.Field(1024.0, ge=0)

  @pydantic.model_validator(mode="after")
  def _one_source(self):
    kinds = ("synthetic", "tables", "unigraph", "synthetic_graphs", "ogb")
    given = [k for k in kinds if getattr(self, k) is not None]
    if len(given) != 1:
      raise ValueError(f"give exactly one of {', '.join(kinds)} (got {given or 'none'})")
    return self
