"""GnnTrainer: trains a GNN with TF-GNN's Runner on sampled subgraphs.

Batch mode (default): the train split of `examples`. Dynamic mode (`sampling_config` with
`mode: dynamic`): fresh train subgraphs sampled in memory from `graph` every epoch
(`dynamic.py`); `examples` then supply the fixed eval split and the subgraph schema.

Outputs a `Model` (`Format-Serving/`: a SavedModel whose `serving_default` takes serialized
GraphTensor tf.Examples and returns `logits`, or `embeddings` for task dgi, whose Model also
holds `embeddings.parquet`: the root embedding of every sampled subgraph, per split) and a
`ModelRun` (checkpoints and TensorBoard summaries). Parameters, per-epoch metrics and the
model are logged to MLflow; the run id is the Model's `mlflow_run_id` custom property.

Each `*_config` argument is its config section: the pydantic model (e.g. `GATv2Options(...)`
for `model_config`), a dict or a JSON string, validated here and passed to the executor as
JSON. Usage:
  trainer = GnnTrainer(examples=sampler.outputs["examples"], graph=ingest.outputs["graph"],
                       model_config=GATv2Options(num_heads=4), task_config=config.task,
                       trainer_config={"epochs": 5}, sampling_config=config.sampling,
                       tracking_uri=config.tracking_uri, experiment=config.experiment)

Your own model, as TFX's Trainer takes a module file: `module_file` (a .py file) or
`module_path` (an importable module) defines

  def model_fn(graph_tensor_spec, *, readout_node_sets, model_config) -> tf.keras.layers.Layer

which returns a Keras layer (or model) that maps a GraphTensor to a GraphTensor: the model body
after the input layer. `graph_tensor_spec` is the spec of the initial states (every node set
has a `hidden_state`, from the configured input layer; labels are never in it);
`readout_node_sets` are the node sets whose states the task reads after the body (None: all,
for graph-level tasks); `model_config` is the CustomModelOptions (template `custom`: the
shared options such as `units` and `num_rounds`). The task's head, the exporters and the
integrated-gradients signature are the trainer's, as for a template. E.g.:

  def model_fn(graph_tensor_spec, *, readout_node_sets, model_config):
    inputs = graph = tf.keras.layers.Input(type_spec=graph_tensor_spec)
    for i in range(model_config.num_rounds):
      graph = tfgnn.keras.layers.GraphUpdate(node_sets={
          "paper": tfgnn.keras.layers.NodeSetUpdate(
              {"cites": tfgnn.keras.layers.SimpleConv(
                  tf.keras.layers.Dense(model_config.units, "relu"), "mean",
                  receiver_tag=tfgnn.SOURCE)},
              tfgnn.keras.layers.NextStateFromConcat(
                  tf.keras.layers.Dense(model_config.units)))}, name=f"my_round_{i}")(graph)
    return tf.keras.Model(inputs, graph)

  trainer = GnnTrainer(..., module_file="my_gnn.py", model_config={"template": "custom",
                                                                   "units": 32})

In a run config: `model: {template: custom, module_file: my_gnn.py, units: 32}` (the path
relative to the config file). As with TFX's Trainer, a module file is packaged into a wheel
under the pipeline root whose version is a hash of the .py files beside it, so an edited
module is a changed execution property (never a cache hit); a `module_path` is taken as it is.
"""
from tfx.components.util import udf_utils
from tfx.dsl.io import fileio
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, component_spec, standard_artifacts

from tfx_gnn.components import config_base, types
from tfx_gnn.components.gnn_trainer import executor
from tfx_gnn.components.gnn_trainer.config import (ModelConfig, TaskConfig, TasksConfig,
                                                    TrainerConfig)
from tfx_gnn.components.subgraph_sampler.config import SamplingConfig

MODULE_FILE_KEY = "module_file"
MODULE_PATH_KEY = "module_path"


