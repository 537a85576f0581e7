"""Link prediction (dot product, Hadamard) trained through the real pipeline (LocalDagRunner)
on tiny data, exported, evaluated, blessed on its metric and served; and the configs of the
graph-level tasks (which tests/test_tfgnn_rows.py trains through the pipeline, served and
counted as these runs are).

One module-scoped pipeline root: a small MAG-shaped graph without node labels (papers that
cite papers, authors that write them) for link prediction, whose second scorer reuses the
cached link subgraphs (the sampler's seeds do not depend on the scorer).
"""
import glob
import os

import numpy as np
import pytest

import mlflow_template
from tfx_gnn.components import config_base
from tfx_gnn.pipelines import config as config_lib
from tfx_gnn.pipelines import local_runner

pytestmark = pytest.mark.slow  # runs pipelines, trains models or starts servers

HERE = os.path.dirname(__file__)
TINY = os.path.join(HERE, "configs", "tiny.yaml")


def _config(root, **sections) -> config_lib.Config:
  import yaml
  with open(TINY) as f:
    raw = yaml.safe_load(f)
  raw["pipeline"]["root"] = str(root)
  raw["pipeline"]["name"] = "tfx-gnn-tasks"
  raw["model"] = {"template": "mt_albis", "units": 8, "num_rounds": 2, "message_dim": 8}
  raw["trainer"] = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 16}
  # Attribution is for root-node tasks; the run report has its own tests.
  raw["report"] = {"enabled": False}
  raw.update(sections)
  config = config_lib.parse_config(raw, "tasks", HERE)
  mlflow_template.copy_into(config)
  return config


def _test_examples(root, count=3):
  import tensorflow as tf
  files = glob.glob(os.path.join(root, "pipeline", "SubgraphSampler", "examples", "*",
                                 "Split-test", "*"))
  return [r.numpy() for r in tf.data.TFRecordDataset(files).take(count)]


def _serve(summary, examples):
  import tensorflow as tf
  import tensorflow_gnn  # noqa: F401  (registers GraphTensor ops)
  from tfx.utils import path_utils
  model = tf.saved_model.load(path_utils.serving_model_path(summary["model_uri"]))
  return model, model.signatures["serving_default"](examples=tf.constant(examples))["logits"]


def _ran(summary):
  for component in ("GnnTrainer", "GnnEvaluator", "Pusher"):
    assert summary["components"][component] == "COMPLETE", summary["components"]
  assert "Attribution" not in summary["components"]  # root-node tasks only


def _write_unlabelled_tables(directory):
  """A citation graph in four communities, without labels: 120 papers with a noisy 4-d
  community feature, each citing 3 papers of its own community; 30 authors (a 2-d noise
  feature) who write 4 papers each (a MAG-shaped graph, heterogeneous)."""
  import numpy as np
  rng = np.random.default_rng(0)
  community = np.arange(120) % 4
  features = np.eye(4)[community] + rng.normal(0, 0.5, (120, 4))
  with open(directory / "papers.csv", "w") as f:
    f.write("id,f0,f1,f2,f3\n")
    f.writelines(f"p{i}," + ",".join(f"{v:.3f}" for v in row) + "\n"
                 for i, row in enumerate(features))
  with open(directory / "cites.csv", "w") as f:
    f.write("src,dst\n")
    for i in range(120):
      peers = np.flatnonzero((community == community[i]) & (np.arange(120) != i))
      f.writelines(f"p{i},p{j}\n" for j in rng.choice(peers, 3, replace=False))
  with open(directory / "authors.csv", "w") as f:
    f.write("id,g0,g1\n")
    f.writelines(f"a{k},{rng.normal():.3f},{rng.normal():.3f}\n" for k in range(30))
  with open(directory / "writes.csv", "w") as f:
    f.write("author,paper\n")
    f.writelines(f"a{k % 30},p{i}\n" for k, i in enumerate(rng.permutation(120)))


def _unlabelled_tables(directory):
  return {"tables": {"directory": str(directory),
                     "node_sets": {"paper": {"file": "papers.csv", "id_column": "id"},
                                   "author": {"file": "authors.csv", "id_column": "id"}},
                     "edge_sets": {"cites": {"file": "cites.csv", "source": "paper",
                                             "target": "paper", "source_column": "src",
                                             "target_column": "dst", "reverse": "cited_by"},
                                   "writes": {"file": "writes.csv", "source": "author",
                                              "target": "paper", "source_column": "author",
                                              "target_column": "paper",
                                              "reverse": "written"}}}}


LINK_SAMPLING = {"hops": 2, "fanouts": {"cites": 3, "cited_by": 3, "written": 2, "writes": 2}}


@pytest.fixture(scope="module")
def link_root(tmp_path_factory):
  root = tmp_path_factory.mktemp("links")
  (root / "data").mkdir()
  _write_unlabelled_tables(root / "data")
  return root


