"""TF-GNN's remaining rows through the real pipeline (issue 22): real-valued targets, edge
features chosen per edge set, graph pooling over configurable node sets, dynamic mode with a
SamplingSpec, and the bad input of each new config surface.

Each learning test builds a small table graph whose target depends only on what the feature
under test carries, and asserts learning above the trivial predictor."""
import os

import numpy as np
import pytest

import mlflow_template
from tfx_gnn.pipelines import config as config_lib
from tfx_gnn.pipelines import local_runner

HERE = os.path.dirname(__file__)


def _write_csv(path, header, rows):
  with open(path, "w") as f:
    f.write(",".join(header) + "\n")
    f.writelines(",".join(v if isinstance(v, str) else f"{v:.4f}" for v in row) + "\n"
                 for row in rows)


def _config(root, **sections) -> config_lib.Config:
  raw = {"pipeline": {"name": "tfx-gnn-rows", "root": str(root)},
         "model": {"template": "mt_albis", "num_rounds": 1, "units": 16, "message_dim": 16},
         "trainer": {"epochs": 15, "batch_size": 32, "learning_rate": 0.01},
         # Off: their own tests cover them; here they would add the integrated-gradients
         # export, attribution and bulk scoring to every run.
         "report": {"enabled": False}, "attribution": {"enabled": False},
         "bulk_inference": {"enabled": False}}
  raw.update(sections)
  return config_lib.parse_config(raw, "rows", HERE)


def _run(config) -> dict:
  """A learning run: on MLflow's migrated store (tests/mlflow_template.py), not about MLflow."""
  mlflow_template.copy_into(config)
  return local_runner.run(config)


def _ran_graph_task(summary):
  """A graph-level run: trained, evaluated and pushed; no Attribution even where enabled (it
  explains root-node tasks only)."""
  for component in ("GnnTrainer", "GnnEvaluator", "Pusher"):
    assert summary["components"][component] == "COMPLETE", summary["components"]
  assert "Attribution" not in summary["components"]


def _serve(summary, root, count=3):
  """The pushed SavedModel's serving signature on the first `count` test examples."""
  import glob
  import tensorflow as tf
  import tensorflow_gnn  # noqa: F401  (registers GraphTensor ops)
  from tfx.utils import path_utils
  files = glob.glob(os.path.join(root, "pipeline", "SubgraphSampler", "examples", "*",
                                 "Split-test", "*"))
  examples = [r.numpy() for r in tf.data.TFRecordDataset(files).take(count)]
  model = tf.saved_model.load(path_utils.serving_model_path(summary["model_uri"]))
  return model.signatures["serving_default"](examples=tf.constant(examples))["logits"]


def _regression_tables(directory, n=300, seed=0):
  """n nodes with 4 noise features; each cites 3 others; its label is the mean of its cited
  nodes' f0 (times 2): a function of neighbour features only."""
  rng = np.random.default_rng(seed)
  features = rng.normal(0, 1, (n, 4))
  cited = np.stack([rng.choice(np.delete(np.arange(n), i), 3, replace=False)
                    for i in range(n)])
  target = 2.0 * features[cited, 0].mean(1) + 0.01  # + 0.01: never an integer by chance
  _write_csv(directory / "nodes.csv", ["id", "f0", "f1", "f2", "f3", "y"],
             [[f"n{i}", *features[i], target[i]] for i in range(n)])
  _write_csv(directory / "cites.csv", ["source", "target"],
             [[f"n{i}", f"n{j}"] for i in range(n) for j in cited[i]])
  return {"tables": {"directory": str(directory),
                     "node_sets": {"node": {"file": "nodes.csv", "label_column": "y"}},
                     "edge_sets": {"cites": {"file": "cites.csv", "source": "node",
                                             "target": "node"}},
                     "splits": {"ratios": {"train": 0.6, "eval": 0.2, "test": 0.2}}}}


