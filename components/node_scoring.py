"""Scoring nodes by id with a pushed model: sample each node's subgraph with the training run's
sampling spec (the fast engine), run the SavedModel, return the class, probabilities and the
root's embedding.

Shared by GnnBulkInferrer (in Beam DoFns), the MLflow model that the Pusher registers
(`mlflow_model`) and `tfx-gnn predict`, so the three give the same answer for the same id:
the fast sampler's subgraph is a function of (sampling seed, salt, id) alone, and every caller
uses the same salt, `SALT`.

A `ServingSpec` is what a client needs besides the SavedModel: the Graph artifact's directory,
the SamplingSpec (text format), the sampling seed, the target node set and the task. The Pusher
records it on the PushedModel (`serving_spec`, JSON) and bundles it into the MLflow model.
"""
from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import json
import os
import threading
from typing import Iterable, Optional

import numpy as np

from tfx_gnn.components import graph_io

# The randomness stream of inference subgraphs (the sampler's `salt`); the splits' training
# subgraphs use the split names, so a test node's inference subgraph is drawn afresh.
SALT = "inference"
LOGITS_OUTPUT = "logits"  # gnn_trainer.tasks.OUTPUT_NAME
EMBEDDING_OUTPUT = "root_embedding"  # gnn_trainer.tasks.ROOT_EMBEDDING_OUTPUT
# gnn_trainer.tasks.ROOT_EMBEDDING_SIGNATURE: logits and the root's embedding in one pass.
EMBEDDING_SIGNATURE = "logits_and_root_embedding"
SCORED_TASKS = ("root_node_multiclass", "root_node_binary", "root_node_regression")
COLUMNS = ("id", "prediction", "probabilities", "embedding")
DEFAULT_BATCH_SIZE = 256  # subgraphs per model call (larger batches measured no faster)


class ScoringError(ValueError):
  """Ids that cannot be scored, or a graph that is gone; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class ServingSpec:
  graph_dir: str  # the Graph artifact the model was trained on (its uri)
  sampling_spec: str  # tensorflow_gnn.sampler.SamplingSpec, text format
  seed: int  # the fast engine's sampling seed (sampling.seed)
  node_set: str  # the target node set (the seed op's, the graph's labelled one)
  task: str  # gnn_trainer's task.type: root_node_multiclass, _binary or _regression
  salt: str = SALT

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), sort_keys=True)

  # The PushedModel's `serving_spec` property: base64 of the JSON, because ML Metadata 1.17.1
  # on PostgreSQL mis-quotes a string property that holds a backslash (JSON escapes the spec's
  # quotes and newlines with them) and the insert fails.
  def to_property(self) -> str:
    return base64.b64encode(self.to_json().encode()).decode()

  @classmethod
  def from_property(cls, text: str) -> "ServingSpec":
    return cls.from_json(base64.b64decode(text).decode())

  @classmethod
  def from_json(cls, text: str) -> "ServingSpec":
    return cls(**json.loads(text))


def serving_spec(examples, graph, model) -> ServingSpec:
  """The ServingSpec of a model trained on `examples` (the SubgraphSampler's artifact, which
  records the spec it sampled with) sampled from `graph`."""
  task = model.get_string_custom_property("task") or "root_node_multiclass"
  if task not in SCORED_TASKS:
    raise ScoringError(f"model {model.uri}: task {task!r} does not score nodes by id "
                       f"(one of {', '.join(SCORED_TASKS)} does)")
  spec_text = examples.get_string_custom_property("sampling_spec")
  if not spec_text:
    raise ScoringError(f"examples {examples.uri} record no sampling_spec: not root-node "
                       "subgraphs")
  from tensorflow_gnn import sampler as sampler_lib
  from google.protobuf import text_format
  spec = text_format.Parse(spec_text, sampler_lib.SamplingSpec())
  return ServingSpec(graph_dir=graph.uri, sampling_spec=spec_text,
                     seed=int(examples.get_int_custom_property("sampling_seed")),
                     node_set=spec.seed_op.node_set_name, task=task)


def check_graph(spec: ServingSpec) -> None:
  """A clear error when the Graph artifact's directory is gone (deleted, or never there)."""
  import tensorflow as tf
  schema = os.path.join(spec.graph_dir, graph_io.SCHEMA_FILE)
  if not tf.io.gfile.exists(schema):
    raise ScoringError(f"the Graph artifact {spec.graph_dir} that the model samples from is "
                       f"missing ({graph_io.SCHEMA_FILE} not found): was it deleted? "
                       "Rerun the pipeline to ingest the graph again")


