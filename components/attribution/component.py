"""Attribution: which node sets, features and hops the trained model relies on.

Runs the candidate model's `integrated_gradients` signature (exported by GnnTrainer with
TF-GNN's IntegratedGradientsExporter) on the first `attribution.num_subgraphs` test-split
subgraphs and aggregates |gradient x input| per node set, per feature (and vector index) and
per hop from the root. Outputs an `Attributions` artifact (Parquet, JSON, `report.html`),
also logged to the trainer's MLflow run under `attribution/`.

Usage:
  attribution = Attribution(model=trainer.outputs["model"],
                            examples=sampler.outputs["examples"], graph=ingest.outputs["graph"],
                            attribution_config=config.attribution.model_dump_json(),
                            integrated_gradients=config.trainer.integrated_gradients
                            .model_dump_json(), tracking_uri=config.tracking_uri)
"""
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, component_spec, standard_artifacts

from tfx_gnn.components import types
from tfx_gnn.components.attribution import executor


class AttributionSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      "attribution_config": component_spec.ExecutionParameter(type=str),  # AttributionConfig
      # trainer.integrated_gradients (IntegratedGradientsConfig): how the model was exported.
      "integrated_gradients": component_spec.ExecutionParameter(type=str),
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

  def __init__(self, model, examples, graph, attribution_config: str,
               integrated_gradients: str, tracking_uri: str):
    super().__init__(spec=AttributionSpec(
        model=model, examples=examples, graph=graph, attribution_config=attribution_config,
        integrated_gradients=integrated_gradients, tracking_uri=tracking_uri,
        attributions=channel.Channel(type=types.Attributions)))
