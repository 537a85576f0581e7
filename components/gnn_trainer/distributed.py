"""Multi-worker training: `trainer.num_workers` local worker processes (MultiWorkerMirrored).

TensorFlow configures collective ops when its runtime starts, so a process that has already run
TF ops (the pipeline's own, where LocalDagRunner runs every component) cannot become a worker:
`MultiWorkerMirroredStrategy()` then fails with "Collective ops must be configured at program
startup". `train()` therefore runs `training.train` in N fresh processes, each with its own
TF_CONFIG on localhost (free ports), and waits for them:

- worker 0 is the chief: it writes the export and the checkpoints at the paths given; the
  others export to scratch directories that are deleted afterwards (TF's multi-worker rule:
  every worker saves, since saving may run collectives; only the chief's copy is kept; Keras's
  ModelCheckpoint and BackupAndRestore already send non-chief writes to `workertemp_<i>`);
- each worker reads its shard of the data (`ShardedTFRecordProvider`, by the InputContext);
- the chief appends each epoch's (globally reduced) metrics to a file that the launching
  process follows, so `on_epoch` (MLflow) still sees every epoch as it ends;
- a worker that fails (exit code, signal) fails the run with an error naming it and the end
  of its log; the other workers are killed at once (they would otherwise wait for the dead
  peer in a collective), and every worker dies with the launching process (PR_SET_PDEATHSIG).

On a cluster whose TF_CONFIG is set for each worker (Kubernetes), each worker runs
`python -m tfx_gnn.components.gnn_trainer.distributed SPEC.json` with `trainer.num_workers: 1`: the
same entry point, reading the cluster from its environment.
"""
from __future__ import annotations

import collections
import ctypes
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Optional

import pydantic
import tensorflow as tf
from tensorflow_gnn import runner

from tfx_gnn.components.gnn_trainer import config as trainer_config
from tfx_gnn.components.subgraph_sampler import config as sampler_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULT_FILE = "result.json"
EPOCHS_FILE = "epochs.jsonl"
LOG_TAIL_LINES = 30
KILL_GRACE_S = 10.0


class WorkerError(RuntimeError):
  """A training worker failed; the message names it and quotes the end of its log."""


# --------------------------------------------------------------- inside training.train
class ShardedTFRecordProvider(runner.DatasetProvider):
  """TF-GNN's `TFRecordDatasetProvider` for one input pipeline. For several (one per worker,
  from the InputContext), an exact partition of the examples: by file when the files divide
  evenly (TF-GNN's own sharding), else by record (each worker reads the files in order and
  keeps every n-th example, as tf.data's AutoShardPolicy.DATA does). Then, with `cache`, the
  serialized examples stay in memory after the first pass (later epochs neither read nor
  checksum the files again; file order is then the first pass's, so the example shuffle is
  what reorders), and they are shuffled."""

  def __init__(self, filenames, *, shuffle_filenames: bool = False,
               examples_shuffle_size: Optional[int] = None, cache: bool = False):
    self._filenames = list(filenames)
    self._by_file = runner.TFRecordDatasetProvider(filenames=self._filenames,
                                                   shuffle_filenames=shuffle_filenames)
    self._examples_shuffle_size = examples_shuffle_size
    self._cache = cache

  def get_dataset(self, context: tf.distribute.InputContext) -> tf.data.Dataset:
    n = context.num_input_pipelines
    if n == 1 or len(self._filenames) % n == 0:
      ds = self._by_file.get_dataset(context)
    else:
      ds = tf.data.TFRecordDataset(self._filenames).shard(n, context.input_pipeline_id)
    if self._cache:
      ds = ds.cache()
    if self._examples_shuffle_size:
      ds = ds.shuffle(self._examples_shuffle_size)
    return ds.prefetch(tf.data.AUTOTUNE)


