"""Attribution's executor: reads the model and the test split, attributes, writes, logs."""
import os
import tempfile

import tensorflow as tf
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from tfx_gnn.components import graph_io, tracking
from tfx_gnn.components.attribution.config import AttributionConfig
from tfx_gnn.components.gnn_trainer.config import IntegratedGradientsConfig

SPLIT = "test"
MLFLOW_DIR = "attribution"


def run_attribution(model_dir: str, split_file_list, graph_uri: str,
                    config: AttributionConfig, ig: IntegratedGradientsConfig,
                    out_dir: str) -> dict:
  """The whole component without TFX: attribute, summarize, write; returns summary.json."""
  from tfx_gnn.components.attribution import attribution, report
  label = graph_io.read_label(graph_uri)
  if label is None:
    raise ValueError(f"graph {graph_uri} has no label: nothing to attribute predictions to")
  subgraphs = attribution.attribute(
      model_dir, split_file_list, label.node_set, steps=ig.steps,
      num_subgraphs=config.num_subgraphs, batch_size=config.batch_size,
      hop_edges=config.hop_edges, time_budget_s=config.time_budget_s)
  summary = attribution.summarize(subgraphs)
  settings = {"split": SPLIT, "steps": ig.steps,
              "counterfactual": "random uniform" if ig.random_counterfactual else "zeros",
              "hop_edges": config.hop_edges, "label_node_set": label.node_set}
  return report.write(out_dir, summary, subgraphs, settings, config.drawn_subgraphs)


class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    from tfx_gnn.components.attribution import report
    model = artifact_utils.get_single_instance(input_dict["model"])
    examples = artifact_utils.get_single_instance(input_dict["examples"])
    graph = artifact_utils.get_single_instance(input_dict["graph"])
    out = artifact_utils.get_single_instance(output_dict["attributions"])
    config = AttributionConfig.model_validate_json(exec_properties["attribution_config"])
    ig = IntegratedGradientsConfig.model_validate_json(
        exec_properties["integrated_gradients_config"])
    files = graph_io.split_files(examples, SPLIT)
    if not files:
      raise ValueError(f"examples {examples.uri} have no {SPLIT!r} split to attribute on")
    summary = run_attribution(path_utils.serving_model_path(model.uri), files,
                              graph.uri, config, ig, out.uri)
    out.set_int_custom_property("num_subgraphs", summary["num_subgraphs"])
    if summary["top_features"]:
      top = summary["top_features"][0]
      out.set_string_custom_property("top_feature",
                                     f"{top['node_set']}.{top['feature']}[{top['index']}]")
    # Into the trainer's MLflow run: the attributions describe that run's model.
    run_id = model.get_string_custom_property("mlflow_run_id")
    if run_id:
      run = tracking.Run.attach(exec_properties["tracking_uri"], run_id)
      run.log_metrics({f"attribution.share.{r['node_set']}": r["share"]
                       for r in summary["node_sets"]})
      # From a local copy: the artifact's uri may be gs://, MLflow uploads local files.
      with tempfile.TemporaryDirectory() as tmp:
        for name in (report.REPORT_FILE, report.SUMMARY_FILE):
          tf.io.gfile.copy(os.path.join(out.uri, name), os.path.join(tmp, name))
        run.log_artifacts(tmp, MLFLOW_DIR)
      run.set_tags({"attribution.uri": out.uri})
      out.set_string_custom_property("mlflow_run_id", run_id)
