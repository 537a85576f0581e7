"""The run configuration: one YAML file, validated on load.

Each component's section is defined beside the component (`components/<name>/config.py`);
this module composes them with the pipeline-wide sections (pipeline, mlflow, kubeflow) and
checks what must agree across sections. Every section rejects unknown keys, so a typo is an
error that names the key rather than a silently ignored setting. Relative paths are resolved
against the config file's directory.
"""
from __future__ import annotations

import os
from typing import Optional

import pydantic
import yaml

from tfx_gnn.components import databases, secrets
from tfx_gnn.components.attribution.config import AttributionConfig
from tfx_gnn.components.bulk_inferrer.config import BulkInferenceConfig
from tfx_gnn.components.config_base import Strict, inside_root
from tfx_gnn.components.gnn_evaluator.config import EvaluationConfig
from tfx_gnn.components.gnn_trainer.config import (  # noqa: F401  (re-exported)
    MODEL_TEMPLATES, TASK_TYPES, IntegratedGradientsConfig, ModelConfig, GraphSageOptions,
    RootNodeMulticlassOptions, TaskConfig, TasksConfig, TrainerConfig, multi_task_problems)
from tfx_gnn.components.gnn_trainer.config import trim_to_layer_problem
from tfx_gnn.components.graph_ingest.config import (  # noqa: F401  (re-exported)
    DataConfig, EdgeTable, NodeTable, OgbSource, SplitTable, SyntheticGraphsSource,
    SyntheticSource, TablesSource, UnigraphSource)
from tfx_gnn.components.graph_validator.config import ValidationConfig
from tfx_gnn.components.gnn_tuner.config import TunerConfig
from tfx_gnn.components.pusher.config import PushConfig
from tfx_gnn.components.run_report.config import ReportConfig
from tfx_gnn.components.subgraph_sampler.config import SamplingConfig


class ConfigError(ValueError):
  """A configuration file that cannot be used; the message names the file and the key."""


class MlflowConfig(Strict):
  # default: sqlite:///<root>/mlflow.db; or an http(s) server, or postgresql://USER@HOST/DB
  # (the database must exist; the password from PGPASSWORD, see components/databases.py)
  tracking_uri: Optional[str] = None
  experiment: Optional[str] = None  # default: the pipeline name

  @pydantic.field_validator("tracking_uri")
  @classmethod
  def _tracking_uri_database(cls, value):
    if databases.is_postgres(value):
      databases.parse(value)
    return value


class PipelineConfig(Strict):
  name: str = "tfx-gnn"
  root: str = "runs"
  # ML Metadata: a SQLite file (default: <root>/metadata.sqlite; relative: to the root) or a
  # postgresql://USER@HOST[:PORT]/DBNAME URL (the password from PGPASSWORD; components/databases)
  metadata: Optional[str] = None
  enable_cache: bool = True
  # Local default: Beam's in-process FnApiRunner (plain DirectRunner first tries to download
  # Prism); `sdk_container_image` stops TFX from building an sdist of itself for every run.
  beam_pipeline_args: list[str] = ["--runner=FnApiRunner", "--direct_num_workers=1",
                                   "--sdk_container_image=unused"]
  # The most memory the graph's tables may take once read (GB); a larger graph is refused at
  # ingest, naming the table, before the kernel's OOM killer would end the run. Default: 80%
  # of the memory available when the run starts.
  memory_limit_gb: Optional[float] = pydantic.Field(None, gt=0)

  @pydantic.field_validator("metadata")
  @classmethod
  def _metadata_inside(cls, value):
    if databases.is_postgres(value):
      databases.parse(value)
      return value
    if value and "://" in value:
      raise ValueError(f"{secrets.redact(value)}: expected a SQLite file path or a "
                       "postgresql://USER@HOST[:PORT]/DBNAME URL")
    return inside_root(value, "pipeline.root")


class KubeflowConfig(Strict):
  """`tfx-gnn compile`: a Kubeflow Pipelines v2 pipeline file from the same DAG."""
  image: str = "tfx-gnn:latest"  # the container image every step runs in
  # Where the steps write (a URI the cluster's pods can write: gs://bucket/tfx-gnn, s3://...);
  # `tfx-gnn compile` refuses a local path. Default: pipeline.root.
  pipeline_root: Optional[str] = None
  # Default: pipeline.yaml (`--format kfp`), pipeline.json (`--format vertex`).
  output_file: Optional[str] = None


