"""Unit tests of the components' plain logic: sampling spec, metrics and blessing, the
pusher's publish, the config and the CLI's overrides."""
import os
import sys

import numpy as np
import pytest

from tfx_gnn.components import graph_io
from tfx_gnn.pipelines import cli
from tfx_gnn.pipelines import config as config_lib


def small_graph() -> graph_io.Graph:
  ids = np.array(["p0", "p1", "p2"], dtype=object)
  authors = np.array(["a0", "a1"], dtype=object)
  writes = graph_io.EdgeSet("author", "paper", authors[[0, 1, 1]], ids[[0, 1, 2]])
  return graph_io.Graph(
      node_sets={"paper": graph_io.NodeSet(ids, {"feat": np.ones([3, 2], np.float32),
                                                 "label": np.array([0, 1, 0])}),
                 "author": graph_io.NodeSet(authors)},
      edge_sets={"cites": graph_io.EdgeSet("paper", "paper", ids[[0, 1]], ids[[1, 2]]),
                 "writes": writes,
                 "written": graph_io.EdgeSet("paper", "author", writes.targets, writes.sources,
                                             reverse_of="writes")},
      splits={"train": ids[:2], "test": ids[2:]},
      label=graph_io.Label("paper", "label", 2))


# ------------------------------------------------------------------ sampling spec
def test_sampling_spec_follows_fanouts_hop_by_hop():
  from tfx_gnn.components.subgraph_sampler import sampling
  schema = graph_io.build_schema(small_graph())
  spec = sampling.build_sampling_spec(schema, "paper", {"cites": 5, "written": 3, "writes": 2},
                                      hops=2)
  ops = [(op.edge_set_name, op.sample_size) for op in spec.sampling_ops]
  # Hop 1 from paper: cites and written; hop 2 from paper (via cites): cites, written;
  # from author (via written): writes.
  assert sorted(ops) == sorted([("cites", 5), ("written", 3), ("cites", 5), ("written", 3),
                                ("writes", 2)])
  assert {op.strategy for op in spec.sampling_ops} == {1}  # RANDOM_UNIFORM
  assert spec.seed_op.node_set_name == "paper"


def test_sampling_spec_errors_name_the_sets():
  from tfx_gnn.components.subgraph_sampler import sampling
  schema = graph_io.build_schema(small_graph())
  with pytest.raises(sampling.SamplingSpecError, match="unknown edge set.*'citez'"):
    sampling.build_sampling_spec(schema, "paper", {"citez": 2}, hops=1)
  with pytest.raises(sampling.SamplingSpecError, match="seed node set 'venue'"):
    sampling.build_sampling_spec(schema, "venue", {"cites": 2}, hops=1)
  with pytest.raises(sampling.SamplingSpecError, match="no edge set leaves.*'paper'"):
    sampling.build_sampling_spec(schema, "paper", {"writes": 2}, hops=1)


# ------------------------------------------------------------------ metrics and blessing
def test_classification_metrics():
  from tfx_gnn.components.gnn_evaluator import evaluation
  labels = np.array([0, 0, 1, 1, 2])
  logits = np.eye(3)[[0, 1, 1, 1, 0]]
  m = evaluation.classification_metrics(labels, logits, 3)
  assert m["accuracy"] == pytest.approx(3 / 5)
  assert m["micro_f1"] == m["accuracy"]
  # per-class F1: class 0: 2*1/(2+2)=0.5, class 1: 2*2/(3+2)=0.8, class 2: 0.
  assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
  assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_blessing_thresholds():
  from tfx_gnn.components.gnn_evaluator import evaluation
  cfg = config_lib.EvaluationConfig(metric="accuracy", lower_bound=0.5, max_regression=0.01)
  trivial = {"accuracy": 0.25, "predictor": "the majority class"}
  assert evaluation.bless({"accuracy": 0.8}, None, cfg, trivial) == (True, [])
  assert evaluation.bless({"accuracy": 0.795}, {"accuracy": 0.8}, cfg, trivial)[0]
  blessed, reasons = evaluation.bless({"accuracy": 0.7}, {"accuracy": 0.8}, cfg, trivial)
  assert not blessed and "worse than the baseline" in reasons[0]
  blessed, reasons = evaluation.bless({"accuracy": 0.4}, None, cfg, trivial)
  assert not blessed and "below the lower bound" in reasons[0]