# ----------------------------------------------------------------- 1. real-valued targets
@pytest.mark.slow
def test_node_regression_on_float_labels_beats_the_mean_predictor(tmp_path):
  from tfx_gnn.components import graph_io
  data = _regression_tables(tmp_path)
  config = _config(tmp_path / "root", data=data,
                   sampling={"hops": 1, "fanouts": {"cites": 3}},
                   task={"type": "root_node_regression"},
                   evaluation={"metric": "mse", "max_regression": 100.0})
  summary = _run(config)
  for component in ("GraphIngest", "GraphValidator", "GnnTrainer", "GnnEvaluator"):
    assert summary["components"][component] == "COMPLETE", summary["components"]
  graph_dirs = [os.path.join(d, sub) for d, subs, _ in os.walk(tmp_path / "root")
                for sub in subs if d.endswith(os.path.join("GraphIngest", "graph"))]
  label = graph_io.read_label(graph_dirs[0])
  assert label.real_valued and label.num_classes == 0
  ev = summary["evaluation"]
  mean = ev["trivial"]["eval"]
  metrics, test = summary["eval_metrics"], summary["test_metrics"]
  print(f"\nregression eval: mse {metrics['mse']:.4f} mae {metrics['mae']:.4f} "
        f"r2 {metrics['r2']:.4f}; mean predictor mse {mean['mse']:.4f} r2 {mean['r2']:.4f}; "
        f"test: mse {test['mse']:.4f} r2 {test['r2']:.4f}")
  assert mean["r2"] == pytest.approx(0.0, abs=1e-9)
  assert metrics["mse"] < 0.6 * mean["mse"] and metrics["r2"] > 0.4
  assert test["r2"] > 0.4 and {"mse", "mae", "r2"} <= set(test)
  assert summary["blessed"] is True


def _float_label_collection(directory, num_graphs):
  """The synthetic collection's tables with the graphs' float `target` as their label."""
  from tfx_gnn.components.graph_ingest import synthetic
  tables = synthetic.generate_graph_collection(
      str(directory), num_graphs=num_graphs, num_classes=3, feature_dim=4, min_nodes=4,
      max_nodes=10, seed=0)
  tables["node_sets"]["graph"].update(label_column="target", features=[])
  return tables


def test_ingest_keeps_real_valued_labels_unless_num_classes_says_classes(tmp_path):
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.graph_ingest import ingest
  from tfx_gnn.components.graph_ingest.config import TablesSource
  tables = _float_label_collection(tmp_path, 30)
  with pytest.raises(ingest.IngestError, match=r"graph.csv: label 'target' at line \d+ is "
                     r".*; with num_classes 3 labels must be integers"):
    ingest.tables_to_graph(TablesSource(**tables))
  del tables["num_classes"]
  graph = ingest.tables_to_graph(TablesSource(**tables))
  assert graph.label == graph_io.Label("graph", "label", 0, "float32")
  assert graph.node_sets["graph"].features["label"].dtype == np.float32
  graph_io.write_graph(graph, str(tmp_path / "out"))
  assert graph_io.read_label(str(tmp_path / "out")).real_valued
  # A classification task refuses real-valued labels, naming them.
  from tfx_gnn.components.gnn_trainer import tasks
  task = config_lib.parse_config({"data": {"synthetic": {}},
                                  "sampling": {"fanouts": {"cites": 2}}}).task
  with pytest.raises(tasks.TaskError, match="graph.label holds real numbers"):
    tasks.make_tasks(task, graph.label)


