"""GnnEvaluator's executor: scores the candidate on the eval and test splits, the baseline on
the eval split (if it can read this graph's subgraphs), and blesses on the eval split."""
import json
import os

from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from tfx_gnn.components import graph_io, publish
from tfx_gnn.components.gnn_evaluator.config import EvaluationConfig

METRICS_FILE = "metrics.json"
# As TFX's Evaluator: the eval split decides; the test split is reported beside it (and
# decides only where the examples have no eval split).
EVAL_SPLIT = "eval"
REPORTED_SPLITS = (EVAL_SPLIT, "test")


def task_of(model_artifact) -> str:
  return model_artifact.get_string_custom_property("task") or "root_node_multiclass"


def exported_epoch_of(model_artifact) -> dict:
  """The trainer's record of which epoch's weights it exported (absent for older models)."""
  return {k: model_artifact.get_int_custom_property(k)
          for k in ("exported_epoch", "epochs_trained") if model_artifact.has_custom_property(k)}


def record_blessing(blessing, model, baseline, blessed: bool, reasons: list[str],
                    incompatible: list[str], baseline_note: str) -> None:
  """The BLESSED / NOT_BLESSED file with its reasons, and TFX's blessing conventions (read by
  the Pusher and LatestBlessedModelStrategy)."""
  graph_io.write_text(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"),
                      "\n".join(reasons + ([baseline_note] if baseline_note else [])))
  blessing.set_int_custom_property("blessed", int(blessed))
  blessing.set_string_custom_property("current_model", model.uri)
  blessing.set_int_custom_property("current_model_id", model.id)
  if baseline is not None:
    blessing.set_string_custom_property("baseline_model", baseline.uri)
    blessing.set_int_custom_property("baseline_model_id", baseline.id)
    blessing.set_int_custom_property("baseline_compatible", int(not incompatible))
    blessing.set_string_custom_property("baseline_incompatibility", baseline_note)
  blessing.set_string_custom_property("reasons", "; ".join(reasons))