# ------------------------------------------------------------------ pusher
def test_publish_is_versioned_and_leaves_no_partial_directory(tmp_path):
  from tfx_gnn.components.pusher import executor
  model = tmp_path / "model"
  (model / "variables").mkdir(parents=True)
  (model / "saved_model.pb").write_bytes(b"pb")
  (model / "variables" / "v.data").write_bytes(b"x" * 1000)
  serving = tmp_path / "serving"
  path1, v1, new1 = executor.publish(str(model), str(serving))
  path2, v2, new2 = executor.publish(str(model), str(serving))
  assert new1 and new2
  assert int(v2) > int(v1)  # two pushes in the same second keep distinct versions
  assert sorted(os.listdir(serving)) == sorted([v1, v2])  # no staging directory left
  assert (serving / v1 / "variables" / "v.data").read_bytes() == b"x" * 1000
  assert path1 == str(serving / v1)
  # The model already blessed and served (an unchanged rerun): the latest version is reused
  # when it is byte-identical, and a changed model still gets its own version.
  assert executor.publish(str(model), str(serving), reuse_latest=True) == (path2, v2, False)
  (model / "variables" / "v.data").write_bytes(b"y" * 1000)
  path3, v3, new3 = executor.publish(str(model), str(serving), reuse_latest=True)
  assert new3 and int(v3) > int(v2)


# ------------------------------------------------------------------ config and CLI
def test_cli_overrides_are_parsed_as_yaml():
  assert cli.parse_overrides(["trainer.epochs=3", "model.features_only=true",
                              "pipeline.name=x"]) == {
      "trainer": {"epochs": 3}, "model": {"features_only": True}, "pipeline": {"name": "x"}}
  with pytest.raises(config_lib.ConfigError, match="KEY=VALUE"):
    cli.parse_overrides(["trainer.epochs"])


def test_config_errors_name_file_and_key(tmp_path):
  path = tmp_path / "c.yaml"
  path.write_text("data: {synthetic: {num_papers: -1}}\nsampling: {fanouts: {cites: 2}}\n")
  with pytest.raises(config_lib.ConfigError) as info:
    config_lib.load_config(str(path))
  assert str(path) in str(info.value)
  assert "data.synthetic.num_papers" in str(info.value)
  path.write_text("data: {}\nsampling: {fanouts: {cites: 2}}\n")
  with pytest.raises(config_lib.ConfigError, match="exactly one of synthetic, tables"):
    config_lib.load_config(str(path))
  with pytest.raises(config_lib.ConfigError, match="not found"):
    config_lib.load_config(str(tmp_path / "missing.yaml"))
  # No validated epoch means no best weights for the Runner to export: refused up front.
  path.write_text("data: {synthetic: {}}\nsampling: {fanouts: {cites: 2}}\n"
                  "trainer: {epochs: 1, validation_freq: 5}\n")
  with pytest.raises(config_lib.ConfigError, match=r"trainer: .*validation_freq 5 > epochs 1"):
    config_lib.load_config(str(path))


def test_shipped_configs_are_valid():
  configs = os.path.join(os.path.dirname(__file__), "..", "pipelines", "configs")
  names = sorted(n for n in os.listdir(configs) if n.endswith(".yaml"))
  assert "mag.yaml" in names
  for name in names:
    config = config_lib.load_config(os.path.join(configs, name))
    # Graph-level tasks take whole graphs: nothing to sample.
    sampled = config.task.level != "graph"
    assert bool(config.sampling.fanouts or config.sampling.spec_text) == sampled, name