@pytest.mark.slow
def test_graph_regression_on_a_float_label_beats_the_mean_predictor(tmp_path):
  """Also the graph-level regression task through the pipeline (tests/test_tasks_pipeline.py
  ran it on its own before): the MAE loss, the test graphs all scored, the served output one
  number per graph."""
  tables = _float_label_collection(tmp_path / "graphs", 150)
  del tables["num_classes"]
  summary = _run(_config(
      tmp_path / "root", data={"tables": tables}, sampling={},
      model={"template": "mt_albis", "num_rounds": 2, "units": 16, "message_dim": 16},
      trainer={"epochs": 20, "batch_size": 16, "learning_rate": 0.01},
      task={"type": "graph_regression", "pooling": {"node": "mean"},
            "regression_loss": "mae"},
      evaluation={"metric": "r2", "max_regression": 100.0}, attribution={}))
  _ran_graph_task(summary)
  mean = summary["evaluation"]["trivial"]["eval"]
  metrics, test = summary["eval_metrics"], summary["test_metrics"]
  print(f"\ngraph regression eval: mse {metrics['mse']:.4f} mae {metrics['mae']:.4f} "
        f"r2 {metrics['r2']:.4f}; mean predictor mse {mean['mse']:.4f}; test mse "
        f"{test['mse']:.4f} r2 {test['r2']:.4f}")
  assert metrics["mse"] < mean["mse"] and metrics["r2"] > 0.1 and summary["blessed"] is True
  assert test["num_examples"] == 30 and test["mae"] >= 0  # the collection's test graphs
  assert _serve(summary, tmp_path / "root").shape == (3, 1)


# ---------------------------------------------------------------------- 2. edge features
def _edge_sign_tables(directory, n=400, seed=0):
  """n nodes of two balanced classes with noise features; each node's 3 out-edges (`links`,
  whose messages reach it: the model's receiver is the edge's source) carry a float `w` whose
  sign is its class; the neighbours themselves are random. Only `w` tells the class."""
  rng = np.random.default_rng(seed)
  label = rng.permutation(np.arange(n) % 2)
  features = rng.normal(0, 1, (n, 4))
  rows = []
  for i in range(n):
    for j in rng.choice(np.delete(np.arange(n), i), 3, replace=False):
      rows.append([f"n{i}", f"n{j}", (1 if label[i] else -1) * rng.uniform(0.2, 1.0),
                   rng.normal(0, 1)])
  _write_csv(directory / "nodes.csv", ["id", "f0", "f1", "f2", "f3", "label"],
             [[f"n{i}", *features[i], str(label[i])] for i in range(n)])
  _write_csv(directory / "links.csv", ["source", "target", "w", "noise"], rows)
  return {"tables": {"directory": str(directory),
                     "node_sets": {"node": {"file": "nodes.csv", "label_column": "label"}},
                     "edge_sets": {"links": {"file": "links.csv", "source": "node",
                                             "target": "node", "features": ["w", "noise"]}},
                     "splits": {"ratios": {"train": 0.6, "eval": 0.2, "test": 0.2}}}}


def _edge_config(tmp_path, data, **model):
  return _config(tmp_path / "root", data=data, sampling={"hops": 1, "fanouts": {"links": 3}},
                 model={"template": "mt_albis", "num_rounds": 1, "units": 16, "message_dim": 16,
                        **model},
                 evaluation={"metric": "accuracy", "max_regression": 1.0})


@pytest.mark.slow
def test_a_label_carried_by_an_edge_feature_is_learned_with_it_and_not_without(tmp_path):
  data = _edge_sign_tables(tmp_path)
  # The same ingest and subgraphs (cached), two models: with and without the edge feature.
  with_edges = _run(_edge_config(tmp_path, data, edge_features={"links": ["w"]}))
  without = _run(_edge_config(tmp_path, data))
  assert without["components"]["SubgraphSampler"] == "CACHED"
  acc_with = (with_edges["eval_metrics"]["accuracy"], with_edges["test_metrics"]["accuracy"])
  acc_without = (without["eval_metrics"]["accuracy"], without["test_metrics"]["accuracy"])
  print(f"\nedge feature: eval/test accuracy with {acc_with}, without {acc_without}; "
        f"majority {without['evaluation']['trivial']['eval']['accuracy']:.3f}")
  assert min(acc_with) >= 0.9 and with_edges["blessed"] is True
  # 80 test nodes, 2 balanced classes: chance is 0.5 +- 0.056.
  assert max(acc_without) <= 0.7 and without["blessed"] is False