def _link_config(root, scorer):
  return _config(root, data=_unlabelled_tables(root / "data"), sampling=LINK_SAMPLING,
                 task={"type": "link_prediction", "edge_set": "cites", "scorer": scorer},
                 evaluation={"metric": "auc", "lower_bound": 0.0, "max_regression": 1.0})


def test_link_prediction_dot_product_through_the_pipeline(link_root):
  """Link prediction needs no node labels: a graph without them, sampled around its links."""
  import pandas as pd
  summary = local_runner.run(_link_config(link_root, "dot_product"))
  _ran(summary)
  # The evaluator scored every test pair (positives and their negatives) with ROC AUC.
  seeds = glob.glob(os.path.join(link_root, "pipeline", "SubgraphSampler", "examples", "*",
                                 "link_seeds", "test.csv"))
  test_pairs = pd.read_csv(seeds[0])
  assert summary["test_metrics"]["num_examples"] == len(test_pairs) > 0
  # The graph has no node labels or node splits: the links are split instead.
  assert len(test_pairs) == 2 * 36  # 10% of 360 citations, one negative each
  assert 2 * test_pairs.label.sum() == len(test_pairs)  # one negative per positive
  assert 0.0 <= summary["test_metrics"]["auc"] <= 1.0
  # The gate judges the link metric on the eval split against the trivial predictor's AUC
  # (0.5) plus the margin: this 2-step model is blessed exactly when it clears that bar.
  evaluation = summary["evaluation"]
  assert evaluation["metric"] == "auc" and evaluation["decided_on"] == "eval"
  assert evaluation["trivial"]["eval"]["auc"] == 0.5
  required = evaluation["thresholds"]["required_over_trivial"]
  assert summary["blessed"] == (summary["eval_metrics"]["auc"] >= required)
  model, logits = _serve(summary, _test_examples(link_root))
  assert logits.shape == (3, 1)
  # The shared projection of the endpoints' states is part of the served model.
  variables = model.signatures["serving_default"].variables
  assert any("linkpred_projection" in v.name for v in variables), [v.name for v in variables]
  # A node task on the same tables is refused before anything runs, naming what is missing.
  with pytest.raises(config_lib.ConfigError, match="needs a labelled node set"):
    _config(link_root / "root2", data=_unlabelled_tables(link_root / "data"),
            sampling={"hops": 1, "fanouts": {"cites": 3}})


def test_projected_dot_product_is_the_librarys_dot_product_of_projected_states():
  import numpy as np
  import tensorflow as tf
  from tensorflow_gnn import runner
  from tfx_gnn.components.gnn_trainer import tasks
  rng = np.random.default_rng(0)
  # Non-negative states, as after the GNN's last ReLU: every plain dot product is >= 0.
  src, tgt = (tf.constant(rng.uniform(0, 1, (6, 4)), tf.float32) for _ in range(2))
  plain = runner.DotProductLinkPrediction()._compute_edge_scores(src, tgt).numpy()
  assert plain.shape == (6, 1) and (plain >= 0).all()
  scorer = tasks.ProjectedDotProductLinkPrediction()
  scores = scorer._compute_edge_scores(src, tgt).numpy()
  kernel = scorer._projection.kernel.numpy()
  expected = np.sum((src.numpy() @ kernel) * (tgt.numpy() @ kernel), -1, keepdims=True) / 2.0
  np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
  # Unlike the plain dot product, a projection can score a non-negative pair below 1/2.
  kernel = np.zeros((4, 4), np.float32)
  kernel[:, 0] = [1, -1, 0, 0]  # the first projected coordinate is u0 - u1
  scorer._projection.kernel.assign(kernel)
  pair = scorer._compute_edge_scores(tf.constant([[1., 0, 1, 1]]), tf.constant([[0., 1, 1, 1]]))
  np.testing.assert_allclose(pair.numpy(), [[-0.5]])
  with pytest.raises(ValueError, match="dot_product_projection"):
    config_base.validate(config_lib.TaskConfig, {"type": "dgi", "dot_product_projection": False})


def test_link_prediction_hadamard_reuses_the_link_subgraphs(link_root):
  sampled_before = glob.glob(os.path.join(link_root, "pipeline", "SubgraphSampler",
                                           "examples", "*"))
  summary = local_runner.run(_link_config(link_root, "hadamard"))
  _ran(summary)
  # After the dot-product run (the usual order), the same link subgraphs are reused.
  assert summary["components"]["SubgraphSampler"] == ("CACHED" if sampled_before
                                                      else "COMPLETE")
  model, logits = _serve(summary, _test_examples(link_root))
  assert logits.shape == (3, 1)
  # HadamardProductLinkPrediction's own scoring layer is in the served model.
  variables = model.signatures["serving_default"].variables
  assert any("linkpred" in v.name for v in variables), [v.name for v in variables]


