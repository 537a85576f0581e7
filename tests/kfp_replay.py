"""Replays a compiled Kubeflow Pipelines v2 file on this machine, step by step, the way a KFP
backend would: no cluster, but each container step runs the exact command and arguments that
the file holds (TFX's Kubeflow v2 container entrypoint), with the executor input that KFP
would pass as `{{$}}`.

What a KFP backend does besides running containers is emulated here, and only that:
- it orders the tasks by their dependencies and wires each producer's output artifact into
  its consumers' executor input (adding the type from the consumer's input definitions);
- it answers the resolver tasks (MLMD queries such as "the latest LIVE ModelBlessing with
  blessed=1") from this replay's own record of published artifacts, kept across runs;
- it reuses a step's outputs when the same component ran before with the same inputs and
  parameters (KFP's execution cache), so a second run re-executes only what changed;
- it sets the environment variables that the file's Kubernetes platform spec asks for from
  the pod's fields (`fieldPathAsEnv`); of those, only the `pipeline/runid` label exists here,
  set to this replay's run id.

`python -m MODULE ARGS` is run with `runpy` in this process (same interpreter, same
arguments, fresh module globals), not in a new process: each new process would pay ~20 s of
TensorFlow/TFX imports.
"""
from __future__ import annotations

import copy
import json
import os
import re
import runpy
import sys
import uuid


class ReplayStore:
  """The artifacts a replay has published, in publication order (the backend's MLMD)."""

  def __init__(self):
    self.artifacts: list[dict] = []  # {"name", "uri", "metadata", "schema_title"}
    self.cache: dict[str, dict] = {}  # execution cache key -> {output key: artifact}

  def publish(self, artifact: dict, schema_title: str) -> dict:
    artifact = dict(artifact, name=f"artifacts/{len(self.artifacts) + 1}",
                    schema_title=schema_title)
    self.artifacts.append(artifact)
    return artifact

  def query(self, filter_text: str) -> list[dict]:
    """Evaluates the conjunctions that TFX's compiled resolvers use: `schema_title="T"`,
    `state=LIVE`, `metadata.K.number_value=N`, `name="X"`. Latest first."""
    clauses = [c.strip() for c in filter_text.split(" AND ")]
    matches = []
    for artifact in reversed(self.artifacts):
      ok = True
      for clause in clauses:
        if clause == "state=LIVE":
          continue
        m = re.fullmatch(r'schema_title="(.+)"', clause)
        if m:
          ok &= artifact["schema_title"] == m.group(1)
          continue
        m = re.fullmatch(r'name="(.*)"', clause)
        if m:
          ok &= artifact["name"] == m.group(1)
          continue
        m = re.fullmatch(r"metadata\.(\w+)\.number_value=([-\d.]+)", clause)
        if m:
          ok &= float(artifact["metadata"].get(m.group(1), "nan")) == float(m.group(2))
          continue
        raise ValueError(f"resolver filter clause not understood: {clause!r}")
      if ok:
        matches.append(artifact)
    return matches


def _title(artifact_type: dict) -> str:
  if "schemaTitle" in artifact_type:
    return artifact_type["schemaTitle"]
  return re.search(r"title: (\S+)", artifact_type["instanceSchema"]).group(1)


def _order(tasks: dict) -> list[str]:
  """Tasks in dependency order (dependentTasks and artifact producers)."""
  deps = {name: set(task.get("dependentTasks", [])) | {
      ref["taskOutputArtifact"]["producerTask"]
      for ref in task.get("inputs", {}).get("artifacts", {}).values()}
          for name, task in tasks.items()}
  ordered: list[str] = []
  while len(ordered) < len(tasks):
    ready = sorted(n for n in tasks if n not in ordered and deps[n] <= set(ordered))
    if not ready:
      raise ValueError("the compiled DAG has a cycle")
    ordered.extend(ready)
  return ordered


def _run_container(command: list[str], args: list[str], env: dict[str, str]) -> None:
  if command[:2] != ["python", "-m"]:
    raise ValueError(f"not a `python -m` container command: {command}")
  saved_argv, saved_env = sys.argv, {k: os.environ.get(k) for k in env}
  sys.argv = [command[2]] + args
  os.environ.update(env)
  try:
    runpy.run_module(command[2], run_name="__main__", alter_sys=True)
  except SystemExit as e:
    if e.code not in (0, None):
      raise RuntimeError(f"{command[2]} exited with {e.code}") from e
  finally:
    sys.argv = saved_argv
    for key, value in saved_env.items():
      if value is None:
        os.environ.pop(key, None)
      else:
        os.environ[key] = value


def _pod_env(platform: dict, executor_label: str, pod_labels: dict[str, str]) -> dict[str, str]:
  """The `fieldPathAsEnv` variables of one executor, from the pod's labels."""
  config = (platform.get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {})
            .get("executors", {}).get(executor_label, {}))
  env = {}
  for entry in config.get("fieldPathAsEnv", []):
    m = re.fullmatch(r"metadata\.labels\['(.+)'\]", entry["fieldPath"])
    if not m or m.group(1) not in pod_labels:
      raise ValueError(f"{executor_label}: pod field {entry['fieldPath']!r} is not emulated")
    env[entry["name"]] = pod_labels[m.group(1)]
  return env