@pytest.mark.parametrize("template", ["mt_albis", "vanilla_mpnn", "gat_v2"])
def test_edge_features_are_message_inputs_of_each_template_that_takes_them(template):
  """The chosen edge features are the edges' states, read by the template's convolutions:
  changing only an edge feature changes the root's state; an edge set without chosen features
  has an empty state."""
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components.gnn_trainer import models
  from tfx_gnn.components.gnn_trainer.config import MODEL_TEMPLATES

  def graph(w):
    return tfgnn.GraphTensor.from_pieces(
        node_sets={"node": tfgnn.NodeSet.from_fields(
            sizes=[3], features={"f": tf.ones([3, 2])})},
        edge_sets={e: tfgnn.EdgeSet.from_fields(
            sizes=[2], features={"w": tf.constant(w), "k": tf.constant([1, 2])},
            adjacency=tfgnn.Adjacency.from_indices(("node", [0, 0]), ("node", [1, 2])))
                   for e in ("links", "other")})

  cfg = MODEL_TEMPLATES[template](template=template, num_rounds=1, units=16, message_dim=16,
                                  edge_features={"links": ["w", "k"]})
  # Fixed initial weights and 16 units: with few random ones a ReLU may zero both states.
  tf.keras.utils.set_random_seed(0)
  model = models.build_model_fn(cfg, "node")(graph([1.0, 2.0]).spec)
  states = [model(graph(w)).node_sets["node"][tfgnn.HIDDEN_STATE][0].numpy()
            for w in ([1.0, 2.0], [-1.0, 5.0])]
  assert not np.allclose(states[0], states[1])
  initial = models.initial_states(graph([1.0, 2.0]).spec, cfg)(graph([1.0, 2.0]))
  assert initial.edge_sets["links"][tfgnn.HIDDEN_STATE].shape == (2, 2)
  assert initial.edge_sets["other"][tfgnn.HIDDEN_STATE].shape == (2, 0)
  with pytest.raises(models.ModelError, match=r"model.edge_features.links: edge set 'links' "
                     r"has no feature 'x' \(its features: \['k', 'w'\]\)"):
    models.build_model_fn(cfg.model_copy(update={"edge_features": {"links": ["x"]}}),
                          "node")(graph([1.0, 2.0]).spec)


def test_edge_features_apply_only_to_templates_that_read_them():
  from tfx_gnn.components import config_base
  with pytest.raises(ValueError, match=r"option 'edge_features' does not apply to template "
                     r"'graph_sage' \(only to mt_albis, gat_v2, vanilla_mpnn\)"):
    config_base.validate(config_lib.ModelConfig, {"template": "graph_sage",
                                                  "edge_features": {"links": ["w"]}})


# ------------------------------------------------------------------- 3. graph pooling
@pytest.mark.slow
def test_graph_classification_pools_the_configured_node_set(tmp_path):
  """Also the graph-level classification task through the pipeline
  (tests/test_tasks_pipeline.py ran it on its own before): the test graphs all scored, the
  served logits one row per graph and one column per class."""
  config = _config(tmp_path / "root",
                   data={"synthetic_graphs": {"num_graphs": 300, "num_classes": 3,
                                              "feature_dim": 4, "max_nodes": 10}},
                   sampling={}, model={"template": "mt_albis", "num_rounds": 2, "units": 16,
                                       "message_dim": 16},
                   trainer={"epochs": 15, "batch_size": 16, "learning_rate": 0.01},
                   task={"type": "graph_multiclass", "pooling": {"node": "sum"}},
                   evaluation={"metric": "accuracy", "max_regression": 1.0}, attribution={})
  assert config.task.pooling == {"node": "sum"}
  summary = _run(config)
  _ran_graph_task(summary)
  majority = summary["evaluation"]["trivial"]["eval"]["accuracy"]
  print(f"\npooling {{node: sum}}: eval accuracy {summary['eval_metrics']['accuracy']:.3f}, "
        f"test {summary['test_metrics']['accuracy']:.3f}; majority {majority:.3f}")
  assert summary["eval_metrics"]["accuracy"] > majority + 0.1
  assert summary["blessed"] is True
  assert summary["test_metrics"]["num_examples"] == 60  # the collection's test graphs
  assert _serve(summary, tmp_path / "root").shape == (3, 3)