def test_every_mt_albis_option_is_configurable_and_passed_through(monkeypatch):
  import inspect
  import tensorflow_gnn as tfgnn
  from tensorflow_gnn.models import mt_albis
  from tfx_gnn.components.gnn_trainer import config as trainer_config
  from tfx_gnn.components.gnn_trainer import models
  params = set(inspect.signature(mt_albis.MtAlbisGraphUpdate).parameters)
  # MtAlbisOptions' own options (beyond the input layer and the rounds every template shares)
  # plus the shared state options are exactly MtAlbis' arguments, less what the trainer sets.
  shared = set(trainer_config.ModelOptions.model_fields)
  # edge_features (per edge set) become the edges' states, which edge_feature_name reads.
  own = set(trainer_config.MtAlbisOptions.model_fields) - shared - {"last_round_node_sets",
                                                                   "edge_features"}
  set_by_trainer = {"receiver_tag", "node_set_names", "edge_feature_name", "kernel_initializer"}
  assert own | {"units", "state_dropout_rate"} == params - set_by_trainer
  # ... and each reaches MtAlbisGraphUpdate with its configured (here non-default) value.
  options = {"units": 6, "message_dim": 5, "attention_type": "gat_v2",
             "attention_edge_set_names": ["cites"], "attention_num_heads": 3,
             "simple_conv_reduce_type": "sum", "simple_conv_use_receiver_state": False,
             "state_dropout_rate": 0.1, "edge_dropout_rate": 0.2, "l2_regularization": 0.01,
             "normalization_type": "none", "batch_normalization_momentum": 0.9,
             "next_state_type": "residual", "edge_set_combine_type": "sum"}
  assert set(options) == own | {"units", "state_dropout_rate"}
  seen = []
  real = mt_albis.MtAlbisGraphUpdate
  monkeypatch.setattr(models.mt_albis, "MtAlbisGraphUpdate",
                      lambda **kw: seen.append(kw) or real(**kw))
  gtspec = tfgnn.create_graph_spec_from_schema_pb(graph_io.build_schema(small_graph()))
  models.graph_update(trainer_config.MtAlbisOptions(**options), gtspec, ["paper"])
  assert {k: seen[0][k] for k in options} == options


def test_an_option_of_another_task_type_is_an_error_naming_the_key():
  import pydantic
  from tfx_gnn.components import config_base
  from tfx_gnn.components.gnn_trainer import config as trainer_config
  with pytest.raises(pydantic.ValidationError,
                     match=r"option 'pooling' does not apply to task 'root_node_binary' "
                           r"\(only to graph_multiclass, graph_regression\)"):
    config_base.validate(trainer_config.TaskConfig, {"type": "root_node_binary",
                                                     "pooling": "mean"})
  with pytest.raises(config_lib.ConfigError, match="task: .*'edge_split' does not apply"):
    config_lib.parse_config({"data": {"synthetic": {}}, "sampling": {"fanouts": {"cites": 1}},
                             "task": {"edge_split": {"train": 1.0}}})
  with pytest.raises(pydantic.ValidationError, match=r"scorer\n.*Extra inputs"):
    trainer_config.GraphRegressionOptions(scorer="hadamard")
  # No type: root_node_multiclass; each type knows its level and what the sampler seeds.
  task = config_base.validate(trainer_config.TaskConfig, "{}")
  assert isinstance(task, trainer_config.RootNodeMulticlassOptions)
  assert task.has_integrated_gradients
  assert not trainer_config.RootNodeMulticlassOptions(dgi_loss_weight=0.5).has_integrated_gradients
  levels = {t: cls.level for t, cls in trainer_config.TASK_TYPES.items()}
  assert levels == {"root_node_multiclass": "node", "root_node_binary": "node",
                    "root_node_regression": "node", "dgi": "node", "link_prediction": "link",
                    "graph_multiclass": "graph", "graph_regression": "graph"}
  link = trainer_config.LinkPredictionOptions(edge_set="cites", scorer="hadamard")
  assert link.seeds()["edge_set"] == "cites" and not link.has_integrated_gradients
  assert trainer_config.GraphRegressionOptions().seeds() == {"kind": "graphs"}


