"""GnnEvaluator: metrics on the test split and a blessing against the latest blessed model.

The blessing follows TFX's conventions, so TFX's Pusher and LatestBlessedModelStrategy
understand it: a `BLESSED` or `NOT_BLESSED` file, custom properties `blessed` (1/0),
`current_model`, `current_model_id`, `baseline_model`, `baseline_model_id`.

Usage:
  evaluator = GnnEvaluator(model=trainer.outputs["model"],
                           baseline_model=resolver.outputs["model"],
                           examples=sampler.outputs["examples"], graph=ingest.outputs["graph"],
                           evaluation_config=config.evaluation.model_dump_json())
"""
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import channel, component_spec, standard_artifacts

from components import types
from components.gnn_evaluator import executor


class GnnEvaluatorSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      # The `evaluation` section of the run config (pipelines.config.EvaluationConfig), JSON.
      "evaluation_config": component_spec.ExecutionParameter(type=str),
  }
  INPUTS = {
      "model": component_spec.ChannelParameter(type=standard_artifacts.Model),
      "baseline_model": component_spec.ChannelParameter(
          type=standard_artifacts.Model, optional=True),
      "examples": component_spec.ChannelParameter(type=standard_artifacts.Examples),
      "graph": component_spec.ChannelParameter(type=types.Graph),
  }
  OUTPUTS = {
      "evaluation": component_spec.ChannelParameter(type=standard_artifacts.ModelEvaluation),
      "blessing": component_spec.ChannelParameter(type=standard_artifacts.ModelBlessing),
  }


class GnnEvaluator(base_beam_component.BaseBeamComponent):
  """Test-split accuracy / micro-F1 / macro-F1; blesses against thresholds and a baseline."""
  SPEC_CLASS = GnnEvaluatorSpec
  # A Beam executor spec because TFX's Evaluator executor, which ours extends (see executor.py),
  # is a Beam executor; this evaluator itself runs no Beam pipeline.
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, model, examples, graph, evaluation_config: str, baseline_model=None):
    super().__init__(spec=GnnEvaluatorSpec(
        model=model, baseline_model=baseline_model, examples=examples, graph=graph,
        evaluation_config=evaluation_config,
        evaluation=channel.Channel(type=standard_artifacts.ModelEvaluation),
        blessing=channel.Channel(type=standard_artifacts.ModelBlessing)))