class Config(Strict):
  pipeline: PipelineConfig = PipelineConfig()
  data: DataConfig
  validation: ValidationConfig = ValidationConfig()
  sampling: SamplingConfig = SamplingConfig()  # required (fanouts) but for graph-level tasks
  model: ModelConfig = GraphSageOptions()
  task: TaskConfig = RootNodeMulticlassOptions()
  # Multi-task: named tasks trained together (instead of `task`, which then is the first of
  # them: the one whose seeds the sampler draws, shared by all).
  tasks: Optional[TasksConfig] = None
  trainer: TrainerConfig = TrainerConfig()
  evaluation: EvaluationConfig = EvaluationConfig()
  attribution: AttributionConfig = AttributionConfig()
  report: ReportConfig = ReportConfig()
  push: PushConfig = PushConfig()
  bulk_inference: BulkInferenceConfig = BulkInferenceConfig()
  mlflow: MlflowConfig = MlflowConfig()
  kubeflow: KubeflowConfig = KubeflowConfig()
  # A GnnTuner before the sampler and trainer (their settings then come from its best trial).
  tuner: Optional[TunerConfig] = None

  @pydantic.model_validator(mode="before")
  @classmethod
  def _task_or_tasks(cls, raw):
    tasks = raw.get("tasks") if isinstance(raw, dict) else None
    if isinstance(tasks, dict) and tasks:
      first = next(iter(tasks.values()))
      if raw.get("task") not in (None, first):
        raise ValueError("give `task` (one task) or `tasks` (named tasks), not both")
      raw = {**raw, "task": first}
    return raw

  @pydantic.model_validator(mode="wrap")
  @classmethod
  def _task_level_model_defaults(cls, raw, handler):
    config = handler(raw)
    model = config.model.for_task_level(config.task.level)
    return config if model is config.model else config.model_copy(update={"model": model})

  @property
  def multi_task(self) -> bool:
    """Several named tasks share one model (a one-task mapping is the single `task`)."""
    return bool(self.tasks) and len(self.tasks) > 1

  @property
  def runs_attribution(self) -> bool:
    """Attribution runs on single supervised root-node tasks, unless disabled."""
    return (self.attribution.enabled and self.task.has_integrated_gradients
            and not self.multi_task)

  @property
  def scores_node_ids(self) -> bool:
    """Supervised root-node models are served by node id (the Pusher's MLflow model,
    `tfx-gnn predict`) and, unless disabled, bulk-scored (GnnBulkInferrer); a multi-task
    model's several heads are served by its SavedModel only."""
    return self.task.level == "node" and self.task.type != "dgi" and not self.multi_task

  # Resolved locations (absolute), derived from the above.
  @property
  def root(self) -> str:
    return os.path.abspath(self.pipeline.root)

  @property
  def metadata_path(self) -> str:
    """The SQLite file (absolute), or the PostgreSQL URL without its password."""
    if databases.is_postgres(self.pipeline.metadata):
      return secrets.strip_credentials(self.pipeline.metadata)[0]
    return os.path.abspath(os.path.join(self.root, self.pipeline.metadata or "metadata.sqlite"))

  @property
  def serving_dir(self) -> str:
    return self.serving_dir_under(self.root)

  def serving_dir_under(self, base: str) -> str:
    """Where pushed versions go when artifacts live under `base` (a path or gs:// URL)."""
    return os.path.join(base, self.push.destination)

  @property
  def tracking_uri(self) -> str:
    """Without credentials: this is what ML Metadata, logs and summaries see (the local runner
    hands a URI's user and password to MLflow through its environment, `secrets`)."""
    uri = self.mlflow.tracking_uri or "sqlite:///" + os.path.join(self.root, "mlflow.db")
    return secrets.strip_credentials(uri)[0]

  @property
  def experiment(self) -> str:
    return self.mlflow.experiment or self.pipeline.name


# A discriminated union's error location holds the member's tag (model.gat_v2.num_heads);
# the YAML has no such level.
_UNION_TAGS = {"model": MODEL_TEMPLATES, "task": TASK_TYPES}


def _format_errors(source: str, error: pydantic.ValidationError) -> str:
  lines = [f"invalid config {source}:"]
  for e in error.errors():
    loc = list(e["loc"])
    if len(loc) > 1 and loc[1] in _UNION_TAGS.get(loc[0], ()):
      del loc[1]
    if len(loc) > 2 and loc[0] == "tasks" and loc[2] in TASK_TYPES:  # tasks.<name>.<type>
      del loc[2]
    key = ".".join(str(p) for p in loc)
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
      msg = "unknown key"
    lines.append(f"  {key}: {msg}")
  return "\n".join(lines)