def node_ids(graph_dir: str, node_set: str) -> list[str]:
  """Every node id of a node set of a Graph artifact, in file order."""
  schema = graph_io.read_schema(graph_dir)
  if node_set not in schema.node_sets:
    raise ScoringError(f"graph {graph_dir} has no node set {node_set!r}")
  path = os.path.join(graph_dir, schema.node_sets[node_set].metadata.filename)
  (ids,), _ = graph_io.read_examples(path, (graph_io.ID,), {})
  return list(ids)


def unknown_ids_error(graph_dir: str, node_set: str, ids: list[str]) -> ScoringError:
  """Which of `ids` are not nodes of `node_set`, saying when one is a node of another set
  (read from the graph: this runs only when ids were refused)."""
  known = set(node_ids(graph_dir, node_set))
  missing = list(dict.fromkeys(i for i in ids if i not in known))
  elsewhere = {}
  for name in graph_io.read_schema(graph_dir).node_sets:
    if name != node_set:
      others = set(node_ids(graph_dir, name))
      for i in missing:
        if i in others:
          elsewhere.setdefault(i, name)
  parts = []
  if elsewhere:
    shown = ", ".join(f"{i!r} ({s})" for i, s in list(elsewhere.items())[:5])
    parts.append(f"{len(elsewhere)} id(s) of another node set: {shown}")
  unknown = [i for i in missing if i not in elsewhere]
  if unknown:
    parts.append(f"{len(unknown)} unknown id(s): {', '.join(map(repr, unknown[:5]))}"
                 + (" ..." if len(unknown) > 5 else ""))
  return ScoringError(f"the model scores nodes of node set {node_set!r} of graph "
                      f"{graph_dir}; " + "; ".join(parts))


class NodeScorer:
  """A SavedModel and the fast sampler of its ServingSpec: `score(ids)` -> columns."""

  def __init__(self, model_dir: str, spec: ServingSpec):
    import tensorflow as tf
    import tensorflow_gnn  # noqa: F401  (registers the GraphTensor ops the SavedModel needs)
    from google.protobuf import text_format
    from tensorflow_gnn import sampler as sampler_lib
    from tfx_gnn.components.subgraph_sampler import fast_sampler
    check_graph(spec)
    if not tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
      raise ScoringError(f"no SavedModel at {model_dir}")
    self.spec = spec
    self.model_dir = model_dir
    try:
      self._sampler = fast_sampler.FastSampler.from_graph_dir(
          spec.graph_dir, text_format.Parse(spec.sampling_spec, sampler_lib.SamplingSpec()),
          seed=spec.seed)
    except (OSError, tf.errors.OpError, fast_sampler.FastSamplerError) as e:
      # E.g. a file of the artifact deleted (its schema still there).
      raise ScoringError(f"cannot sample from the Graph artifact {spec.graph_dir}: "
                         f"{type(e).__name__}: {e}") from None
    self._sampler_error = fast_sampler.FastSamplerError
    signatures = tf.saved_model.load(model_dir).signatures
    self._serve = signatures.get(EMBEDDING_SIGNATURE) or signatures["serving_default"]
    self._tf = tf

  def score_arrays(self, ids: Iterable, batch_size: int = DEFAULT_BATCH_SIZE) -> dict:
    """The columns of `score` as arrays: `id` (a list), `prediction` (1-D), `probabilities`
    and `embedding` (2-D, float32), one row per id, in order.

    Sampling runs one batch ahead on a thread while the model runs the current batch (TF's
    kernels release the GIL), so the two overlap when a second core is free; each batch's
    subgraphs and the model's outputs are those of a sequential pass."""
    ids = [str(i) for i in ids]
    if not ids:
      raise ScoringError("no ids to score")
    check_graph(self.spec)  # a graph deleted since the scorer was built
    batches = [ids[start:start + batch_size] for start in range(0, len(ids), batch_size)]
    predictions, probabilities, embeddings = [], [], []
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sampler") as ahead:
      sampled = ahead.submit(self._sample, batches[0])
      for i, batch in enumerate(batches):
        examples = sampled.result()
        if i + 1 < len(batches):
          sampled = ahead.submit(self._sample, batches[i + 1])
        outputs = self._serve(examples=examples)
        logits = outputs[LOGITS_OUTPUT].numpy()
        prediction, probability = decide(self.spec.task, logits)
        predictions.append(prediction)
        probabilities.append(probability)
        embeddings.append(outputs[EMBEDDING_OUTPUT].numpy().astype(np.float32)
                          if EMBEDDING_OUTPUT in outputs
                          else np.zeros((len(batch), 0), np.float32))
    return {"id": ids, "prediction": np.concatenate(predictions),
            "probabilities": np.concatenate(probabilities),
            "embedding": np.concatenate(embeddings)}

  def _sample(self, batch: list[str]):
    try:
      return self._tf.constant(self._sampler.sample(batch, salt=self.spec.salt),
                               dtype=self._tf.string)
    except self._sampler_error:
      raise unknown_ids_error(self.spec.graph_dir, self.spec.node_set, batch) from None

  def score(self, ids: Iterable, batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, list]:
    """Columns `id`, `prediction` (the class; the score for regression), `probabilities`
    (per class; [] for regression) and `embedding` (the root's state; [] if the model does
    not export one), one row per id, in order, as Python lists."""
    arrays = self.score_arrays(ids, batch_size)
    return {"id": arrays["id"], "prediction": arrays["prediction"].tolist(),
            "probabilities": arrays["probabilities"].tolist(),
            "embedding": arrays["embedding"].tolist()}


