"""Compiles the pipeline for Kubeflow Pipelines v2 with TFX's KubeflowV2DagRunner.

The file is a PipelineJob (`displayName`, `labels`, `pipelineSpec`, `runtimeConfig`); every
component runs as `python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor
--executor_class_path components.<component>.executor.Executor ...` in `kubeflow.image`.
"""
from __future__ import annotations

import json
import os

from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

from tfx_gnn.pipelines.config import Config
from tfx_gnn.pipelines.pipeline import create_pipeline


def compile_pipeline(config: Config, output_file: str | None = None) -> str:
  """Writes the pipeline file; returns its path."""
  output_file = os.path.abspath(output_file or config.kubeflow.output_file)
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
          default_image=config.kubeflow.image),
      output_dir=os.path.dirname(output_file),
      output_filename=os.path.basename(output_file))
  runner.run(create_pipeline(config, base=config.kubeflow.pipeline_root, kubeflow=True),
             write_out=True)
  return output_file


def load_pipeline_spec(path: str):
  """Loads a compiled file into KFP's own protos (`kfp-pipeline-spec`): this fails on any
  field that KFP v2 does not define."""
  from google.protobuf import json_format  # pylint: disable=g-import-not-at-top
  from kfp.pipeline_spec import pipeline_spec_pb2  # pylint: disable=g-import-not-at-top
  with open(path) as f:
    job = json.load(f)
  return json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