def replay(pipeline_file: str, store: ReplayStore, run_id: str | None = None
           ) -> dict[str, dict]:
  """Runs every task of the compiled pipeline as KFP run `run_id` (a new uuid if None);
  returns each task's record: {"state": "COMPLETE" | "CACHED" | "RESOLVED", "outputs":
  {key: artifact}}."""
  from tfx_gnn.pipelines import kubeflow_runner
  spec = kubeflow_runner.read_pipeline_file(pipeline_file)  # either format
  platform = kubeflow_runner.read_platform_spec(pipeline_file)
  run_id = run_id or str(uuid.uuid4())
  root = spec["defaultPipelineRoot"]
  tasks = spec["root"]["dag"]["tasks"]
  run_dir = os.path.join(root, "replay", run_id[:8])
  published: dict[tuple[str, str], dict] = {}
  records: dict[str, dict] = {}

  for name in _order(tasks):
    task = tasks[name]
    component = spec["components"][task["componentRef"]["name"]]
    executor = spec["deploymentSpec"]["executors"][component["executorLabel"]]
    inputs = {}
    for key, ref in task.get("inputs", {}).get("artifacts", {}).items():
      source = ref["taskOutputArtifact"]
      artifact = published.get((source["producerTask"], source["outputArtifactKey"]))
      if artifact is not None:
        inputs[key] = artifact

    if "resolver" in executor:
      outputs = {}
      for key, query in executor["resolver"]["outputArtifactQueries"].items():
        # Placeholders such as {{$.inputs.artifacts['input'].metadata['current_model_id']}}.
        text = re.sub(r"\{\{\$\.inputs\.artifacts\['(\w+)'\]\.metadata\['(\w+)'\]\}\}",
                      lambda m: str(inputs.get(m.group(1), {}).get("metadata", {})
                                    .get(m.group(2), "")), query["filter"])
        found = store.query(text) if all(k in inputs for k in
                                         component.get("inputDefinitions", {})
                                         .get("artifacts", {})) else []
        if found:
          outputs[key] = found[0]
      for key, artifact in outputs.items():
        published[(name, key)] = artifact
      records[name] = {"state": "RESOLVED", "outputs": outputs}
      continue

    parameters = {key: value["runtimeValue"]["constantValue"]
                  for key, value in task.get("inputs", {}).get("parameters", {}).items()}
    cache_key = json.dumps([task["componentRef"]["name"],
                            {k: v["name"] for k, v in sorted(inputs.items())}, parameters],
                           sort_keys=True)
    if task.get("cachingOptions", {}).get("enableCache") and cache_key in store.cache:
      outputs = store.cache[cache_key]
      for key, artifact in outputs.items():
        published[(name, key)] = artifact
      records[name] = {"state": "CACHED", "outputs": outputs}
      continue

    task_dir = os.path.join(run_dir, name)
    output_defs = component.get("outputDefinitions", {}).get("artifacts", {})
    input_defs = component.get("inputDefinitions", {}).get("artifacts", {})
    executor_input = {
        "inputs": {
            "artifacts": {
                key: {"artifacts": [{"name": a["name"], "uri": a["uri"],
                                     "metadata": a["metadata"],
                                     "type": input_defs[key]["artifactType"]}]}
                for key, a in inputs.items()},
            # Schema 2.0 reads the legacy `parameters` field.
            "parameters": parameters,
        },
        "outputs": {
            "artifacts": {
                key: {"artifacts": [{"name": f"{name}/{key}",
                                     "uri": os.path.join(task_dir, key),
                                     "type": definition["artifactType"]}]}
                for key, definition in output_defs.items()},
            "outputFile": os.path.join(task_dir, "executor_output.json"),
        },
    }
    for key in output_defs:
      os.makedirs(os.path.join(task_dir, key), exist_ok=True)
    container = executor["container"]
    args = [json.dumps(executor_input) if a == "{{$}}" else a for a in container["args"]]
    _run_container(list(container["command"]), args,
                   _pod_env(platform, component["executorLabel"], {"pipeline/runid": run_id}))

    with open(executor_input["outputs"]["outputFile"]) as f:
      executor_output = json.load(f)
    outputs = {}
    for key, definition in output_defs.items():
      produced = executor_output.get("artifacts", {}).get(key, {}).get("artifacts", [{}])[0]
      artifact = {"uri": produced.get("uri", os.path.join(task_dir, key)),
                  "metadata": copy.deepcopy(produced.get("metadata", {}))}
      outputs[key] = store.publish(artifact, _title(definition["artifactType"]))
      published[(name, key)] = outputs[key]
    store.cache[cache_key] = outputs
    records[name] = {"state": "COMPLETE", "outputs": outputs}
  return records
