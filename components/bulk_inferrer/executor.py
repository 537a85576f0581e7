"""GnnBulkInferrer's executor: reads the pushed model and its serving spec, scores, logs."""
import json
import os
import tempfile

from absl import logging
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils

from tfx_gnn.components import node_scoring, publish, tracking
from tfx_gnn.components.bulk_inferrer import bulk_inference
from tfx_gnn.components.bulk_inferrer.config import BulkInferenceConfig

MLFLOW_DIR = "bulk_inference"


@publish.atomic_outputs
class Executor(base_beam_executor.BaseBeamExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    pushed = artifact_utils.get_single_instance(input_dict["pushed_model"])
    graph = artifact_utils.get_single_instance(input_dict["graph"])
    out = artifact_utils.get_single_instance(output_dict["predictions"])
    config = BulkInferenceConfig.model_validate_json(exec_properties["inference_config"])
    if not pushed.get_int_custom_property("pushed"):
      logging.info("GnnBulkInferrer: the model was not pushed (not blessed); nothing scored")
      out.set_int_custom_property("inferred", 0)
      return
    spec_json = pushed.get_string_custom_property("serving_spec")
    if not spec_json:
      raise ValueError(f"pushed model {pushed.uri} has no serving_spec: the Pusher records one "
                       "for root-node models given the sampler's examples and the graph")
    spec = node_scoring.ServingSpec.from_property(spec_json)
    if spec.graph_dir != graph.uri:
      raise ValueError(f"pushed model {pushed.uri} samples from graph {spec.graph_dir}, "
                       f"not from this pipeline's graph {graph.uri}")
    summary = bulk_inference.run(self._make_beam_pipeline, model_dir=pushed.uri, spec=spec,
                                 config=config, out_dir=out.uri)
    logging.info("GnnBulkInferrer: %s", summary)
    out.set_int_custom_property("inferred", 1)
    out.set_int_custom_property("num_nodes", summary["num_nodes"])
    out.set_string_custom_property("node_set", spec.node_set)
    out.set_string_custom_property("selection", summary["selection"])
    out.set_string_custom_property("model_version",
                                   pushed.get_string_custom_property("pushed_version"))
    # Into the trainer's MLflow run: these are that run's model's predictions.
    run_id = pushed.get_string_custom_property("mlflow_run_id")
    if run_id:
      run = tracking.Run.attach(exec_properties["tracking_uri"], run_id)
      run.log_metrics({"bulk_inference.num_nodes": summary["num_nodes"],
                       "bulk_inference.nodes_per_s": summary["nodes_per_s"]})
      with tempfile.TemporaryDirectory() as tmp:  # a local copy: out.uri may be remote
        import tensorflow as tf
        local = os.path.join(tmp, bulk_inference.PREDICTIONS_FILE)
        tf.io.gfile.copy(os.path.join(out.uri, bulk_inference.PREDICTIONS_FILE), local)
        with open(os.path.join(tmp, "summary.json"), "w") as f:
          json.dump(summary, f, indent=2)
        run.log_artifacts(tmp, MLFLOW_DIR)
      run.set_tags({"bulk_inference.uri": publish.final_path(out.uri)})
      out.set_string_custom_property("mlflow_run_id", run_id)