@pytest.mark.slow  # builds and saves TF-GNN's sampling models (a minute on 2 cores)
def test_sampling_programs_built_in_one_process_all_have_a_sink():
  # LocalDagRunner runs every component in one process; Keras' layer-name counters must not
  # rename the program's "sink" stage of a second sampling model. (Saving the program's
  # artifacts, most of prepare_program's time, names nothing.)
  from tfx_gnn.components.subgraph_sampler import sampling
  schema = graph_io.build_schema(small_graph())
  spec = sampling.build_sampling_spec(schema, "paper", {"cites": 2}, hops=1)
  for _ in range(2):
    program, _, _, _ = sampling.build_program(schema, spec)
    assert "sink" in program.layers


# ------------------------------------------------------------------ the components' typed API
def _channels():
  from tfx.types import channel, standard_artifacts
  from tfx_gnn.components import types
  return {"graph": channel.Channel(type=types.Graph),
          "anomalies": channel.Channel(type=types.GraphAnomalies),
          "examples": channel.Channel(type=standard_artifacts.Examples),
          "model": channel.Channel(type=standard_artifacts.Model)}


def test_components_take_config_objects_dicts_or_json_as_section_config():
  import json
  import pydantic
  from tfx_gnn.components import config_base
  from tfx_gnn.components.attribution.component import Attribution
  from tfx_gnn.components.gnn_evaluator.component import GnnEvaluator
  from tfx_gnn.components.gnn_trainer import config as trainer_config
  from tfx_gnn.components.gnn_trainer.component import GnnTrainer
  from tfx_gnn.components.graph_ingest.component import GraphIngest
  from tfx_gnn.components.graph_ingest.config import DataConfig, SyntheticSource
  from tfx_gnn.components.graph_validator.component import GraphValidator
  from tfx_gnn.components.subgraph_sampler.component import SubgraphSampler
  from tfx_gnn.components.subgraph_sampler.config import SamplingConfig
  c = _channels()
  data = DataConfig(synthetic=SyntheticSource(num_papers=50))
  # An object, a dict and a JSON string give the same execution parameter: the section's JSON.
  for value in (data, {"synthetic": {"num_papers": 50}}, '{"synthetic": {"num_papers": 50}}'):
    assert GraphIngest(data_config=value).exec_properties["data_config"] == data.model_dump_json()
  with pytest.raises(pydantic.ValidationError, match="synthetic.num_papers"):
    GraphIngest(data_config={"synthetic": {"num_papers": -1}})
  with pytest.raises(pydantic.ValidationError, match="valid dictionary or instance of DataConfig"):
    GraphIngest(data_config=SamplingConfig())  # another section
  validator = GraphValidator(graph=c["graph"], validation_config={"allow_self_loops": False})
  assert json.loads(validator.exec_properties["validation_config"])["allow_self_loops"] is False
  sampler = SubgraphSampler(graph=c["graph"], anomalies=c["anomalies"],
                            sampling_config=SamplingConfig(fanouts={"cites": 2}),
                            task_config={"type": "link_prediction", "edge_set": "cites"})
  assert json.loads(sampler.exec_properties["sampling_config"])["fanouts"] == {"cites": 2}
  assert json.loads(sampler.exec_properties["seeds"])["kind"] == "links"
  kwargs = dict(examples=c["examples"], graph=c["graph"], tracking_uri="file:///tmp/m",
                experiment="e")
  as_objects = GnnTrainer(**kwargs, model_config=trainer_config.GATv2Options(num_heads=2),
                          task_config=trainer_config.DGIOptions(),
                          trainer_config=trainer_config.TrainerConfig(epochs=1),
                          sampling_config=SamplingConfig(fanouts={"cites": 2}))
  as_dicts = GnnTrainer(**kwargs, model_config={"template": "gat_v2", "num_heads": 2},
                        task_config={"type": "dgi"}, trainer_config={"epochs": 1},
                        sampling_config='{"fanouts": {"cites": 2}}')
  assert as_objects.exec_properties == as_dicts.exec_properties
  model = config_base.validate(trainer_config.ModelConfig,
                               as_dicts.exec_properties["model_config"])
  assert model == trainer_config.GATv2Options(num_heads=2)
  with pytest.raises(pydantic.ValidationError, match="does not apply to template 'gcn'"):
    GnnTrainer(**kwargs, model_config={"template": "gcn", "num_heads": 2})
  evaluator = GnnEvaluator(model=c["model"], examples=c["examples"], graph=c["graph"],
                           evaluation_config={"metric": "accuracy", "lower_bound": 0.5})
  assert json.loads(evaluator.exec_properties["evaluation_config"])["lower_bound"] == 0.5
  attribution = Attribution(model=c["model"], examples=c["examples"], graph=c["graph"],
                            tracking_uri="file:///tmp/m", attribution_config={},
                            integrated_gradients_config={"steps": 4})
  assert json.loads(attribution.exec_properties["integrated_gradients_config"])["steps"] == 4
  # One naming rule: every config section is `<section>_config`.
  sections = {name for component in (GraphIngest, GraphValidator, SubgraphSampler, GnnTrainer,
                                     GnnEvaluator, Attribution)
              for name in component.SPEC_CLASS.PARAMETERS if "config" in name}
  assert sections == {"data_config", "validation_config", "sampling_config", "model_config",
                       "task_config", "tasks_config", "trainer_config", "evaluation_config",
                       "attribution_config", "integrated_gradients_config"}