# On Kubeflow the pipeline runs kubeflow_executor.Executor, this one as a TFX Evaluator
# executor (see there); locally, this one, without TensorFlow Model Analysis.
@publish.atomic_outputs
class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    import tensorflow as tf
    from tfx_gnn.components.gnn_evaluator import evaluation
    model = artifact_utils.get_single_instance(input_dict["model"])
    baseline = (input_dict.get("baseline_model") or [None])[0]
    examples = artifact_utils.get_single_instance(input_dict["examples"])
    graph = artifact_utils.get_single_instance(input_dict["graph"])
    evaluation_out = artifact_utils.get_single_instance(output_dict["evaluation"])
    blessing = artifact_utils.get_single_instance(output_dict["blessing"])
    config = EvaluationConfig.model_validate_json(exec_properties["evaluation_config"])

    files = {s: graph_io.split_files(examples, s) for s in REPORTED_SPLITS}
    files = {s: f for s, f in files.items() if f}
    if not files:
      raise ValueError(f"examples {examples.uri} have neither an eval nor a test split to "
                       "evaluate on")
    decided_on = EVAL_SPLIT if EVAL_SPLIT in files else "test"
    schema = graph_io.read_schema_file(graph_io.subgraph_schema_path(examples.uri))
    label = graph_io.read_label(graph.uri)
    num_classes = label.num_classes if label else 2
    task = task_of(model)
    if model.has_custom_property("heads"):  # multi-task: every head gated on its own
      return self._evaluate_heads(model, baseline, files, schema, label, config, decided_on,
                                  evaluation_out, blessing)
    config = config.for_task(task)

    def outputs_of(model_artifact, split):
      """(labels, outputs) of the model on the split's examples."""
      if task_of(model_artifact) == "dgi":  # unsupervised: a linear probe on its embeddings
        return evaluation.embedding_probe(
            model_artifact.get_string_custom_property("embeddings_uri"), split,
            label.num_classes)
      location = model_artifact.get_string_custom_property("target_location") or "root"
      feature = (model_artifact.get_string_custom_property("target_feature")
                 or (label.feature if label else "label"))
      return evaluation.predict(
          path_utils.serving_model_path(model_artifact.uri), files[split], schema, label,
          target=(location, feature))

    splits, trivial = {}, {}
    for split in files:
      splits[split], trivial[split] = evaluation.evaluate_split(
          task, *outputs_of(model, split), num_classes, config.metric)

    # The baseline is scored here, on this run's eval split, so the comparison is fair even
    # when the data changed since it was blessed; unless it cannot read this run's subgraphs
    # (a feature or set it was trained with is gone): then the thresholds alone judge.
    baseline_metrics, incompatible = None, []
    if baseline is not None:
      if task_of(baseline) != task:
        incompatible = [f"the baseline is a {task_of(baseline)} model; this run trains "
                        f"{task}"]
      else:
        incompatible = evaluation.baseline_incompatibilities(
            path_utils.serving_model_path(baseline.uri), schema)
      if not incompatible:
        try:
          labels, outputs = outputs_of(baseline, decided_on)
          baseline_metrics = evaluation.task_metrics(task, labels, outputs, num_classes)
        except tf.errors.OpError as e:  # what the spec check did not foresee
          incompatible = [f"scoring it on this graph's subgraphs failed: {type(e).__name__}: "
                          f"{str(e).strip().splitlines()[0][:300]}"]
    baseline_note = ("; ".join(incompatible) + ": judged against the thresholds alone"
                     if incompatible else "")
    blessed, reasons = evaluation.bless(splits[decided_on], baseline_metrics, config,
                                        trivial[decided_on])
    required = evaluation.required_score(trivial[decided_on][config.metric], config.metric,
                                         config.min_margin_over_trivial)

    result = {
        "split": decided_on, "splits": splits, "trivial": trivial, "metric": config.metric,
        "thresholds": {**config.model_dump(exclude={"metric"}), "required_over_trivial": required,
                       "lower_is_better": config.metric in evaluation.LOWER_IS_BETTER},
        "candidate": splits[decided_on], "baseline": baseline_metrics,
        "baseline_model_uri": baseline.uri if baseline is not None else None,
        "baseline_compatible": (not incompatible) if baseline is not None else None,
        "baseline_incompatibility": baseline_note,
        "blessed": blessed, "reasons": reasons, **exported_epoch_of(model)}
    graph_io.write_text(os.path.join(evaluation_out.uri, METRICS_FILE),
                        json.dumps(result, indent=2))
    evaluation_out.set_string_custom_property("split", decided_on)
    for key, value in splits[decided_on].items():
      if isinstance(value, float):
        evaluation_out.set_float_custom_property(key, value)
    record_blessing(blessing, model, baseline, blessed, reasons, incompatible, baseline_note)
    # What decided, against what: the split, the metric, its value and the bars.
    blessing.set_string_custom_property("split", decided_on)
    blessing.set_string_custom_property("metric", config.metric)
    blessing.set_float_custom_property("value", splits[decided_on][config.metric])
    blessing.set_float_custom_property("trivial_baseline", trivial[decided_on][config.metric])
    blessing.set_float_custom_property("required_over_trivial", required)

  def _evaluate_heads(self, model, baseline, files, schema, label, config, decided_on,
                      evaluation_out, blessing):
    import tensorflow as tf
    from tfx_gnn.components.gnn_evaluator import evaluation
    heads = json.loads(model.get_string_custom_property("heads"))

    def outputs_of(model_artifact, split):
      return evaluation.predict_heads(path_utils.serving_model_path(model_artifact.uri),
                                      files[split], schema, label.node_set, heads)

    outputs = {split: outputs_of(model, split) for split in files}
    baseline_outputs, incompatible = None, []
    if baseline is not None:
      if not baseline.has_custom_property("heads") or {
          n: h["type"] for n, h in json.loads(baseline.get_string_custom_property(
              "heads")).items()} != {n: h["type"] for n, h in heads.items()}:
        incompatible = [f"the baseline is a {task_of(baseline)} model, not one with this "
                        f"run's heads ({', '.join(heads)})"]
      else:
        incompatible = evaluation.baseline_incompatibilities(
            path_utils.serving_model_path(baseline.uri), schema)
      if not incompatible:
        try:
          baseline_outputs = outputs_of(baseline, decided_on)
        except (tf.errors.OpError, KeyError) as e:
          incompatible = [f"scoring it on this graph's subgraphs failed: {type(e).__name__}: "
                          f"{str(e).strip().splitlines()[0][:300]}"]
    baseline_note = ("; ".join(incompatible) + ": judged against the thresholds alone"
                     if incompatible else "")
    result = evaluation.evaluate_heads(heads, outputs, config, decided_on, baseline_outputs)
    result.update({
        "baseline_model_uri": baseline.uri if baseline is not None else None,
        "baseline_compatible": (not incompatible) if baseline is not None else None,
        "baseline_incompatibility": baseline_note, **exported_epoch_of(model)})
    graph_io.write_text(os.path.join(evaluation_out.uri, METRICS_FILE),
                        json.dumps(result, indent=2))
    evaluation_out.set_string_custom_property("split", decided_on)
    for key, value in result["candidate"].items():
      if isinstance(value, float):
        evaluation_out.set_float_custom_property(key, value)
    blessed, reasons = result["blessed"], result["reasons"]
    record_blessing(blessing, model, baseline, blessed, reasons, incompatible, baseline_note)
    blessing.set_string_custom_property("split", decided_on)
    # Each head's metric, value and bars (`<head>/value` ...); `metric` lists them all.
    blessing.set_string_custom_property("metric", ", ".join(
        f"{name}/{t['metric']}" for name, t in result["tasks"].items()))
    for name, t in result["tasks"].items():
      blessing.set_float_custom_property(f"{name}/value", t["candidate"][t["metric"]])
      blessing.set_float_custom_property(f"{name}/trivial_baseline",
                                         t["trivial"][decided_on][t["metric"]])
      blessing.set_float_custom_property(f"{name}/required_over_trivial",
                                         t["thresholds"]["required_over_trivial"])
      blessing.set_int_custom_property(f"{name}/blessed", int(t["blessed"]))