# Data paths in a config file are relative to that file; the pipeline root is relative to
# the working directory (where the user runs `tfx-gnn`). URLs (s3://, gs://) stay as they are.
_PATH_KEYS = (("data", "tables", "directory"), ("data", "unigraph", "schema_file"),
              ("data", "unigraph", "splits", "file"), ("data", "ogb", "root"),
              ("sampling", "spec_file"), ("model", "module_file"))


def _resolve_paths(raw: dict, base: str) -> dict:
  for path in _PATH_KEYS:
    node = raw
    for key in path[:-1]:
      node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict) and isinstance(node.get(path[-1]), str):
      value = node[path[-1]]
      if "://" not in value:
        node[path[-1]] = os.path.normpath(os.path.join(base, value))
  return raw


def _check_task_names(config: Config, source: str) -> None:
  """Task names used by other keys name tasks of `tasks`; loss weights weigh tasks of it."""
  names = list(config.tasks or {})
  if config.tasks is None and config.task.loss_weight != 1.0:
    raise ConfigError(f"invalid config {source}:\n  task.loss_weight: weighs a task against the "
                      "others of a `tasks:` mapping; a single `task` has none to weigh against "
                      "(give named tasks under `tasks:`, each with its loss_weight)")
  for name in config.evaluation.tasks or {}:
    if name not in names:
      raise ConfigError(f"invalid config {source}:\n  evaluation.tasks.{name}: no task named "
                        f"{name!r} (" + (f"tasks: {', '.join(names)}" if names else
                                         "there is no `tasks:` mapping") + ")")
  if config.evaluation.tasks and not config.multi_task:
    raise ConfigError(f"invalid config {source}:\n  evaluation.tasks: per-head gates are for "
                      "a model of several tasks; one task is gated by evaluation's own options")
  for key, message in (multi_task_problems(config.tasks) if config.multi_task else []):
    raise ConfigError(f"invalid config {source}:\n  {key}: {message}")
  if config.multi_task and config.tuner is not None:
    raise ConfigError(f"invalid config {source}:\n  tuner: tunes a single task; this config "
                      f"trains {len(names)} (tasks: {', '.join(names)})")


def _check_references(config: Config, source: str) -> None:
  """Names that must agree across sections, where the config alone can tell."""
  _check_task_names(config, source)
  level = config.task.level
  if config.runs_attribution and config.trainer.integrated_gradients is None:
    raise ConfigError(f"invalid config {source}:\n  trainer.integrated_gradients: null, but "
                      "Attribution runs on it (set attribution.enabled: false, or give it)")
  collection = config.data.synthetic_graphs is not None
  synthetic = collection or config.data.synthetic is not None  # other sources may be either
  if synthetic and (level == "graph") != collection:
    raise ConfigError(
        f"invalid config {source}:\n  task.type: {config.task.type!r} "
        + ("needs a graph collection (data.synthetic_graphs, or data.tables with one node "
           "per graph in the labelled node set)" if level == "graph" else
           "is not a graph-level task; data.synthetic_graphs is a graph collection "
           "(use graph_multiclass or graph_regression)"))
  sampling = config.sampling
  if level == "node" and not (sampling.fanouts or sampling.spec_text):
    raise ConfigError(f"invalid config {source}:\n  sampling.fanouts: required for task "
                      f"{config.task.type!r} (edge set -> fanout), or a SamplingSpec in "
                      "sampling.spec_file")
  if level == "link" and not sampling.fanouts:
    raise ConfigError(f"invalid config {source}:\n  sampling.fanouts: required for task "
                      f"{config.task.type!r} (edge set -> fanout; link prediction samples "
                      "around both endpoints and takes no SamplingSpec)")
  if sampling.mode == "dynamic" and (level != "node" or config.trainer.num_ps):
    raise ConfigError(f"invalid config {source}:\n  sampling.mode: 'dynamic' samples root-node "
                      "subgraphs in the trainer's (or each multi-worker training worker's) "
                      f"process: it needs a node-level task (task.type is "
                      f"{config.task.type!r}) and no parameter servers (trainer.num_ps is "
                      f"{config.trainer.num_ps})")
  if config.tuner is not None and (level != "node" or config.task.type == "dgi"
                                   or not sampling.fanouts):
    raise ConfigError(f"invalid config {source}:\n  tuner: the GnnTuner tunes supervised "
                      f"root-node tasks (task.type is {config.task.type!r}) whose trials sample "
                      "in memory from sampling.fanouts (not a SamplingSpec file)")
  if getattr(config.model, "trim_to_layer", None):
    problem = trim_to_layer_problem(config.model, level == "node", config.trainer.jit_compile)
    if problem:
      raise ConfigError(f"invalid config {source}:\n  model.trim_to_layer: true does not "
                        f"apply: {problem}")
  tables = config.data.tables
  if tables is not None and level != "link" and (tables.splits is None or not any(
      t.label_column for t in tables.node_sets.values())):
    raise ConfigError(f"invalid config {source}:\n  data.tables: task.type "
                      f"{config.task.type!r} needs a labelled node set (a label_column) "
                      "and data.tables.splits; only link_prediction trains without labels")
  if tables is not None and level == "link":
    edge_sets = set(tables.edge_sets) | {e.reverse for e in tables.edge_sets.values()
                                          if e.reverse}
    if config.task.edge_set not in edge_sets:
      raise ConfigError(f"invalid config {source}:\n  task.edge_set: unknown edge set "
                        f"{config.task.edge_set!r}; the graph has {sorted(edge_sets)}")
  if tables is None:
    return  # other sources' set names are known once the graph is ingested (the sampler checks)
  edge_sets = set(tables.edge_sets) | {e.reverse for e in tables.edge_sets.values() if e.reverse}
  unknown = sorted(set(config.sampling.fanouts or {}) - edge_sets)
  if unknown:
    raise ConfigError(f"invalid config {source}:\n  sampling.fanouts: unknown edge set(s) "
                      f"{', '.join(map(repr, unknown))}; the graph has {sorted(edge_sets)}")
  _check_edge_features(config, source)
  _check_pooling(config, source)