def test_several_node_sets_are_pooled_each_by_its_own_reduction():
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components.gnn_trainer import tasks
  from tfx_gnn.components import graph_io
  from tfx_gnn.pipelines import config as cfg_lib
  graph = tfgnn.GraphTensor.from_pieces(
      context=tfgnn.Context.from_fields(features={"label": tf.constant([1])}),
      node_sets={
          "a": tfgnn.NodeSet.from_fields(sizes=[2], features={
              tfgnn.HIDDEN_STATE: tf.constant([[1.0], [3.0]])}),
          "b": tfgnn.NodeSet.from_fields(sizes=[3], features={
              tfgnn.HIDDEN_STATE: tf.constant([[1.0], [2.0], [7.0]])})})
  label = graph_io.Label("graph", "label", 3)
  task_cfg = cfg_lib.parse_config({"data": {"synthetic_graphs": {}}, "task": {
      "type": "graph_multiclass", "pooling": {"a": "mean", "b": "max"}}}).task
  made = tasks.make_tasks(task_cfg, label, gtspec=graph.spec)
  np.testing.assert_allclose(made.task.gather_activations(graph).numpy(), [[2.0, 7.0]])
  plain = tasks.make_tasks(task_cfg.model_copy(update={"pooling": "sum"}), label,
                           gtspec=graph.spec)
  np.testing.assert_allclose(plain.task.gather_activations(graph).numpy(), [[4.0]])
  with pytest.raises(tasks.TaskError, match=r"task.pooling: unknown node set\(s\) 'c'"):
    tasks.make_tasks(task_cfg.model_copy(update={"pooling": {"c": "sum"}}), label,
                     gtspec=graph.spec)


# ----------------------------------------------------- 4. dynamic mode with a SamplingSpec
SPEC_TEXT = """
seed_op { op_name: "seed" node_set_name: "paper" }
sampling_ops { op_name: "cited" input_op_names: "seed" edge_set_name: "cites" sample_size: 2
               strategy: RANDOM_UNIFORM }
sampling_ops { op_name: "authors" input_op_names: "seed" edge_set_name: "written"
               sample_size: 1 strategy: RANDOM_UNIFORM }
"""


@pytest.mark.slow
def test_dynamic_mode_samples_with_the_sampling_spec(tmp_path):
  import yaml
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tfx_gnn import interactive
  from tfx_gnn.components import graph_io, lineage
  from tfx_gnn.components.gnn_trainer import dynamic
  with open(os.path.join(HERE, "configs", "tiny.yaml")) as f:
    raw = yaml.safe_load(f)
  spec_file = tmp_path / "spec.pbtxt"
  spec_file.write_text(SPEC_TEXT)
  raw["pipeline"] = {"name": "tfx-gnn-rows-dynamic", "root": str(tmp_path / "root")}
  raw["sampling"] = {"spec_file": str(spec_file), "mode": "dynamic"}
  raw["trainer"] = {"epochs": 2, "batch_size": 32}
  raw["model"]["num_rounds"] = 1  # the spec samples one hop (and each round is traced)
  raw["attribution"] = {"enabled": False}
  raw["report"] = {"enabled": False}
  config = config_lib.parse_config(raw, "rows", HERE)
  summary = _run(config)
  assert summary["components"]["GnnTrainer"] == "COMPLETE", summary["components"]
  store = lineage.open_store(config.metadata_path)
  outputs = {ref.type: ref for r in lineage.executions(store, summary["run_id"])
             for ref in r.outputs}
  graph_dir = outputs["tfx_gnn.Graph"].uri
  seeds = graph_io.read_seeds(graph_dir, "train")[:40]
  provider = dynamic.train_subgraphs(graph_dir, config.sampling, seeds, shuffle_seed=0)
  schema = provider.sampler.subgraph_schema()
  # The spec's ops, not hops and fanouts: one hop, cites and written only, at most 2 + 1.
  assert sorted(schema.edge_sets) == ["cites", "written"]
  gtspec = tfgnn.create_graph_spec_from_schema_pb(schema)
  for example in provider.get_dataset(tf.distribute.InputContext()).take(10):
    graph = tfgnn.parse_single_example(gtspec, example)
    assert int(graph.edge_sets["cites"].sizes[0]) <= 2
    assert int(graph.edge_sets["written"].sizes[0]) <= 1
  # The explorer samples what the pipeline samples (the spec, from the config).
  explorer = interactive.SubgraphExplorer.from_config(config, graph_dir)
  assert explorer.spec == provider.sampler._spec