class GnnTrainerSpec(component_spec.ComponentSpec):
  PARAMETERS = {
      "model_config": component_spec.ExecutionParameter(type=str),  # ModelConfig JSON
      "trainer_config": component_spec.ExecutionParameter(type=str),  # TrainerConfig JSON
      "task_config": component_spec.ExecutionParameter(type=str, optional=True),  # TaskConfig
      # TasksConfig JSON (name -> task): several named tasks trained together, instead.
      "tasks_config": component_spec.ExecutionParameter(type=str, optional=True),
      # SamplingConfig JSON: with `mode: dynamic` the trainer samples its train subgraphs from
      # the Graph artifact every epoch (the Examples then hold only eval and test).
      "sampling_config": component_spec.ExecutionParameter(type=str, optional=True),
      # The user module of template `custom` (TFX's Trainer keys); a module file becomes a
      # `module_path` into its packaged wheel when the pipeline runs.
      MODULE_FILE_KEY: component_spec.ExecutionParameter(type=str, optional=True),
      MODULE_PATH_KEY: component_spec.ExecutionParameter(type=str, optional=True),
      "memory_limit_gb": component_spec.ExecutionParameter(type=float, optional=True),
      "tracking_uri": component_spec.ExecutionParameter(type=str),
      "experiment": component_spec.ExecutionParameter(type=str),
  }
  INPUTS = {
      "examples": component_spec.ChannelParameter(type=standard_artifacts.Examples),
      "graph": component_spec.ChannelParameter(type=types.Graph),
      # GnnTuner's best settings: override the model, trainer and sampling configs.
      "hyperparameters": component_spec.ChannelParameter(
          type=standard_artifacts.HyperParameters, optional=True),
  }
  OUTPUTS = {
      "model": component_spec.ChannelParameter(type=standard_artifacts.Model),
      "model_run": component_spec.ChannelParameter(type=standard_artifacts.ModelRun),
  }


def _user_module(model, module_file, module_path):
  """The module of template `custom`: the arguments', else the model config's."""
  given = (module_file or None, module_path or None)
  configured = (getattr(model, "module_file", None), getattr(model, "module_path", None))
  if any(given) and model.template != "custom":
    raise ValueError(f"GnnTrainer: a user module replaces the model template; model_config "
                     f"has template {model.template!r} (use template 'custom', "
                     f"CustomModelOptions, for the shared options)")
  if any(given) and any(configured) and given != configured:
    raise ValueError(f"GnnTrainer: two user modules, {given} in the arguments and "
                     f"{configured} in model_config")
  module = given if any(given) else configured
  if model.template == "custom" and sum(map(bool, module)) != 1:
    raise ValueError("GnnTrainer: model template 'custom' needs exactly one of module_file "
                     "(a .py file) or module_path (an importable module) with a model_fn")
  if module[0] and not fileio.exists(module[0]):
    raise ValueError(f"GnnTrainer: module_file {module[0]!r} does not exist")
  return module


class GnnTrainer(base_component.BaseComponent):
  """`tensorflow_gnn.runner.run` with the configured task(s) and a model-zoo template or a
  user module's `model_fn` (see the module docstring)."""
  SPEC_CLASS = GnnTrainerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, examples, graph, tracking_uri: str, experiment: str,
               model_config=None, trainer_config=None, task_config=None,
               sampling_config=None, tasks_config=None, module_file: str | None = None,
               module_path: str | None = None, memory_limit_gb: float | None = None,
               hyperparameters=None):
    if model_config is None:  # a user module alone: template custom
      model_config = {"template": "custom"} if module_file or module_path else {}
    model = config_base.validate(ModelConfig, model_config)
    module_file, module_path = _user_module(model, module_file, module_path)
    super().__init__(spec=GnnTrainerSpec(
        examples=examples, graph=graph,
        model_config=config_base.to_json(ModelConfig, model),
        trainer_config=config_base.to_json(TrainerConfig, trainer_config or {}),
        task_config=config_base.to_json(TaskConfig, task_config or {}),
        tasks_config=(None if not tasks_config else
                      config_base.to_json(TasksConfig, tasks_config)),
        sampling_config=(None if sampling_config is None else
                         config_base.to_json(SamplingConfig, sampling_config)),
        module_file=module_file, module_path=module_path,
        tracking_uri=tracking_uri, experiment=experiment, memory_limit_gb=memory_limit_gb,
        hyperparameters=hyperparameters,
        model=channel.Channel(type=standard_artifacts.Model),
        model_run=channel.Channel(type=standard_artifacts.ModelRun)))
    if module_file and udf_utils.should_package_user_modules():
      # As TFX's Trainer: the file becomes a wheel named by its sources' hash when the
      # pipeline runs or compiles, and `module_path` points into it.
      udf_utils.add_user_module_dependency(self, MODULE_FILE_KEY, MODULE_PATH_KEY)
