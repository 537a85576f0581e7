"""Reading a pipeline's runs back from ML Metadata: executions, their input and output
artifacts, and a run's summary (what was pushed, the test metrics, the MLflow run)."""
from __future__ import annotations

import dataclasses
import json
import os
import random
import time
from typing import Optional

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from tfx_gnn.components import databases

_CREATE_ATTEMPTS = 10
_STATES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}
_INPUT_EVENTS = (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)
_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)


def connection_config(location: str, readonly: bool = True
                      ) -> metadata_store_pb2.ConnectionConfig:
  """ML Metadata's connection to a SQLite file or a `postgresql://USER@HOST[:PORT]/DBNAME`
  database (see `databases`: the password is not in the config; libpq reads PGPASSWORD)."""
  config = metadata_store_pb2.ConnectionConfig()
  if databases.is_postgres(location):
    db = databases.parse(location, "pipeline.metadata")
    config.postgresql.host = db.host
    config.postgresql.port = str(db.port)
    config.postgresql.user = db.user
    config.postgresql.dbname = db.dbname
    return config
  config.sqlite.filename_uri = location
  modes = metadata_store_pb2.SqliteMetadataSourceConfig
  config.sqlite.connection_mode = modes.READONLY if readonly else modes.READWRITE_OPENCREATE
  return config


def open_store(location: str, readonly: bool = True) -> metadata_store.MetadataStore:
  """The pipeline's ML Metadata store: a SQLite file or a PostgreSQL database. To read, it
  must exist; to write (`readonly=False`), it is created when missing."""
  if databases.is_postgres(location):
    databases.probe(location, "pipeline.metadata", create_missing=True)  # a clear reason
  elif readonly and not os.path.exists(location):
    raise FileNotFoundError(f"no ML Metadata database at {location}: has the pipeline run yet?")
  for attempt in range(_CREATE_ATTEMPTS):
    try:
      return metadata_store.MetadataStore(connection_config(location, readonly))
    except RuntimeError:
      # Two processes creating the database or its tables at once: one loses, and retries
      # (as TFX's own `Metadata` does).
      if readonly or attempt == _CREATE_ATTEMPTS - 1:
        raise
      time.sleep(random.random())


@dataclasses.dataclass
class ArtifactRef:
  id: int
  type: str
  key: str  # the channel key: graph, examples, model, blessing, ...
  uri: str
  properties: dict


@dataclasses.dataclass
class ExecutionRecord:
  id: int
  component: str
  state: str  # COMPLETE, CACHED, FAILED, RUNNING ...
  inputs: list[ArtifactRef]
  outputs: list[ArtifactRef]
  seconds: float  # from the execution's creation to its last update in ML Metadata


def _value(v: metadata_store_pb2.Value):
  kind = v.WhichOneof("value")
  return getattr(v, kind) if kind in ("int_value", "double_value", "string_value") else str(v)


def _props(artifact) -> dict:
  out = {k: _value(v) for k, v in artifact.properties.items()}
  out.update({k: _value(v) for k, v in artifact.custom_properties.items()
              if not k.startswith("__") and k not in ("tfx_version", "state", "is_external")})
  return out


def run_ids(store, pipeline_name: str) -> list[str]:
  """The pipeline's run ids, oldest first."""
  runs = [c for c in store.get_contexts_by_type("pipeline_run")
          if c.name and _belongs(store, c, pipeline_name)]
  runs.sort(key=lambda c: c.create_time_since_epoch)
  return [c.name for c in runs]


def _belongs(store, run_context, pipeline_name: str) -> bool:
  # TFX makes each pipeline_run context a child of its pipeline's context.
  parents = store.get_parent_contexts_by_context(run_context.id)
  return any(p.name == pipeline_name for p in parents)