# ------------------------------------------------ 5. bad input of the new config surfaces
def _refused_before_anything_runs(tmp_path, sections, *patterns):
  """The config is refused with a message naming its key; nothing runs or is published."""
  with pytest.raises(config_lib.ConfigError) as info:
    local_runner.run(_config(tmp_path / "root", **sections))
  for pattern in patterns:
    assert pattern in str(info.value), f"{pattern!r} not in error:\n{info.value}"
  assert not os.path.exists(tmp_path / "root")  # no metadata, no artifacts, nothing served
  return str(info.value)


def test_an_edge_feature_that_is_not_on_that_edge_set_is_refused(tmp_path):
  data = _edge_sign_tables(tmp_path)
  data["tables"]["edge_sets"]["links"]["reverse"] = "linked_from"
  data["tables"]["edge_sets"]["links"]["features"] = ["noise"]  # `w` not ingested
  sampling = {"hops": 1, "fanouts": {"links": 3}}
  _refused_before_anything_runs(
      tmp_path, {"data": data, "sampling": sampling, "model": {
          "template": "mt_albis", "edge_features": {"links": ["w"]}}},
      "model.edge_features.links: edge set 'links' has no feature 'w'",
      "its features: noise", "data.tables.edge_sets.links.features")
  # A reverse set has its forward set's features; an unknown set is named too.
  _refused_before_anything_runs(
      tmp_path, {"data": data, "sampling": sampling, "model": {
          "template": "mt_albis", "edge_features": {"linked_from": ["w"]}}},
      "model.edge_features.linked_from: edge set 'linked_from' has no feature 'w'")
  _refused_before_anything_runs(
      tmp_path, {"data": data, "sampling": sampling, "model": {
          "template": "mt_albis", "edge_features": {"cites": ["w"]}}},
      "model.edge_features.cites: unknown edge set 'cites'", "['linked_from', 'links']")
  # A template that reads no edge features refuses the option.
  _refused_before_anything_runs(
      tmp_path, {"data": data, "sampling": sampling, "model": {
          "template": "graph_sage", "edge_features": {"links": ["noise"]}}},
      "model", "'edge_features' does not apply to template 'graph_sage'")
  # The valid form passes.
  assert _config(tmp_path / "ok", data=data, sampling=sampling, model={
      "template": "mt_albis",
      "edge_features": {"linked_from": ["noise"]}}).model.edge_features == {
          "linked_from": ["noise"]}