class SyncAtTrainEnd(tf.keras.callbacks.Callback):
  """A barrier across the workers when `fit()` ends (an all-reduce), so that no worker reads
  the best checkpoint (KerasTrainer's restore_best_weights) before the chief has written it."""

  def on_train_end(self, logs=None):
    strategy = self.model.distribute_strategy
    strategy.run(lambda: tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.SUM, tf.ones([])))


# ------------------------------------------------------------ the arguments of training.train
def _dataclasses() -> dict:
  from tfx_gnn.components import graph_io
  return {"Label": graph_io.Label}


def _configs() -> dict:
  # ModelConfig and TaskConfig are unions: each of their classes.
  return {cls.__name__: cls for cls in (
      *trainer_config.MODEL_TEMPLATES.values(), *trainer_config.TASK_TYPES.values(),
      trainer_config.TrainerConfig,
      trainer_config.IntegratedGradientsConfig, sampler_config.SamplingConfig)}


def encode(value: Any) -> Any:
  """`training.train`'s keyword arguments as JSON: plain values, pydantic configs of
  the trainer's and the sampler's config sections, protocol buffers (as text) and the
  dataclasses listed above."""
  if value is None or isinstance(value, (str, bool, int, float)):
    return value
  if isinstance(value, (list, tuple)):
    return [encode(v) for v in value]
  if isinstance(value, dict):
    return {"dict": {k: encode(v) for k, v in value.items()}}
  if isinstance(value, pydantic.BaseModel):
    name = type(value).__name__
    if _configs().get(name) is not type(value):
      raise TypeError(f"cannot pass a {type(value)} to a training worker")
    return {"config": name, "json": value.model_dump_json()}
  if dataclasses.is_dataclass(value) and _dataclasses().get(type(value).__name__) is type(value):
    return {"dataclass": type(value).__name__,
            "fields": {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
  if getattr(value, "recipe", None) is not None and type(value).__name__ in (
      "EpochSubgraphs", "DeferredEpochSubgraphs"):
    # Dynamic mode: each worker rebuilds the sampler from the Graph artifact, and samples
    # its own shard of the seeds (by its InputContext).
    return {"dynamic_train_subgraphs": {k: encode(v) for k, v in value.recipe.items()}}
  if hasattr(value, "DESCRIPTOR") and hasattr(value, "SerializeToString"):
    from google.protobuf import text_format
    return {"proto": value.DESCRIPTOR.full_name, "text": text_format.MessageToString(value)}
  raise TypeError(f"cannot pass a {type(value).__name__} to a training worker")


def decode(value: Any) -> Any:
  if isinstance(value, list):
    return [decode(v) for v in value]
  if not isinstance(value, dict):
    return value
  if "dict" in value:
    return {k: decode(v) for k, v in value["dict"].items()}
  if "dynamic_train_subgraphs" in value:
    from tfx_gnn.components.gnn_trainer import dynamic
    return dynamic.DeferredEpochSubgraphs({k: decode(v) for k, v in
                                           value["dynamic_train_subgraphs"].items()})
  if "config" in value:
    cls = _configs().get(value["config"])
    if not (isinstance(cls, type) and issubclass(cls, pydantic.BaseModel)):
      raise ValueError(f"unknown config class {value['config']!r}")
    return cls.model_validate_json(value["json"])
  if "dataclass" in value:
    cls = _dataclasses()[value["dataclass"]]
    return cls(**{k: decode(v) for k, v in value["fields"].items()})
  if "proto" in value:
    from google.protobuf import descriptor_pool, message_factory, text_format
    import tensorflow_gnn  # noqa: F401  (its protos)
    cls = message_factory.GetMessageClass(
        descriptor_pool.Default().FindMessageTypeByName(value["proto"]))
    return text_format.Parse(value["text"], cls())
  raise ValueError(f"cannot decode {sorted(value)}")


# ------------------------------------------------------------------------------ the cluster
def free_ports(count: int) -> list[int]:
  """`count` distinct free TCP ports on localhost (held open together while they are chosen)."""
  sockets = []
  try:
    for _ in range(count):
      s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
      s.bind(("localhost", 0))
      sockets.append(s)
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def local_tf_configs(num_workers: int, num_ps: int = 0) -> list[dict]:
  """One TF_CONFIG per process: a cluster of `num_workers` workers on localhost; with `num_ps`
  parameter servers, a ParameterServerStrategy cluster (TF's multi-process tests' layout): the
  chief (the coordinator, which trains) first, then the workers, then the parameter servers."""
  if not num_ps:
    workers = [f"localhost:{port}" for port in free_ports(num_workers)]
    return [{"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
            for i in range(num_workers)]
  ports = [f"localhost:{port}" for port in free_ports(1 + num_workers + num_ps)]
  cluster = {"chief": ports[:1], "worker": ports[1:1 + num_workers],
             "ps": ports[1 + num_workers:]}
  return [{"cluster": cluster, "task": {"type": job, "index": i}}
          for job in ("chief", "worker", "ps") for i in range(len(cluster[job]))]


def _role(tf_config: dict) -> str:
  task = tf_config.get("task", {})
  return f"{task.get('type', 'worker')} {task.get('index', 0)}"


def is_chief(tf_config: dict) -> bool:
  """TF's rule: the `chief` task if the cluster has one, else worker 0."""
  task = tf_config.get("task", {})
  if "chief" in tf_config.get("cluster", {}):
    return task.get("type") == "chief"
  return task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0


PARENT_PID_ENV = "TFX_GNN_LAUNCHER_PID"


def _die_with_launcher() -> None:
  """In a worker, first thing: SIGKILL when the launching process dies (Linux prctl; done after
  exec rather than in a preexec_fn, which is unsafe in the launcher's multi-threaded process)."""
  parent = os.environ.get(PARENT_PID_ENV)
  if not parent or not sys.platform.startswith("linux"):
    return
  ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
  if os.getppid() != int(parent):  # the launcher died before that
    os._exit(1)


def _tail(path: str, lines: int = LOG_TAIL_LINES) -> str:
  try:
    with open(path, errors="replace") as f:
      return "".join(collections.deque(f, maxlen=lines))
  except OSError:
    return "(no log)"


def _stop(procs: list[subprocess.Popen]) -> None:
  """SIGTERM to each live worker's process group, SIGKILL after a grace period."""
  for p in procs:
    if p.poll() is None:
      try:
        os.killpg(p.pid, signal.SIGTERM)
      except ProcessLookupError:
        pass
  deadline = time.monotonic() + KILL_GRACE_S
  for p in procs:
    try:
      p.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
      try:
        os.killpg(p.pid, signal.SIGKILL)
      except ProcessLookupError:
        pass
      p.wait()


class _EpochFollower:
  """Reads the chief's epoch lines as they are appended."""

  def __init__(self, path: str, on_epoch: Optional[Callable[[int, dict], None]]):
    self._path, self._on_epoch, self._offset = path, on_epoch, 0

  def poll(self) -> None:
    if not os.path.exists(self._path):
      return
    with open(self._path) as f:
      f.seek(self._offset)
      while True:
        line = f.readline()
        if not line.endswith("\n"):  # not yet complete
          break
        self._offset = f.tell()
        record = json.loads(line)
        if self._on_epoch:
          self._on_epoch(record["epoch"], record["logs"])


def _describe(returncode: int) -> str:
  if returncode < 0:
    return f"was killed by signal {signal.Signals(-returncode).name}"
  return f"exited with code {returncode}"


def launch_local_workers(num_workers: int, train_kwargs: dict, *,
                         on_epoch: Optional[Callable[[int, dict], None]] = None,
                         log_dir: Optional[str] = None, poll_s: float = 0.5,
                         stats: Optional[list] = None, num_ps: int = 0):
  """Runs `training.train(**train_kwargs)` in `num_workers` local worker processes; returns
  the chief's TrainResult. Worker logs are copied to `log_dir` (default: the model_dir).
  `stats`, if given, receives each worker's wall and CPU seconds inside `training.train`.
  With `num_ps`: a ParameterServerStrategy cluster instead, whose workers and parameter
  servers serve until the coordinator (the chief, which trains and exports) is done."""
  from tfx_gnn.components.gnn_trainer import training
  scratch = tempfile.mkdtemp(prefix="tfx-gnn-workers-")
  procs: list[subprocess.Popen] = []
  tf_configs = local_tf_configs(num_workers, num_ps)
  logs = [os.path.join(scratch, "worker-" + _role(c).replace(" ", "-") + ".log" if num_ps
                       else f"worker-{i}.log") for i, c in enumerate(tf_configs)]
  log_dir = log_dir or train_kwargs.get("model_dir")
  kept = [os.path.join(log_dir, os.path.basename(p)) if log_dir else p for p in logs]
  try:
    spec_path = os.path.join(scratch, "spec.json")
    with open(spec_path, "w") as f:
      json.dump({"kwargs": {k: encode(v) for k, v in train_kwargs.items()},
                 "scratch": scratch}, f)
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", **{PARENT_PID_ENV: str(os.getpid())},
               PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    for i, tf_config in enumerate(tf_configs):
      with open(logs[i], "wb") as log:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tfx_gnn.components.gnn_trainer.distributed", spec_path],
            env={**env, "TF_CONFIG": json.dumps(tf_config)}, cwd=REPO, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    follower = _EpochFollower(os.path.join(scratch, EPOCHS_FILE), on_epoch)
    while True:
      follower.poll()
      failed = [(i, p.returncode) for i, p in enumerate(procs) if p.poll() not in (None, 0)]
      if failed:
        i, code = failed[0]
        _stop(procs)
        also = "".join(f"; worker {j} {_describe(c)} too" for j, c in failed[1:])
        raise WorkerError(
            f"training {_role(tf_configs[i]) if num_ps else f'worker {i} of {num_workers}'} "
            f"(localhost, pid {procs[i].pid}) "
            f"{_describe(code)}{also}; the other workers were stopped. Last lines of its log "
            f"({kept[i]}):\n{_tail(logs[i])}")
      if all(p.returncode == 0 for p in procs) or (num_ps and procs[0].returncode == 0):
        break  # (a parameter-server cluster's servers never exit: the coordinator is done)
      time.sleep(poll_s)
    follower.poll()
    with open(os.path.join(scratch, RESULT_FILE)) as f:
      result = json.load(f)
    if stats is not None and not num_ps:
      for i in range(num_workers):
        with open(os.path.join(scratch, f"worker-{i}.json")) as f:
          stats.append(json.load(f))
    return training.TrainResult(history=result["history"], export_dir=result["export_dir"],
                                target=tuple(result.get("target") or ("root", "label")),
                                heads=result.get("heads"))
  finally:
    _stop(procs)
    if log_dir:
      tf.io.gfile.makedirs(log_dir)
      for log, dest in zip(logs, kept):
        if os.path.exists(log):
          tf.io.gfile.copy(log, dest, overwrite=True)
    shutil.rmtree(scratch, ignore_errors=True)


def train(*, on_epoch: Optional[Callable[[int, dict], None]] = None, **train_kwargs):
  """`training.train`, in `trainer_cfg.num_workers` local worker processes when it is > 1."""
  num_workers = train_kwargs["trainer_cfg"].num_workers
  num_ps = train_kwargs["trainer_cfg"].num_ps
  if num_ps:  # a local ParameterServerStrategy cluster
    return launch_local_workers(num_workers, train_kwargs, on_epoch=on_epoch, num_ps=num_ps)
  if num_workers > 1:
    return launch_local_workers(num_workers, train_kwargs, on_epoch=on_epoch)
  from tfx_gnn.components.gnn_trainer import training
  return training.train(on_epoch=on_epoch, **train_kwargs)


# -------------------------------------------------------------------------- one worker
def worker_main(spec_path: str) -> int:
  """One worker: TF_CONFIG from the environment, arguments from the spec file."""
  tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
  with open(spec_path) as f:
    spec = json.load(f)
  kwargs = {k: decode(v) for k, v in spec["kwargs"].items()}
  scratch = spec.get("scratch") or os.path.dirname(os.path.abspath(spec_path))
  chief = is_chief(tf_config)
  task = tf_config.get("task", {})
  if "ps" in tf_config.get("cluster", {}) and not chief:
    return serve_cluster_task(tf_config)
  if not chief:
    kwargs["export_dir"] = os.path.join(
        scratch, f"{task.get('type', 'worker')}-{task.get('index', 0)}", "export")
  # One worker of a multi-worker run trains with the multi-worker strategy even where the
  # config left the number of workers to the launcher.
  if kwargs["trainer_cfg"].strategy != "parameter_server":
    kwargs["trainer_cfg"] = kwargs["trainer_cfg"].model_copy(
        update={"num_workers": 1, "strategy": "multi_worker_mirrored"})
  epochs_path = os.path.join(scratch, EPOCHS_FILE)
  resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
  print(f"tfx-gnn training worker: task {resolver.task_type} {resolver.task_id} "
        f"({'chief' if chief else 'not chief'}) of cluster "
        f"{json.dumps(resolver.cluster_spec().as_dict(), sort_keys=True)}",
        file=sys.stderr, flush=True)

  def on_epoch(epoch, logs):
    if chief:
      with open(epochs_path, "a") as f:
        f.write(json.dumps({"epoch": epoch, "logs": logs}) + "\n")

  from tfx_gnn.components.gnn_trainer import training
  start, cpu_start = time.monotonic(), time.process_time()
  result = training.train(on_epoch=on_epoch, **kwargs)
  with open(os.path.join(scratch, f"worker-{task.get('index', 0)}.json"), "w") as f:
    json.dump({"train_s": time.monotonic() - start,
               "cpu_s": time.process_time() - cpu_start}, f)
  if chief:
    tmp = os.path.join(scratch, RESULT_FILE + ".tmp")
    with open(tmp, "w") as f:
      json.dump({"history": result.history, "export_dir": result.export_dir,
                 "target": list(result.target), "heads": result.heads}, f)
    os.replace(tmp, os.path.join(scratch, RESULT_FILE))
  else:
    shutil.rmtree(os.path.dirname(kwargs["export_dir"]), ignore_errors=True)
  return 0


def serve_cluster_task(tf_config: dict) -> int:
  """A ParameterServerStrategy worker or parameter server: a TF server that runs what the
  coordinator sends it, until it is stopped."""
  # As TF's parameter-server tutorial: a worker's errors go to the coordinator, which retries.
  os.environ["GRPC_FAIL_FAST"] = "use_caller"
  resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
  print(f"tfx-gnn {resolver.task_type} {resolver.task_id} of cluster "
        f"{json.dumps(resolver.cluster_spec().as_dict(), sort_keys=True)}",
        file=sys.stderr, flush=True)
  server = tf.distribute.Server(resolver.cluster_spec(), job_name=resolver.task_type,
                                task_index=resolver.task_id, protocol="grpc", start=True)
  server.join()
  return 0


if __name__ == "__main__":
  _die_with_launcher()
  if len(sys.argv) != 2:
    sys.exit("usage: python -m tfx_gnn.components.gnn_trainer.distributed SPEC.json  "
             "(TF_CONFIG in the environment)")
  # The module's own copy, not __main__'s (training.py imports it too).
  from tfx_gnn.components.gnn_trainer import distributed as _module
  sys.exit(_module.worker_main(sys.argv[1]))