def test_graph_regression_reads_its_target_feature_from_the_graph_context():
  """graph_regression's target_feature names a graph feature other than the label (the
  synthetic collection's float `target`, its label the class): the loss reads it, and the
  evaluator finds it in the context; an unknown one is named. (Graph-level runs through the
  pipeline: tests/test_tfgnn_rows.py.)"""
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.gnn_trainer import tasks
  graph = tfgnn.GraphTensor.from_pieces(
      context=tfgnn.Context.from_fields(features={"label": tf.constant([2]),
                                                  "target": tf.constant([0.75])}),
      node_sets={"node": tfgnn.NodeSet.from_fields(sizes=[2], features={
          tfgnn.HIDDEN_STATE: tf.constant([[1.0], [3.0]])})})
  label = graph_io.Label("graph", "label", 3)
  graphs = {"data": {"synthetic_graphs": {}}}
  task = config_lib.parse_config({**graphs, "task": {
      "type": "graph_regression", "target_feature": "target", "regression_loss": "mae"}}).task
  made = tasks.make_tasks(task, label, gtspec=graph.spec)
  assert made.target == ("context", "target")
  _, labels = made.task.preprocess(graph)
  np.testing.assert_allclose(np.reshape(labels.numpy(), [-1]), [0.75])
  # Without target_feature the label itself is the target.
  plain = tasks.make_tasks(task.model_copy(update={"target_feature": None}), label,
                           gtspec=graph.spec)
  assert plain.target == ("context", "label")
  _, labels = plain.task.preprocess(graph)
  np.testing.assert_allclose(np.reshape(labels.numpy(), [-1]), [2.0])
  with pytest.raises(tasks.TaskError, match="reads graph feature 'score'"):
    tasks.make_tasks(task.model_copy(update={"target_feature": "score"}), label,
                     gtspec=graph.spec)


def test_graph_level_tasks_sum_messages_unless_told_otherwise():
  """GraphSAGE's reduce_type, unset, is sum for a graph-level task (a graph's class may hang on
  its nodes' neighbour counts, which a mean hides: benchmarks/graph_task_study.py) and mean
  for the others; a value the config gives is kept, and the resolved config says which."""
  graphs = {"data": {"synthetic_graphs": {}}, "task": {"type": "graph_multiclass"}}
  config = config_lib.parse_config(graphs)
  assert config.model.reduce_type == "sum"
  assert config_lib.to_dict(config)["model"]["reduce_type"] == "sum"
  assert config_lib.parse_config(config_lib.to_dict(config)).model.reduce_type == "sum"
  told = config_lib.parse_config({**graphs, "model": {"reduce_type": "mean"}})
  assert told.model.reduce_type == "mean"
  nodes = {"data": {"synthetic": {}}, "sampling": {"fanouts": {"cites": 2}}}
  assert config_lib.parse_config(nodes).model.reduce_type == "mean"
  links = {**nodes, "task": {"type": "link_prediction", "edge_set": "cites"}}
  assert config_lib.parse_config(links).model.reduce_type == "mean"
  albis = config_lib.parse_config({**graphs, "model": {"template": "mt_albis"}})
  assert albis.model.simple_conv_reduce_type == "mean"


def test_task_configs_are_checked():
  base = {"data": {"synthetic": {}}, "sampling": {"fanouts": {"cites": 2}}}
  with pytest.raises(config_lib.ConfigError, match="task.edge_set: Field required"):
    config_lib.parse_config({**base, "task": {"type": "link_prediction"}})
  with pytest.raises(config_lib.ConfigError, match="'scorer' does not apply"):
    config_lib.parse_config({**base, "task": {"scorer": "hadamard"}})
  with pytest.raises(config_lib.ConfigError, match="needs a graph collection"):
    config_lib.parse_config({**base, "task": {"type": "graph_multiclass"}})
  with pytest.raises(config_lib.ConfigError, match="sampling.fanouts: required"):
    config_lib.parse_config({"data": {"synthetic": {}}})
  graphs = {"data": {"synthetic_graphs": {}}}
  assert config_lib.parse_config({**graphs, "task": {"type": "graph_regression"}}).task.level \
      == "graph"
  with pytest.raises(config_lib.ConfigError, match="not a graph-level task"):
    config_lib.parse_config(graphs)
  tables = {"directory": ".", "node_sets": {"p": {"file": "p.csv", "label_column": "y"}},
            "edge_sets": {"c": {"file": "c.csv", "source": "p", "target": "p"}},
            "splits": {"ratios": {"train": 1.0}}}
  with pytest.raises(config_lib.ConfigError, match="task.edge_set: unknown edge set 'x'"):
    config_lib.parse_config({"data": {"tables": tables}, "sampling": {"fanouts": {"c": 2}},
                             "task": {"type": "link_prediction", "edge_set": "x"}})
