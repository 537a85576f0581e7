"""GnnEvaluator's executor: evaluates candidate and baseline on the same test split, blesses."""
import json
import os

from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from tfx_gnn.components import graph_io, publish
from tfx_gnn.components.gnn_evaluator.config import EvaluationConfig

METRICS_FILE = "metrics.json"
EVAL_SPLIT = "test"


# On Kubeflow the pipeline runs kubeflow_executor.Executor, this one as a TFX Evaluator
# executor (see there); locally, this one, without TensorFlow Model Analysis.
@publish.atomic_outputs
class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    from tfx_gnn.components.gnn_evaluator import evaluation  # pylint: disable=g-import-not-at-top
    model = artifact_utils.get_single_instance(input_dict["model"])
    baseline = (input_dict.get("baseline_model") or [None])[0]
    examples = artifact_utils.get_single_instance(input_dict["examples"])
    graph = artifact_utils.get_single_instance(input_dict["graph"])
    evaluation_out = artifact_utils.get_single_instance(output_dict["evaluation"])
    blessing = artifact_utils.get_single_instance(output_dict["blessing"])
    config = EvaluationConfig.model_validate_json(exec_properties["evaluation_config"])

    files = graph_io.split_files(examples, EVAL_SPLIT)
    if not files:
      raise ValueError(f"examples {examples.uri} have no {EVAL_SPLIT!r} split to evaluate on")
    schema = graph_io.read_schema_file(graph_io.subgraph_schema_path(examples.uri))
    label = graph_io.read_label(graph.uri)

    def metrics_of(model_artifact):
      task = model_artifact.get_string_custom_property("task") or "root_node_multiclass"
      if task == "dgi":  # unsupervised: a linear probe on the embeddings the trainer wrote
        return evaluation.embedding_probe_metrics(
            model_artifact.get_string_custom_property("embeddings_uri"), EVAL_SPLIT,
            label.num_classes)
      location = model_artifact.get_string_custom_property("target_location") or "root"
      feature = (model_artifact.get_string_custom_property("target_feature")
                 or (label.feature if label else "label"))
      labels, logits = evaluation.predict(
          path_utils.serving_model_path(model_artifact.uri), files, schema, label,
          target=(location, feature))
      return evaluation.task_metrics(task, labels, logits, label.num_classes if label else 2)

    candidate = metrics_of(model)

    def task_of(model_artifact):
      return model_artifact.get_string_custom_property("task") or "root_node_multiclass"

    if baseline is not None and task_of(baseline) != task_of(model):
      baseline = None  # a model of another task is no baseline: its metrics differ
    # The baseline is evaluated here, on this run's test split, so the comparison is fair
    # even when the data changed since the baseline was blessed.
    baseline_metrics = metrics_of(baseline) if baseline is not None else None
    blessed, reasons = evaluation.bless(candidate, baseline_metrics, config)

    result = {"split": EVAL_SPLIT, "metric": config.metric, "candidate": candidate,
              "baseline": baseline_metrics, "blessed": blessed, "reasons": reasons,
              "baseline_model_uri": baseline.uri if baseline is not None else None}
    graph_io.write_text(os.path.join(evaluation_out.uri, METRICS_FILE),
                        json.dumps(result, indent=2))
    for key, value in candidate.items():
      if isinstance(value, float):
        evaluation_out.set_float_custom_property(key, value)
    graph_io.write_text(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"),
                        "\n".join(reasons))
    # TFX's blessing conventions (read by the Pusher and LatestBlessedModelStrategy).
    blessing.set_int_custom_property("blessed", int(blessed))
    blessing.set_string_custom_property("current_model", model.uri)
    blessing.set_int_custom_property("current_model_id", model.id)
    if baseline is not None:
      blessing.set_string_custom_property("baseline_model", baseline.uri)
      blessing.set_int_custom_property("baseline_model_id", baseline.id)
    blessing.set_string_custom_property("reasons", "; ".join(reasons))
