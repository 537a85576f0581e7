"""Compiles the pipeline for Kubeflow Pipelines v2 with TFX's KubeflowV2DagRunner.

Two file formats:
- `kfp` (the default): the bare PipelineSpec as YAML, the file that the KFP client
  (`kfp.Client().upload_pipeline`, `create_run_from_pipeline_package`) and the KFP UI take as
  it is; the pipeline root is its `defaultPipelineRoot`.
- `vertex`: the Vertex AI PipelineJob JSON that TFX writes (`displayName`, `labels`,
  `pipelineSpec`, `runtimeConfig` with the pipeline root as `gcsOutputDirectory`).

Every component runs as `python -m tfx.orchestration.kubeflow.v2.container.
kubeflow_v2_run_executor --executor_class_path tfx_gnn.components.<component>.executor.Executor
...` in `kubeflow.image`.

TFX's entrypoint gives an executor no pipeline run id on Kubeflow, so the `kfp` file carries a
second YAML document, KFP's Kubernetes platform spec (what `kfp-kubernetes`'s
`use_field_path_as_env` writes), that sets `KFP_RUN_ID` in every step's pod from its
`pipeline/runid` label: MLflow runs are named and tagged with the run (components/tracking.py).
A task parameter set to `{{$.pipeline_job_uuid}}` would differ in every run and so defeat
KFP's execution cache.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Optional

import yaml

from tfx_gnn.pipelines.config import Config

FORMATS = {"kfp": "KFP pipeline spec", "vertex": "Vertex AI PipelineJob"}
DEFAULT_FILES = {"kfp": "pipeline.yaml", "vertex": "pipeline.json"}


def pipeline_root(config: Config) -> str:
  return config.kubeflow.pipeline_root or config.pipeline.root


def check_pipeline_root(config: Config) -> None:
  """The steps run in pods: a path on this machine is nowhere they can write (ValueError)."""
  root = pipeline_root(config)
  if "://" not in root:
    unset = ("" if config.kubeflow.pipeline_root
             else " (pipeline.root; kubeflow.pipeline_root unset)")
    raise ValueError(
        f"kubeflow.pipeline_root: {root!r} is a local path{unset}, but the pipeline's steps "
        f"run in pods on the cluster: give a URI they can write, e.g. "
        f"--set kubeflow.pipeline_root=gs://BUCKET/tfx-gnn (or s3://..., minio://...)")


def output_path(config: Config, output_file: Optional[str], fmt: str = "kfp") -> str:
  """Where the pipeline file goes: `output_file`, else `kubeflow.output_file`, else the
  format's default name. KFP's client reads only .yaml / .yml files (ValueError)."""
  if fmt not in FORMATS:
    raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
  path = os.path.abspath(output_file or config.kubeflow.output_file or DEFAULT_FILES[fmt])
  if fmt == "kfp" and not path.endswith((".yaml", ".yml")):
    raise ValueError(f"{path}: the KFP client reads pipeline files named .yaml or .yml; name "
                     f"it so (-o pipeline.yaml), or write a Vertex AI PipelineJob with "
                     f"--format vertex")
  return path


def compile_pipeline(config: Config, output_file: Optional[str] = None, fmt: str = "kfp", *,
                     local_root_ok: bool = False) -> str:
  """Writes the pipeline file (atomically); returns its path. `local_root_ok`: a pipeline
  root on this machine's disk, for replaying the file here (tests/kfp_replay.py)."""
  from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner
  from tfx_gnn.pipelines.pipeline import create_pipeline
  path = output_path(config, output_file, fmt)
  if not local_root_ok:
    check_pipeline_root(config)
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
          default_image=config.kubeflow.image))
  job = runner.run(create_pipeline(config, base=pipeline_root(config), kubeflow=True),
                   write_out=False)
  if fmt == "vertex":
    text = json.dumps(job, indent=2, sort_keys=True)
  else:
    spec = bare_spec(job)
    text = yaml.safe_dump_all([spec, platform_spec(spec)], sort_keys=False)
  directory = os.path.dirname(path)
  os.makedirs(directory, exist_ok=True)
  with tempfile.NamedTemporaryFile("w", dir=directory, prefix=".pipeline-", delete=False) as f:
    f.write(text)
  os.replace(f.name, path)
  return path


def bare_spec(job: dict) -> dict:
  """The PipelineSpec of a PipelineJob, with the job's pipeline root as its default."""
  runtime = job.get("runtimeConfig", {})
  if runtime.get("parameterValues") or runtime.get("parameters"):
    raise ValueError("the pipeline has runtime parameters, which a bare PipelineSpec cannot "
                     "carry; compile with --format vertex")
  spec = dict(job["pipelineSpec"])
  spec["defaultPipelineRoot"] = runtime["gcsOutputDirectory"]
  return spec


RUN_ID_LABEL = "metadata.labels['pipeline/runid']"  # KFP v2 labels every step's pod with it


def platform_spec(spec: dict) -> dict:
  """KFP's Kubernetes platform spec: every container step gets the run's id as
  `KFP_RUN_ID` from its pod's label."""
  from tfx_gnn.components import tracking  # imports MLflow: not for every CLI command
  executors = {label: {"fieldPathAsEnv": [{"name": tracking.KFP_RUN_ID_ENV,
                                           "fieldPath": RUN_ID_LABEL}]}
               for label, executor in spec["deploymentSpec"]["executors"].items()
               if "container" in executor}
  return {"platforms": {"kubernetes": {"deploymentSpec": {"executors": executors}}}}


def _documents(path: str) -> list[dict]:
  with open(path) as f:
    return [doc for doc in yaml.safe_load_all(f) if doc]  # JSON is YAML


def read_pipeline_file(path: str) -> dict:
  """Either format, as a PipelineSpec dict (with `defaultPipelineRoot`)."""
  doc = _documents(path)[0]
  return bare_spec(doc) if "pipelineSpec" in doc else doc


def read_platform_spec(path: str) -> dict:
  """The `kfp` file's platform spec document ({} for a Vertex AI PipelineJob)."""
  docs = _documents(path)
  return docs[1] if len(docs) > 1 else {}


def load_pipeline_spec(path: str):
  """Loads a compiled file (either format) into KFP's own protos (`kfp-pipeline-spec`): this
  fails on any field that KFP v2 does not define."""
  from google.protobuf import json_format
  from kfp.pipeline_spec import pipeline_spec_pb2
  return json_format.ParseDict(read_pipeline_file(path), pipeline_spec_pb2.PipelineSpec())
