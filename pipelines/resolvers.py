"""The GraphValidator's drift baseline: the statistics of the graph that the latest blessed model
was trained on, resolved from ML Metadata the way TFX's LatestBlessedModelStrategy resolves the
evaluator's baseline model (and as TFX feeds ExampleValidator a schema).

Kubeflow Pipelines v2 compiles only TFX's built-in strategies (LatestArtifactStrategy,
LatestBlessedModelStrategy: tfx/orchestration/kubeflow/v2/step_builder.py), as MLMD queries
that the KFP backend runs; this one does not compile, so the Kubeflow pipeline has no drift
baseline: its validator checks each graph on its own, as on a first run (pipelines/pipeline.py).
"""
from __future__ import annotations

from typing import Optional

from ml_metadata import errors as mlmd_errors
from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.components.common import resolver
from tfx.dsl.input_resolution.strategies import latest_blessed_model_strategy

from tfx_gnn.components import types

_DONE = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)
_INPUT = metadata_store_pb2.Event.INPUT
_OUTPUT = metadata_store_pb2.Event.OUTPUT


def _key(event) -> str:
  return event.path.steps[0].key if event.path.steps else ""


class LatestBlessedGraphStatisticsStrategy(resolver.ResolverStrategy):
  """Resolves `statistics` to the GraphStatistics of the latest blessed Model's graph.

  Input channels: `graph` (this run's Graph, from GraphIngest), `statistics` (every
  GraphStatistics of the pipeline), `model` and `model_blessing` (every Model and ModelBlessing,
  as for LatestBlessedModelStrategy). The walk in ML Metadata: the latest blessed Model <- the
  execution that produced it (the trainer) <- its Graph input (or, for a trainer fed only
  Examples, the Graph its producer read) -> the GraphValidator execution that read that Graph
  -> its GraphStatistics output.

  A graph that a GraphValidator already accepted keeps the baseline it was accepted against
  (none, on a first run): an unchanged rerun then has the same validator inputs, and the TFX
  cache reuses the validation and everything after it; drift is judged when a graph first
  arrives.
  """

  def resolve_artifacts(self, store, input_dict):
    result = {key: [] for key in input_dict}
    result["graph"] = list(input_dict.get("graph") or [])
    statistics = {a.id: a for a in input_dict.get("statistics") or []}
    chosen = self._resolve(store, result["graph"], statistics, input_dict)
    result["statistics"] = [statistics[chosen]] if chosen in statistics else []
    return result

  def _resolve(self, store, graphs, statistics, input_dict) -> Optional[int]:
    if graphs:
      accepted = _latest_validation(store, graphs[-1].id)
      if accepted is not None:
        return _input_of(store, accepted, "baseline_statistics")
    blessed = latest_blessed_model_strategy.LatestBlessedModelStrategy().resolve_artifacts(
        store, {"model": list(input_dict.get("model") or []),
                "model_blessing": list(input_dict.get("model_blessing") or [])})
    if not blessed or not blessed["model"]:
      return None  # nothing blessed yet: a first run
    graph_id = _graph_of(store, blessed["model"][0].id)
    if graph_id is None:
      return None
    validation = _latest_validation(store, graph_id)
    if validation is None:
      return None
    for event in store.get_events_by_execution_ids([validation]):
      if event.type == _OUTPUT and event.artifact_id in statistics:
        return event.artifact_id
    return None


def _type_id(store, artifact_type) -> Optional[int]:
  try:
    return store.get_artifact_type(artifact_type.TYPE_NAME).id
  except mlmd_errors.NotFoundError:  # never written in this store yet
    return None


def _latest_validation(store, graph_id: int) -> Optional[int]:
  """The latest finished execution that read `graph_id` as `graph` and wrote GraphStatistics
  (a GraphValidator's), or None."""
  readers = {e.execution_id for e in store.get_events_by_artifact_ids([graph_id])
             if e.type == _INPUT and _key(e) == "graph"}
  if not readers:
    return None
  done = sorted((x.id for x in store.get_executions_by_id(readers)
                 if x.last_known_state in _DONE), reverse=True)
  stats_type = _type_id(store, types.GraphStatistics)
  for execution_id in done:
    outputs = [e.artifact_id for e in store.get_events_by_execution_ids([execution_id])
               if e.type == _OUTPUT]
    if any(a.type_id == stats_type for a in store.get_artifacts_by_id(outputs)):
      return execution_id
  return None


def _input_of(store, execution_id: int, key: str) -> Optional[int]:
  for event in store.get_events_by_execution_ids([execution_id]):
    if event.type == _INPUT and _key(event) == key:
      return event.artifact_id
  return None


def _graph_of(store, model_id: int, hops: int = 3) -> Optional[int]:
  """The Graph upstream of `model_id`: the producer's Graph input, else its inputs' producers'."""
  graph_type = _type_id(store, types.Graph)
  frontier = [model_id]
  for _ in range(hops):
    producers = {e.execution_id for e in store.get_events_by_artifact_ids(frontier)
                 if e.type == _OUTPUT}
    inputs = [e.artifact_id for e in store.get_events_by_execution_ids(list(producers))
              if e.type == _INPUT]
    if not inputs:
      return None
    artifacts = store.get_artifacts_by_id(inputs)
    graphs = sorted(a.id for a in artifacts if a.type_id == graph_type)
    if graphs:
      return graphs[-1]
    frontier = inputs
  return None
