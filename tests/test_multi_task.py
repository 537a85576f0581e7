"""Multi-task through the real pipeline (issue 22): named tasks (`tasks:`) share one model, each
with its own target, head and loss weight; the evaluator scores and gates every head against
its own trivial baseline; the serving signature returns every head and needs no label.

The graph: each node cites 3 others; its class depends only on its cited nodes' f1, its
`score` (a number) only on their f0. The multi-task run also trains Deep Graph Infomax as a third
named task (no head). The two heads are also trained alone, for comparison: on the same pipeline
root, so that ingest, validation and sampling run once (the sampler's seeds do not depend on the
task) and every run trains on the same subgraphs."""
import json
import os

import numpy as np
import pytest

import mlflow_template
from tfx_gnn.components import lineage
from tfx_gnn.pipelines import config as config_lib
from tfx_gnn.pipelines import local_runner

HERE = os.path.dirname(__file__)
TASKS = {"venue": {"type": "root_node_multiclass", "loss_weight": 1.0},
         "score": {"type": "root_node_regression", "target_feature": "score",
                   "loss_weight": 0.5}}
# DGI (which feeds the model a second, corrupted graph) as one more task of the mapping.
INFOMAX = {"infomax": {"type": "dgi", "loss_weight": 0.2}}


def _tables(directory, n=400, seed=0):
  rng = np.random.default_rng(seed)
  features = rng.normal(0, 1, (n, 4))
  cited = np.stack([rng.choice(np.delete(np.arange(n), i), 3, replace=False) for i in range(n)])
  venue = np.digitize(features[cited, 1].mean(1), [-0.3, 0.3])  # 3 classes
  score = 2.0 * features[cited, 0].mean(1) + 0.01
  with open(directory / "nodes.csv", "w") as f:
    f.write("id,f0,f1,f2,f3,score,venue\n")
    f.writelines(f"n{i}," + ",".join(f"{v:.4f}" for v in (*features[i], score[i]))
                 + f",{venue[i]}\n" for i in range(n))
  with open(directory / "cites.csv", "w") as f:
    f.write("source,target\n")
    f.writelines(f"n{i},n{j}\n" for i in range(n) for j in cited[i])
  return {"tables": {"directory": str(directory),
                     "node_sets": {"node": {"file": "nodes.csv", "label_column": "venue"}},
                     "edge_sets": {"cites": {"file": "cites.csv", "source": "node",
                                             "target": "node"}},
                     "splits": {"ratios": {"train": 0.6, "eval": 0.2, "test": 0.2}}}}


def _run(root, data, **sections):
  raw = {"pipeline": {"name": "tfx-gnn-multi-task", "root": str(root)}, "data": data,
         "sampling": {"hops": 1, "fanouts": {"cites": 3}},
         "model": {"template": "mt_albis", "num_rounds": 1, "units": 32,
                   "message_dim": 32},
         "trainer": {"epochs": 15, "batch_size": 32, "learning_rate": 0.01},
         "evaluation": {"max_regression": 100.0},
         "attribution": {"enabled": False}, "report": {"enabled": False},
         "bulk_inference": {"enabled": False}}
  raw.update(sections)
  config = config_lib.parse_config(raw, "multi-task", HERE)
  mlflow_template.copy_into(config)
  summary = local_runner.run(config)
  # This run's artifacts (the root holds every run's): type -> uri.
  store = lineage.open_store(config.metadata_path)
  summary["uris"] = {ref.type: ref.uri for r in lineage.executions(store, summary["run_id"])
                     for ref in r.outputs}
  return summary


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  directory = tmp_path_factory.mktemp("multi_task")
  (directory / "data").mkdir()
  data = _tables(directory / "data")
  root = directory / "root"
  runs = {"multi": _run(root, data, tasks=TASKS | INFOMAX),
          "venue": _run(root, data, task=TASKS["venue"] | {"loss_weight": 1.0}),
          "score": _run(root, data, task={
              k: v for k, v in TASKS["score"].items() if k != "loss_weight"})}
  for name in ("venue", "score"):  # the multi-task run's ingest, validation and subgraphs
    for component in ("GraphIngest", "GraphValidator", "SubgraphSampler"):
      assert runs[name]["components"][component] == "CACHED", runs[name]["components"]
  return directory, data, runs


@pytest.mark.slow
def test_every_head_learns_and_matches_the_head_trained_alone(runs):
  _, _, runs = runs
  multi = runs["multi"]
  for component in ("GnnTrainer", "GnnEvaluator"):
    assert multi["components"][component] == "COMPLETE", multi["components"]
  with open(os.path.join(multi["uris"]["ModelEvaluation"], "metrics.json")) as f:
    result = json.load(f)
  venue, score = result["tasks"]["venue"], result["tasks"]["score"]
  alone_venue, alone_score = runs["venue"]["test_metrics"], runs["score"]["test_metrics"]
  print(f"\nmulti-task test: venue accuracy {venue['splits']['test']['accuracy']:.4f} "
        f"(majority {venue['trivial']['test']['accuracy']:.4f}; alone "
        f"{alone_venue['accuracy']:.4f}), score rmse {score['splits']['test']['rmse']:.4f} r2 "
        f"{score['splits']['test']['r2']:.4f} (mean predictor rmse "
        f"{score['trivial']['test']['rmse']:.4f}; alone rmse {alone_score['rmse']:.4f} r2 "
        f"{alone_score['r2']:.4f})")
  # Each head is gated on its own metric against its own trivial baseline.
  assert (venue["metric"], score["metric"]) == ("accuracy", "rmse")
  assert venue["blessed"] and score["blessed"] and result["blessed"] is True
  assert venue["splits"]["test"]["accuracy"] > venue["trivial"]["test"]["accuracy"] + 0.15
  assert score["splits"]["test"]["r2"] > 0.4
  # Close to the same heads trained alone. 80 test nodes: one is 0.0125 of accuracy, and the
  # difference of two such accuracies near 0.9 has a standard error of about 0.05 (CPU
  # threads make training not bitwise reproducible). With 16 units the two heads sharing the
  # model were systematically worse (venue 0.825-0.89 against 0.96-0.975 alone, 4 runs); with
  # 32 the gap was -0.0125 to 0.05 over 5 runs.
  assert venue["splits"]["test"]["accuracy"] > alone_venue["accuracy"] - 0.15
  assert score["splits"]["test"]["r2"] > alone_score["r2"] - 0.15
  # The summary and the report read the heads' metrics flattened.
  assert multi["test_metrics"]["venue/accuracy"] == venue["splits"]["test"]["accuracy"]