USER_MODULE = os.path.join(os.path.dirname(__file__), "user_module", "user_gnn.py")


def test_a_user_module_is_template_custom_and_packaged_by_its_sources_hash(tmp_path):
  import shutil
  from tfx_gnn.components.gnn_trainer import training
  from tfx_gnn.components.gnn_trainer.component import GnnTrainer
  c = _channels()
  kwargs = dict(examples=c["examples"], graph=c["graph"], tracking_uri="file:///tmp/m",
                experiment="e")
  # A module alone means template custom; the shared options still come from model_config.
  trainer = GnnTrainer(**kwargs, module_file=USER_MODULE)
  assert '"template":"custom"' in trainer.exec_properties["model_config"]
  GnnTrainer(**kwargs, module_path="my_models.gnn", model_config={"template": "custom",
                                                                   "units": 8})
  with pytest.raises(ValueError, match="a user module replaces the model template; "
                                       "model_config has template 'gat_v2'"):
    GnnTrainer(**kwargs, module_file=USER_MODULE, model_config={"template": "gat_v2"})
  with pytest.raises(ValueError, match="'custom' needs exactly one of module_file"):
    GnnTrainer(**kwargs, model_config={"template": "custom"})
  with pytest.raises(ValueError, match="module_file '/nowhere/gnn.py' does not exist"):
    GnnTrainer(**kwargs, module_file="/nowhere/gnn.py")
  # In a run config, a module file is relative to the config file.
  config = config_lib.parse_config(
      {"data": {"synthetic": {}}, "sampling": {"fanouts": {"cites": 1}},
       "model": {"template": "custom", "module_file": "user_module/user_gnn.py"}},
      "c.yaml", os.path.dirname(__file__))
  assert config.model.module_file == USER_MODULE
  with pytest.raises(ValueError, match="module_file or module_path, not both"):
    GnnTrainer(**kwargs, model_config={"template": "custom", "module_file": USER_MODULE,
                                       "module_path": "x"})

  # As TFX's Trainer: when the pipeline runs, the module file becomes a wheel under the
  # pipeline root, named by its sources' hash; same sources, same module_path (a cache hit),
  # an edited module, another one.
  module_dir = tmp_path / "module"
  module_dir.mkdir()
  shutil.copy(USER_MODULE, module_dir / "user_gnn.py")

  def packaged():
    trainer = GnnTrainer(**kwargs, model_config={"template": "custom",
                                                 "module_file": str(module_dir / "user_gnn.py")})
    trainer._resolve_pip_dependencies(str(tmp_path / "root"))
    assert trainer.exec_properties["module_file"] is None
    return trainer.exec_properties["module_path"]

  first = packaged()
  assert first.startswith("user_gnn@") and first.endswith(".whl")
  assert packaged() == first
  with open(module_dir / "user_gnn.py", "a") as f:
    f.write("\nEDITED = True\n")
  edited = packaged()
  assert edited != first
  # The executor's side: model_fn from the packaged wheel (this version of it), from a file.
  model_fn = training.load_user_model_fn(module_path=edited)
  assert model_fn.__module__ == "user_gnn"
  assert sys.modules["user_gnn"].EDITED
  assert training.load_user_model_fn(module_file=USER_MODULE).__name__ == "model_fn"
  assert training.load_user_model_fn() is None


