"""`TaskConfig` -> the Runner's task(s), loss weights and exporters (tensorflow_gnn.runner).

Supervised tasks read the label of the subgraph's root node. Deep Graph Infomax
(`contrastive_losses.DeepGraphInfomaxTask`) needs no label; mixed with classification, the
label is first moved into a `_readout` feature (a label_fn cannot be shared by two tasks) and
the classification task reads it by `label_feature_name`.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import tensorflow as tf
import tensorflow_gnn as tfgnn
from tensorflow_gnn import runner
from tensorflow_gnn.models import contrastive_losses

from components import graph_io
from pipelines.config import TaskConfig

OUTPUT_NAME = "logits"  # classification and regression models' serving output
EMBEDDINGS_OUTPUT = "embeddings"  # unsupervised (DGI) models' serving output
# DeepGraphInfomaxTask names its root-node representation layer like this by default.
DGI_REPRESENTATIONS = "clean_representations"


class TaskError(ValueError):
  """A task config that does not fit the graph's label."""


@dataclasses.dataclass
class Tasks:
  task: object  # a runner.Task or a mapping of names to tasks
  loss_weights: Optional[dict]
  feature_processors: list
  exclude_features: list  # features of the root node set the model must not see
  unsupervised: bool


def _check_label(cfg: TaskConfig, label: Optional[graph_io.Label]) -> graph_io.Label:
  if label is None:
    raise TaskError(f"task.type: {cfg.type} needs a labelled node set; the graph has none "
                    "(use task.type: dgi to train without labels)")
  if cfg.type == "root_node_binary" and label.num_classes != 2:
    raise TaskError(f"task.type: root_node_binary needs a label with 2 classes; "
                    f"{label.node_set}.{label.feature} has {label.num_classes}")
  return label


def make_tasks(cfg: TaskConfig, label: graph_io.Label, seed: int = 0) -> Tasks:
  root = label.node_set
  label_fn = runner.RootNodeLabelFn(root, feature_name=label.feature)
  if cfg.type == "dgi":
    dgi = contrastive_losses.DeepGraphInfomaxTask(root, seed=seed)
    return Tasks(dgi, None, [], [label.feature], unsupervised=True)
  _check_label(cfg, label)
  if cfg.type == "root_node_multiclass":
    if cfg.dgi_loss_weight:
      # Multi-task: the label goes into the `_readout` node set before either task sees the
      # graph; DGI's corruption then cannot shuffle it, and the model never reads it.
      def label_into_readout(graph: tfgnn.GraphTensor) -> tfgnn.GraphTensor:
        graph = tfgnn.keras.layers.AddReadoutFromFirstNode("root", node_set_name=root)(graph)
        return tfgnn.structured_readout_into_feature(
            graph, "root", feature_name=label.feature, new_feature_name="label",
            remove_input_feature=True)
      task = {
          "classification": runner.RootNodeMulticlassClassification(
              root, num_classes=label.num_classes, label_feature_name="label"),
          "dgi": contrastive_losses.DeepGraphInfomaxTask(root, seed=seed)}
      return Tasks(task, {"classification": 1.0, "dgi": cfg.dgi_loss_weight},
                   [label_into_readout], [], unsupervised=False)
    return Tasks(runner.RootNodeMulticlassClassification(
        root, num_classes=label.num_classes, label_fn=label_fn), None, [], [], False)
  if cfg.type == "root_node_binary":
    return Tasks(runner.RootNodeBinaryClassification(root, label_fn=label_fn),
                 None, [], [], False)
  if cfg.type == "root_node_regression":
    cls = {"mse": runner.RootNodeMeanSquaredError,
           "mae": runner.RootNodeMeanAbsoluteError}[cfg.regression_loss]
    return Tasks(cls(root, label_fn=_float_label(label_fn)), None, [], [], False)
  raise TaskError(f"task.type: unknown task {cfg.type!r}")


def _float_label(label_fn):
  """Regression targets as float32 (labels are stored as integers)."""

  def fn(graph):
    graph, y = label_fn(graph)
    return graph, tf.cast(y, tf.float32)

  return fn


def exporters(tasks: Tasks) -> list:
  """The serving model: task outputs for supervised tasks; for DGI the root node's clean
  representation (its embedding) as `embeddings`."""
  if tasks.unsupervised:
    return [runner.SubmoduleExporter(DGI_REPRESENTATIONS, output_names=EMBEDDINGS_OUTPUT,
                                     include_preprocessing=True)]
  if isinstance(tasks.task, dict):
    # Multi-task: serve the classification head only (DGI feeds two graphs).
    return [runner.SubmoduleExporter("classification_logits", output_names=OUTPUT_NAME,
                                     include_preprocessing=True)]
  return [runner.KerasModelExporter(output_names=OUTPUT_NAME)]
