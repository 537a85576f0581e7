"""Bulk inference as a Beam pipeline: batches of node ids -> a DoFn that samples and scores
them (`node_scoring.NodeScorer`, built once per worker process) -> `predictions.parquet`.

The DoFn carries only the model's directory and the ServingSpec (JSON); like the sampler's
DoFns it loads the graph in `setup`, so it scales out on any Beam runner whose workers can read
the Graph artifact and the model.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Optional

import apache_beam as beam

from tfx_gnn.components import node_scoring
from tfx_gnn.components.bulk_inferrer.config import BulkInferenceConfig

PREDICTIONS_FILE = "predictions.parquet"


def select_ids(graph_dir: str, node_set: str, config: BulkInferenceConfig) -> tuple[list, str]:
  """The ids to score and how they were chosen (`all`, `split:<name>`, `ids`); listed ids are
  checked against the graph first (a clear error, before any pipeline runs)."""
  from tfx_gnn.components import graph_io
  if config.ids is not None:
    known = set(node_scoring.node_ids(graph_dir, node_set))
    if any(i not in known for i in config.ids):
      raise node_scoring.unknown_ids_error(graph_dir, node_set, list(config.ids))
    return list(config.ids), "ids"
  if config.split is not None:
    return graph_io.read_seeds(graph_dir, config.split), f"split:{config.split}"
  return node_scoring.node_ids(graph_dir, node_set), "all"


class ScoreBatches(beam.DoFn):
  """[node ids] -> one Arrow table of their predictions (the model runs them in batches of
  `batch_size`, the next batch sampled meanwhile)."""

  def __init__(self, model_dir: str, spec_json: str, batch_size: int):
    super().__init__()
    self._model_dir = model_dir
    self._spec_json = spec_json
    self._batch_size = batch_size
    self._scorer = None

  def setup(self):
    self._scorer = node_scoring.load_scorer(self._model_dir, self._spec_json)

  def process(self, ids):
    yield node_scoring.arrow_table(self._scorer.score_arrays(ids, self._batch_size),
                                   self._scorer.spec.task)


def add_bulk_inference(root: beam.Pipeline, *, model_dir: str, spec: node_scoring.ServingSpec,
                       ids: list, config: BulkInferenceConfig, output_path: str) -> None:
  """Adds to `root` the scoring of `ids`, `config.element_batches` model batches of
  `config.batch_size` per Beam element, written to the Parquet file `output_path` (one file,
  whole Arrow tables: no Python object per row)."""
  size = config.batch_size * config.element_batches
  elements = [list(ids[i:i + size]) for i in range(0, len(ids), size)]
  _ = (root
       | "IdBatches" >> beam.Create(elements)
       | "SampleAndScore" >> beam.ParDo(ScoreBatches(model_dir, spec.to_json(),
                                                     config.batch_size))
       | "WritePredictions" >> beam.io.WriteToParquetBatched(
           output_path, node_scoring.arrow_schema(spec.task), num_shards=1,
           shard_name_template=""))


def run(make_pipeline: Callable[[], beam.Pipeline], *, model_dir: str,
        spec: node_scoring.ServingSpec, config: BulkInferenceConfig, out_dir: str,
        ids: Optional[list] = None) -> dict:
  """The whole component without TFX: select the ids, score them on the Beam pipeline that
  `make_pipeline()` returns, write `out_dir/predictions.parquet`. Returns a summary."""
  node_scoring.check_graph(spec)
  selection = "ids"
  if ids is None:
    ids, selection = select_ids(spec.graph_dir, spec.node_set, config)
  if not ids:
    raise node_scoring.ScoringError(f"no nodes to score ({selection} of node set "
                                    f"{spec.node_set!r} is empty)")
  start = time.time()
  try:
    with make_pipeline() as pipeline:
      add_bulk_inference(pipeline, model_dir=model_dir, spec=spec, ids=ids, config=config,
                         output_path=os.path.join(out_dir, PREDICTIONS_FILE))
  finally:
    node_scoring.release_scorers()  # in-process runners: free the graph and the model
  seconds = time.time() - start
  return {"num_nodes": len(ids), "selection": selection, "node_set": spec.node_set,
          "seconds": round(seconds, 3), "nodes_per_s": round(len(ids) / max(seconds, 1e-9), 1)}