@pytest.mark.slow
def test_the_serving_signature_returns_every_head_and_needs_no_label(runs):
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components import graph_io
  multi = runs[2]["multi"]
  model_dir = os.path.join(multi["uris"]["Model"], "Format-Serving")
  examples = multi["uris"]["Examples"]
  schema = graph_io.read_schema_file(graph_io.subgraph_schema_path(examples))
  files = tf.io.gfile.glob(os.path.join(examples, "Split-test", "*"))
  serialized = next(iter(tf.data.TFRecordDataset(files).batch(8)))
  # The same subgraphs without either target.
  gtspec = tfgnn.create_graph_spec_from_schema_pb(schema)
  stripped = []
  for example in serialized:
    graph = tfgnn.parse_single_example(gtspec, example)
    features = {k: v for k, v in graph.node_sets["node"].features.items()
                if k not in ("label", "score")}
    unlabelled = graph.replace_features(node_sets={"node": features})
    assert "label" not in unlabelled.node_sets["node"].features
    stripped.append(tfgnn.write_example(unlabelled).SerializeToString())
  stripped = tf.constant(stripped)
  serve = tf.saved_model.load(model_dir).signatures["serving_default"]
  with_labels, without = serve(examples=serialized), serve(examples=stripped)
  assert set(without) == {"venue", "score"}
  assert without["venue"].shape == (8, 3) and without["score"].shape == (8, 1)
  for name in without:
    np.testing.assert_allclose(without[name].numpy(), with_labels[name].numpy(), rtol=1e-5)


@pytest.mark.slow
def test_deep_graph_infomax_as_a_named_task_shares_the_model(runs):
  """DGI (which feeds the model a second, corrupted graph) as one task of the mapping: trained
  by the multi-task run, it has no head to gate or serve (the heads tests above), and the
  classification head still learns."""
  multi = runs[2]["multi"]
  with open(os.path.join(multi["uris"]["ModelEvaluation"], "metrics.json")) as f:
    result = json.load(f)
  assert set(result["tasks"]) == {"venue", "score"}  # DGI has no head to serve or gate
  venue = result["tasks"]["venue"]
  print(f"\nvenue (+ score + dgi) test accuracy {venue['splits']['test']['accuracy']:.4f} "
        f"(majority {venue['trivial']['test']['accuracy']:.4f})")
  assert venue["splits"]["test"]["accuracy"] > venue["trivial"]["test"]["accuracy"] + 0.15
  assert multi["blessed"] is True


def test_every_head_must_beat_its_own_trivial_baseline_and_the_report_shows_each():
  """The gate of a multi-task model (evaluation.evaluate_heads): a head that learned nothing
  leaves the model unblessed whatever the other head does, and the reasons name it."""
  from tfx_gnn.components.gnn_evaluator import evaluation
  from tfx_gnn.components.gnn_evaluator.config import EvaluationConfig
  from tfx_gnn.components.run_report import report
  rng = np.random.default_rng(0)
  classes = rng.integers(0, 3, 200)
  targets = rng.normal(0, 1, 200)
  good_logits = np.eye(3)[classes] * 5.0
  heads = {"venue": {"type": "root_node_multiclass", "feature": "label", "num_classes": 3},
           "score": {"type": "root_node_regression", "feature": "score", "num_classes": 3}}

  def outputs(score_predictions):
    return {"eval": {"venue": (classes, good_logits), "score": (targets, score_predictions)}}

  config = EvaluationConfig(metric="accuracy")  # not a regression metric: rmse for `score`
  good = evaluation.evaluate_heads(heads, outputs(targets[:, None] + 0.1), config, "eval")
  assert good["blessed"] and good["tasks"]["score"]["metric"] == "rmse"
  assert good["tasks"]["venue"]["metric"] == "accuracy" and good["candidate"]["venue/accuracy"] == 1
  # The score head predicts a constant: no better than the mean predictor.
  flat = evaluation.evaluate_heads(heads, outputs(np.full([200, 1], 0.5)), config, "eval")
  assert not flat["blessed"] and flat["tasks"]["venue"]["blessed"]
  assert len(flat["reasons"]) == 1 and flat["reasons"][0].startswith(
      "score: rmse") and "does not beat the trivial baseline" in flat["reasons"][0]
  # A head's own gate (evaluation.tasks) replaces the shared options for it.
  lenient = EvaluationConfig(tasks={"score": {"metric": "r2", "min_margin_over_trivial": 0.0}})
  assert lenient.gate_for("score", "root_node_regression").metric == "r2"
  assert lenient.gate_for("venue", "root_node_multiclass").metric == "accuracy"
  page = report.render_html(report.RunData("p", "r", evaluation=flat, blessed=False), {})
  section = page[page.index("Tasks: each head"):]
  assert "root_node_regression" in section and "no: rmse" in section and "not blessed" in section