def _check_edge_features(config: Config, source: str) -> None:
  """model.edge_features against data.tables: known edge sets, and features their edge tables
  list (an edge set carries only those; a reverse set, its forward set's)."""
  tables = config.data.tables
  forward_of = {**{name: name for name in tables.edge_sets},
                **{t.reverse: name for name, t in tables.edge_sets.items() if t.reverse}}
  for edge_set, names in (getattr(config.model, "edge_features", None) or {}).items():
    key = f"model.edge_features.{edge_set}"
    if edge_set not in forward_of:
      raise ConfigError(f"invalid config {source}:\n  {key}: unknown edge set {edge_set!r}; "
                        f"the graph has {sorted(forward_of)}")
    listed = tables.edge_sets[forward_of[edge_set]].features or []
    missing = [n for n in names if n not in listed]
    if missing:
      raise ConfigError(f"invalid config {source}:\n  {key}: edge set {edge_set!r} has no "
                        f"feature {', '.join(map(repr, missing))} (its features: "
                        f"{', '.join(listed) or 'none'}, listed in data.tables.edge_sets."
                        f"{forward_of[edge_set]}.features)")


def _check_pooling(config: Config, source: str) -> None:
  """task.pooling's node sets: member node sets of the collection (every node set but the
  labelled one, which holds one node per graph)."""
  pooling = getattr(config.task, "pooling", None)
  if not isinstance(pooling, dict):
    return
  tables = config.data.tables
  labelled = tables.label_node_set or next(
      (n for n, t in tables.node_sets.items() if t.label_column), None)
  members = sorted(n for n in tables.node_sets if n != labelled)
  unknown = sorted(set(pooling) - set(members))
  if unknown:
    raise ConfigError(f"invalid config {source}:\n  task.pooling: unknown node set(s) "
                      f"{', '.join(map(repr, unknown))}; the graphs' node sets are {members}")


def parse_config(raw: dict, source: str = "<config>", base_dir: str = ".") -> Config:
  """Validates a config dict; relative paths resolve against `base_dir`."""
  if not isinstance(raw, dict):
    raise ConfigError(f"invalid config {source}: expected a mapping at the top level")
  try:
    config = Config.model_validate(_resolve_paths(raw, os.path.abspath(base_dir)))
  except pydantic.ValidationError as e:
    raise ConfigError(_format_errors(source, e)) from None
  _check_references(config, source)
  return config


def load_config(path: str, overrides: Optional[dict] = None) -> Config:
  """Loads and validates a YAML config file; `overrides` are merged on top (nested dicts)."""
  try:
    with open(path) as f:
      raw = yaml.safe_load(f) or {}
  except FileNotFoundError:
    raise ConfigError(f"config file not found: {path}") from None
  except yaml.YAMLError as e:
    raise ConfigError(f"config {path} is not valid YAML: {e}") from None
  if overrides:
    raw = merge(raw, overrides)
  return parse_config(raw, path, os.path.dirname(os.path.abspath(path)))


def merge(base: dict, overrides: dict) -> dict:
  out = dict(base)
  for key, value in overrides.items():
    if isinstance(value, dict) and isinstance(out.get(key), dict):
      out[key] = merge(out[key], value)
    else:
      out[key] = value
  return out


def to_dict(config: Config) -> dict:
  return config.model_dump(mode="json")
