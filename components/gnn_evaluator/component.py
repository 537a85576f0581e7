"""GnnEvaluator: metrics on the eval split (which decides, as in TFX's Evaluator) and the test
split, and a blessing: the model must beat the trivial predictor on the same examples by
`evaluation.min_margin_over_trivial` and not regress against the latest blessed model.

The blessing follows TFX's conventions, so TFX's Pusher and LatestBlessedModelStrategy
understand it: a `BLESSED` or `NOT_BLESSED` file, custom properties `blessed` (1/0),
`current_model`, `current_model_id`, `baseline_model`, `baseline_model_id`; and ours:
`split` (which decided), `metric`, `value`, `trivial_baseline`, `required_over_trivial`,
`reasons`, and `baseline_compatible` (0: the latest blessed model cannot read this run's
subgraphs, `baseline_incompatibility` says why; it was not scored).

Usage (`evaluation_config`: an EvaluationConfig, a dict or a JSON string):
  evaluator = GnnEvaluator(model=trainer.outputs["model"],
                           baseline_model=resolver.outputs["model"],
                           examples=sampler.outputs["examples"], graph=ingest.outputs["graph"],
                           evaluation_config={"metric": "accuracy", "lower_bound": 0.5})
"""
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, component_spec, standard_artifacts

from tfx_gnn.components import config_base, types
from tfx_gnn.components.gnn_evaluator import executor
from tfx_gnn.components.gnn_evaluator.config import EvaluationConfig


class GnnEvaluatorSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      # The `evaluation` section of the run config (EvaluationConfig), JSON.
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


class GnnEvaluator(base_component.BaseComponent):
  """The task's metrics on the eval and test splits; blesses on the eval split against the
  trivial predictor, the thresholds and a baseline.

  `kubeflow=True` runs it as a TFX Evaluator executor (kubeflow_executor.py), whose blessing
  Kubeflow's "latest blessed model" resolver can match."""
  SPEC_CLASS = GnnEvaluatorSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, model, examples, graph, evaluation_config=None, baseline_model=None,
               kubeflow: bool = False):
    custom_executor_spec = None
    if kubeflow:
      from tfx_gnn.components.gnn_evaluator import kubeflow_executor
      custom_executor_spec = executor_spec.ExecutorClassSpec(kubeflow_executor.Executor)
    super().__init__(spec=GnnEvaluatorSpec(
        model=model, baseline_model=baseline_model, examples=examples, graph=graph,
        evaluation_config=config_base.to_json(EvaluationConfig, evaluation_config or {}),
        evaluation=channel.Channel(type=standard_artifacts.ModelEvaluation),
        blessing=channel.Channel(type=standard_artifacts.ModelBlessing)),
        custom_executor_spec=custom_executor_spec)