def test_ids_hashed_in_preprocessing_as_the_model_would_and_jit_needs_padding():
  """trainer.jit_compile: string `#id`s become, before the compiled step, the buckets that the
  model's own Hashing layer computes; XLA without padding (no fixed shapes) is refused."""
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components.gnn_trainer import config as trainer_config
  from tfx_gnn.components.gnn_trainer import training
  ids = tf.constant(["a", "b", "author/17", "a"])
  graph = tfgnn.GraphTensor.from_pieces(node_sets={
      "author": tfgnn.NodeSet.from_fields(sizes=[4], features={"#id": ids}),
      "paper": tfgnn.NodeSet.from_fields(sizes=[1], features={"x": tf.ones([1, 2])})})
  hashed = training.hash_ids_processor(1000)(graph)
  assert hashed.node_sets["author"]["#id"].dtype == tf.int64
  assert hashed.node_sets["author"]["#id"].numpy().tolist() == (
      tf.keras.layers.Hashing(1000)(ids).numpy().tolist())
  assert set(hashed.node_sets["paper"].features) == {"x"}
  with pytest.raises(ValueError, match="trainer.padding"):
    trainer_config.TrainerConfig(jit_compile=True)
  trainer_config.TrainerConfig(jit_compile=True, padding="fit_or_skip")


@pytest.mark.slow  # three interpreters importing TensorFlow
def test_the_trainers_graph_spec_orders_sets_alike_in_every_process():
  """Protobuf map order differs between processes (and parses); the trainer's GraphTensorSpec,
  whose set order decides the order Keras creates variables in, must not: multi-worker
  training broadcasts the chief's initial values by that order."""
  import subprocess
  import sys
  code = (
      "import tensorflow as tf\n"
      "from tensorflow_gnn.proto import graph_schema_pb2\n"
      "from tfx_gnn.components.gnn_trainer import training\n"
      "schema = graph_schema_pb2.GraphSchema()\n"
      "for name in ['paper', 'author', 'venue', 'field', 'institution']:\n"
      "  schema.node_sets[name].features['x'].dtype = tf.float32.as_datatype_enum\n"
      "  schema.edge_sets['to_' + name].source = 'paper'\n"
      "  schema.edge_sets['to_' + name].target = name\n"
      "spec = training.sorted_graph_spec(schema)\n"
      "print(list(spec.node_sets_spec), list(spec.edge_sets_spec))\n")
  orders = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.strip().splitlines()[-1] for _ in range(2)}
  assert orders == {"['author', 'field', 'institution', 'paper', 'venue'] ['to_author', "
                    "'to_field', 'to_institution', 'to_paper', 'to_venue']"}, orders