def decide(task: str, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(prediction, probabilities) from the model's logits: softmax and argmax (multiclass),
  sigmoid and p >= 0.5 (binary: probabilities [1 - p, p]), the score itself (regression)."""
  logits = logits.astype(np.float32)
  if task == "root_node_regression":
    return logits.reshape(-1).astype(np.float64), np.zeros((len(logits), 0), np.float32)
  if task == "root_node_binary":
    p = 1.0 / (1.0 + np.exp(-logits.reshape(-1)))
    return (p >= 0.5).astype(np.int64), np.stack([1.0 - p, p], -1).astype(np.float32)
  shifted = np.exp(logits - logits.max(-1, keepdims=True))
  probabilities = shifted / shifted.sum(-1, keepdims=True)
  return logits.argmax(-1).astype(np.int64), probabilities.astype(np.float32)


_CACHE: dict[tuple, NodeScorer] = {}
_CACHE_LOCK = threading.Lock()


def load_scorer(model_dir: str, spec_json: str) -> NodeScorer:
  """The scorer of (model, spec), built once per process (Beam workers share it)."""
  key = (model_dir, spec_json)
  with _CACHE_LOCK:
    if key not in _CACHE:
      _CACHE.clear()  # one model at a time
      _CACHE[key] = NodeScorer(model_dir, ServingSpec.from_json(spec_json))
    return _CACHE[key]


def release_scorers() -> None:
  """Frees this process's cached scorers (graph and model), as the sampler's cache is freed:
  under LocalDagRunner the later components run in the same process."""
  with _CACHE_LOCK:
    _CACHE.clear()


def arrow_schema(task: str):
  """The predictions table's columns (Parquet)."""
  import pyarrow as pa
  prediction = pa.float64() if task == "root_node_regression" else pa.int64()
  return pa.schema([("id", pa.string()), ("prediction", prediction),
                    ("probabilities", pa.list_(pa.float32())),
                    ("embedding", pa.list_(pa.float32()))])


def arrow_table(columns: dict, task: str):
  """The predictions table of `score` or `score_arrays` columns; 2-D arrays become list
  columns without a Python object per row."""
  import pyarrow as pa
  schema = arrow_schema(task)

  def column(name):
    values = columns[name]
    if isinstance(values, np.ndarray) and values.ndim == 2:
      flat = pa.array(values.reshape(-1).astype(np.float32), pa.float32())
      offsets = pa.array(np.arange(len(values) + 1, dtype=np.int32) * values.shape[1],
                         pa.int32())
      return pa.ListArray.from_arrays(offsets, flat)
    return pa.array(values, schema.field(name).type)

  return pa.table([column(name) for name in COLUMNS], schema=schema)


def write_parquet(columns: dict, task: str, path: str, extra: Optional[dict] = None) -> None:
  """Writes scored columns to `path` atomically (a temporary name, then a rename)."""
  import pyarrow.parquet as pq
  table = arrow_table(columns, task)
  if extra:
    table = table.replace_schema_metadata({k: str(v) for k, v in extra.items()})
  tmp = os.path.join(os.path.dirname(os.path.abspath(path)),
                     f".{os.path.basename(path)}.{os.getpid()}.tmp")
  try:
    pq.write_table(table, tmp)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