def executions(store, run_id: str) -> list[ExecutionRecord]:
  """The executions of one pipeline run with their input and output artifacts, in order."""
  run = store.get_context_by_type_and_name("pipeline_run", run_id)
  if run is None:
    raise KeyError(f"no pipeline run {run_id!r} in ML Metadata")
  execs = sorted(store.get_executions_by_context(run.id), key=lambda e: e.id)
  events = store.get_events_by_execution_ids([e.id for e in execs])
  artifacts = {a.id: a for a in store.get_artifacts_by_id({ev.artifact_id for ev in events})}
  types = {t.id: t.name for t in store.get_artifact_types()}
  records = []
  for e in execs:
    node = [c.name for c in store.get_contexts_by_execution(e.id) if c.type_id ==
            store.get_context_type("node").id]
    component = node[0].split(".", 1)[-1] if node else str(e.type_id)
    refs = {"in": [], "out": []}
    for ev in (ev for ev in events if ev.execution_id == e.id):
      a = artifacts[ev.artifact_id]
      key = ev.path.steps[0].key if ev.path.steps else ""
      ref = ArtifactRef(a.id, types[a.type_id], key, a.uri, _props(a))
      if ev.type in _INPUT_EVENTS:
        refs["in"].append(ref)
      elif ev.type in _OUTPUT_EVENTS:
        refs["out"].append(ref)
    seconds = (e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000
    records.append(ExecutionRecord(e.id, component, _STATES.get(e.last_known_state, "?"),
                                   refs["in"], refs["out"], seconds))
  return records


def _scalars(metrics: Optional[dict]) -> Optional[dict]:
  if not metrics:
    return None
  return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}


def evaluation_summary(result: dict) -> dict:
  """The summary's part from GnnEvaluator's metrics.json: every scalar metric of the task
  (classification, regression, linear probe) per split, the trivial baseline's, the
  thresholds, which split decided and the exported epoch."""
  splits = result.get("splits") or {result.get("split", "test"): result["candidate"]}
  return {
      "test_metrics": _scalars(splits.get("test")),
      "eval_metrics": _scalars(splits.get("eval")),
      "baseline_metrics": _scalars(result.get("baseline")),
      "evaluation": {
          "decided_on": result.get("split"), "metric": result.get("metric"),
          "thresholds": result.get("thresholds"),
          "trivial": {s: {"predictor": t.get("predictor"), **_scalars(t)}
                      for s, t in (result.get("trivial") or {}).items()},
          "baseline_compatible": result.get("baseline_compatible"),
          "exported_epoch": result.get("exported_epoch"),
          "epochs_trained": result.get("epochs_trained")},
  }


def summarize(store, run_id: str) -> dict:
  """What a user wants after a run: where the model went, how good it is, where to look."""
  out: dict = {"run_id": run_id, "components": {}, "seconds": {}}
  for record in executions(store, run_id):
    out["components"][record.component] = record.state
    out["seconds"][record.component] = round(record.seconds, 1)
    for ref in record.outputs:
      if ref.type == "Model":
        out["model_uri"] = ref.uri
        out["mlflow_run_id"] = ref.properties.get("mlflow_run_id")
      elif ref.type == "ModelEvaluation":
        metrics_file = os.path.join(ref.uri, "metrics.json")
        if os.path.exists(metrics_file):
          with open(metrics_file) as f:
            result = json.load(f)
          out.update(evaluation_summary(result))
      elif ref.type == "ModelBlessing":
        out["blessed"] = bool(ref.properties.get("blessed"))
        out["blessing_reasons"] = ref.properties.get("reasons") or ""
        out["baseline_incompatibility"] = ref.properties.get("baseline_incompatibility") or ""
      elif ref.type == "tfx_gnn.Attributions":
        out["attributions_uri"] = ref.uri
      elif ref.type == "tfx_gnn.Report":
        out["report"] = os.path.join(ref.uri, "report.html")
      elif ref.type == "PushedModel":
        out["pushed"] = bool(ref.properties.get("pushed"))
        out["pushed_to"] = ref.properties.get("pushed_destination")
        out["mlflow_model_version"] = ref.properties.get("mlflow_model_version")
  return out