def test_a_pooling_node_set_that_does_not_exist_is_refused(tmp_path):
  from tfx_gnn.components.graph_ingest import synthetic
  tables = synthetic.generate_graph_collection(
      str(tmp_path / "graphs"), num_graphs=30, num_classes=2, feature_dim=2, min_nodes=4,
      max_nodes=6, seed=0)
  task = {"type": "graph_multiclass", "pooling": {"node": "mean", "nodes": "sum"}}
  _refused_before_anything_runs(
      tmp_path, {"data": {"tables": tables}, "sampling": {}, "task": task},
      "task.pooling: unknown node set(s) 'nodes'", "the graphs' node sets are ['node']")
  # The labelled set holds one node per graph: it is not pooled either.
  _refused_before_anything_runs(
      tmp_path, {"data": {"tables": tables}, "sampling": {},
                 "task": {"type": "graph_multiclass", "pooling": {"graph": "sum"}}},
      "task.pooling: unknown node set(s) 'graph'")
  _refused_before_anything_runs(
      tmp_path, {"data": {"tables": tables}, "sampling": {},
                 "task": {"type": "graph_multiclass", "pooling": {"node": "median"}}},
      "task.pooling")
  _refused_before_anything_runs(
      tmp_path, {"data": {"tables": tables}, "sampling": {},
                 "task": {"type": "graph_multiclass", "pooling": {}}},
      "task.pooling", "give at least one node set")


# ------------------------------------------------------------------------------- padding
def test_padding_gives_fixed_shapes_and_skips_or_keeps_batches_as_the_runner_documents():
  """trainer.padding (TPUs need fixed shapes): `tight` keeps every batch, padded to sizes
  that any batch fits (batch size x the largest graph, + the padding graph); `fit_or_skip`
  learns sizes that `fit_or_skip_success_ratio` of random batches fit, and skips the batches
  that do not (here: the one holding a huge graph)."""
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tensorflow_gnn import runner
  from tfx_gnn.components.gnn_trainer import training
  from tfx_gnn.components.gnn_trainer.config import TrainerConfig
  rng = np.random.default_rng(0)
  sizes = [int(k) for k in rng.integers(2, 6, 39)] + [60]  # the last graph is huge

  def graph(n):
    return tfgnn.GraphTensor.from_pieces(
        node_sets={"n": tfgnn.NodeSet.from_fields(sizes=[n], features={
            "f": tf.ones([n, 2])})},
        edge_sets={"e": tfgnn.EdgeSet.from_fields(sizes=[n - 1], adjacency=(
            tfgnn.Adjacency.from_indices(("n", tf.range(n - 1)), ("n", tf.range(1, n)))))})

  gtspec = graph(2).spec.relax(num_components=True, num_nodes=True, num_edges=True)
  serialized = [tfgnn.write_example(graph(n)).SerializeToString() for n in sizes]

  class Provider(runner.DatasetProvider):
    def get_dataset(self, context):
      return tf.data.Dataset.from_tensor_slices(serialized)

  batches = [tfgnn.parse_example(gtspec, tf.constant(serialized[i:i + 4]))
             .merge_batch_to_components() for i in range(0, len(serialized), 4)]
  for mode, ratio in (("tight", None), ("fit_or_skip", 0.8)):
    cfg = TrainerConfig(padding=mode, **({"fit_or_skip_success_ratio": ratio} if ratio else {}))
    padding = training.make_padding(cfg, gtspec, Provider())
    constraints = padding.get_size_constraints(4)
    keep = padding.get_filter_fn(constraints)
    kept = [bool(keep(b)) for b in batches]
    if mode == "tight":
      assert all(kept)
      assert int(constraints.total_num_nodes["n"]) > 4 * max(sizes)
    else:
      assert kept[-1] is False and sum(kept) >= 8  # the huge graph's batch is skipped
      assert int(constraints.total_num_nodes["n"]) < sum(sizes[-4:])
    for batch, fits in zip(batches, kept):
      if fits:  # every kept batch is padded to the same, fixed sizes
        padded, mask = tfgnn.pad_to_total_sizes(batch, constraints)
        assert int(padded.node_sets["n"].total_size) == int(constraints.total_num_nodes["n"])
        assert int(padded.edge_sets["e"].total_size) == int(constraints.total_num_edges["e"])
        assert int(tf.reduce_sum(tf.cast(mask, tf.int32))) == int(batch.num_components)
    print(f"\n{mode}: nodes {int(constraints.total_num_nodes['n'])}, kept {sum(kept)} of "
          f"{len(kept)} batches")
