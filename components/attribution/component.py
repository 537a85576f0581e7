"""Attribution: which node sets, features and hops the trained model relies on.

Runs the candidate model's `integrated_gradients` signature (exported by GnnTrainer with
TF-GNN's IntegratedGradientsExporter) on the first `attribution.num_subgraphs` test-split
subgraphs and aggregates |gradient x input| per node set, per feature (and vector index) and
per hop from the root. Outputs an `Attributions` artifact (Parquet, JSON, `report.html`),
also logged to the trainer's MLflow run under `attribution/`.

Usage (`attribution_config`: an AttributionConfig, a dict or a JSON string;
`integrated_gradients_config` likewise the trainer's IntegratedGradientsConfig):
  attribution = Attribution(model=trainer.outputs["model"],
                            examples=sampler.outputs["examples"], graph=ingest.outputs["graph"],
                            attribution_config={"num_subgraphs": 200},
                            integrated_gradients_config=config.trainer.integrated_gradients,
                            tracking_uri=config.tracking_uri)
"""
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, component_spec, standard_artifacts

from tfx_gnn.components import config_base, types
from tfx_gnn.components.attribution import executor
from tfx_gnn.components.attribution.config import AttributionConfig
from tfx_gnn.components.gnn_trainer.config import IntegratedGradientsConfig


class AttributionSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      "attribution_config": component_spec.ExecutionParameter(type=str),  # AttributionConfig
      # trainer.integrated_gradients (IntegratedGradientsConfig): how the model was exported.
      "integrated_gradients_config": component_spec.ExecutionParameter(type=str),
      "tracking_uri": component_spec.ExecutionParameter(type=str),
  }
  INPUTS = {
      "model": component_spec.ChannelParameter(type=standard_artifacts.Model),
      "examples": component_spec.ChannelParameter(type=standard_artifacts.Examples),
      "graph": component_spec.ChannelParameter(type=types.Graph),
  }
  OUTPUTS = {
      "attributions": component_spec.ChannelParameter(type=types.Attributions),
  }


class Attribution(base_component.BaseComponent):
  """Integrated-gradients attribution of a Model on test subgraphs, with an HTML report."""
  SPEC_CLASS = AttributionSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, model, examples, graph, tracking_uri: str, attribution_config=None,
               integrated_gradients_config=None):
    super().__init__(spec=AttributionSpec(
        model=model, examples=examples, graph=graph,
        attribution_config=config_base.to_json(AttributionConfig, attribution_config or {}),
        integrated_gradients_config=config_base.to_json(IntegratedGradientsConfig,
                                                        integrated_gradients_config or {}),
        tracking_uri=tracking_uri,
        attributions=channel.Channel(type=types.Attributions)))
