"""GnnBulkInferrer: TFX BulkInferrer's role for GNN node models.

After the Pusher, on a pushed (so blessed) model only: samples the subgraph of every node of the
target node set (or of one split, or of given ids) with the training run's own sampling spec and
seed (the fast engine, in Beam DoFns: it scales out like the SubgraphSampler) and runs the
pushed SavedModel on them. Writes `predictions.parquet` (`id`, `prediction`, `probabilities`,
`embedding` of the root) as a `NodePredictions` artifact, also logged to the trainer's MLflow
run under `bulk_inference/`. A PushedModel that was not pushed (the evaluator did not bless the
model) makes it write nothing (`inferred` = 0), as TFX's BulkInferrer skips unblessed models.

The same ids give the same predictions as `tfx-gnn predict` and the MLflow model the Pusher
registers (`tfx_gnn.components.node_scoring`).

Usage:
  inferrer = GnnBulkInferrer(pushed_model=pusher.outputs["pushed_model"],
                             graph=ingest.outputs["graph"],
                             inference_config=config.bulk_inference.model_dump_json(),
                             tracking_uri=config.tracking_uri)
"""
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import channel, component_spec, standard_artifacts

from tfx_gnn.components import types
from tfx_gnn.components.bulk_inferrer import executor


class GnnBulkInferrerSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      "inference_config": component_spec.ExecutionParameter(type=str),  # BulkInferenceConfig
      "tracking_uri": component_spec.ExecutionParameter(type=str),
  }
  INPUTS = {
      # The Pusher's output: its `serving_spec` says how to sample, `pushed` whether it was.
      "pushed_model": component_spec.ChannelParameter(type=standard_artifacts.PushedModel),
      "graph": component_spec.ChannelParameter(type=types.Graph),
  }
  OUTPUTS = {
      "predictions": component_spec.ChannelParameter(type=types.NodePredictions),
  }


class GnnBulkInferrer(base_beam_component.BaseBeamComponent):
  """Scores the target node set's nodes with the pushed model, on Beam."""
  SPEC_CLASS = GnnBulkInferrerSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, pushed_model, graph, inference_config: str, tracking_uri: str):
    super().__init__(spec=GnnBulkInferrerSpec(
        pushed_model=pushed_model, graph=graph, inference_config=inference_config,
        tracking_uri=tracking_uri, predictions=channel.Channel(type=types.NodePredictions)))