def latest_run_id(store, pipeline_name: str) -> Optional[str]:
  ids = run_ids(store, pipeline_name)
  return ids[-1] if ids else None


def format_lineage(records: list[ExecutionRecord]) -> str:
  lines = []
  for r in records:
    lines.append(f"[{r.state}] {r.component} (execution {r.id}, {r.seconds:.1f} s)")
    for ref in r.inputs:
      lines.append(f"    <- {ref.key}: {ref.type} #{ref.id} {ref.uri}")
    for ref in r.outputs:
      props = {k: v for k, v in ref.properties.items()
               if k in ("node_counts", "edge_counts", "num_anomalies", "blessed", "pushed",
                        "pushed_destination", "accuracy", "mlflow_run_id", "split_names",
                        "span", "version")}
      lines.append(f"    -> {ref.key}: {ref.type} #{ref.id} {ref.uri}"
                   + (f"  {json.dumps(props)}" if props else ""))
      # GraphIngest's inputs, one per line (the cache key of ingest: see graph_ingest/driver.py).
      for line in str(ref.properties.get("input_fingerprint") or "").splitlines():
        lines.append(f"       input_fingerprint {line}")
  return "\n".join(lines)


# Files that a complete artifact of each type has (relative to its URI); `check_live_artifacts`
# reports a LIVE artifact that lacks one.
_REQUIRED_FILES = {
    "tfx_gnn.Graph": ("schema.pbtxt", "graph_info.json"),
    "tfx_gnn.GraphStatistics": ("statistics.json",),
    "tfx_gnn.GraphAnomalies": ("anomalies.json", "report.txt"),
    "Examples": ("schema.pbtxt",),
    "Model": ("Format-Serving/saved_model.pb",),
    "ModelEvaluation": ("metrics.json",),
}


def _artifact_problems(type_name: str, artifact) -> list[str]:
  uri = artifact.uri
  if "://" in uri:
    return []  # remote: not checked here
  if not os.path.isdir(uri):
    return ["its directory is missing"]
  problems = [f"lacks {name}" for name in _REQUIRED_FILES.get(type_name, ())
              if not os.path.exists(os.path.join(uri, name))]
  props = _props(artifact)
  if type_name == "Examples":
    for split in json.loads(props.get("split_names") or "[]"):
      split_dir = os.path.join(uri, f"Split-{split}")
      if not os.path.isdir(split_dir) or not os.listdir(split_dir):
        problems.append(f"split {split} has no files")
  elif type_name == "ModelBlessing":
    if not any(os.path.exists(os.path.join(uri, f)) for f in ("BLESSED", "NOT_BLESSED")):
      problems.append("has neither BLESSED nor NOT_BLESSED")
  elif type_name == "PushedModel" and props.get("pushed"):
    destination = props.get("pushed_destination") or ""
    if not os.path.exists(os.path.join(destination, "saved_model.pb")):
      problems.append(f"its pushed version {destination} has no saved_model.pb")
  for parent, dirs, files in os.walk(uri):
    for name in dirs + files:
      if name.endswith((".incomplete", ".tmp")) or name.startswith("beam-temp"):
        problems.append(f"holds an unfinished file {os.path.join(parent, name)}")
  return problems


def check_live_artifacts(store) -> list[str]:
  """Every artifact that ML Metadata marks LIVE, checked for the files it must have; returns
  one line per problem (empty: every LIVE artifact is complete)."""
  types = {t.id: t.name for t in store.get_artifact_types()}
  out = []
  for artifact in store.get_artifacts():
    if artifact.state != metadata_store_pb2.Artifact.LIVE:
      continue
    for problem in _artifact_problems(types[artifact.type_id], artifact):
      out.append(f"{types[artifact.type_id]} #{artifact.id} at {artifact.uri}: {problem}")
  return out
