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
    text = yaml.safe_dump(bare_spec(job), sort_keys=False)
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


def read_pipeline_file(path: str) -> dict:
  """Either format, as a PipelineSpec dict (with `defaultPipelineRoot`)."""
  with open(path) as f:
    doc = yaml.safe_load(f)  # JSON is YAML
  return bare_spec(doc) if "pipelineSpec" in doc else doc


def load_pipeline_spec(path: str):
  """Loads a compiled file (either format) into KFP's own protos (`kfp-pipeline-spec`): this
  fails on any field that KFP v2 does not define."""
  from google.protobuf import json_format
  from kfp.pipeline_spec import pipeline_spec_pb2
  return json_format.ParseDict(read_pipeline_file(path), pipeline_spec_pb2.PipelineSpec())
