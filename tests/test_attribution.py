"""Attribution: BFS hops, aggregation, the IG exporter against TF-GNN's own, the
Attributions artifact of the tiny pipeline run (tests/conftest.py's served_tiny_run), and the
acceptance check: on a small synthetic graph the planted paper features rank above the noise."""
import json
import os

import numpy as np
import pandas as pd
import pytest

import mlflow_template
from tfx_gnn.components.attribution import attribution
from tfx_gnn.components.attribution.attribution import UNREACHED, SubgraphAttribution

pytestmark = pytest.mark.slow  # runs pipelines, trains models or starts servers


def _edges(**sets):
  return {name: (src, tgt, np.array(s), np.array(t)) for name, (src, tgt, s, t) in sets.items()}


def test_hop_distances_undirected_and_as_sampled():
  # paper 0 (root) -cites-> papers 1, 2; author 0 -writes-> paper 2 (so sampled direction
  # from the root does not reach the author); paper 1 -cites-> paper 3.
  sizes = {"paper": 5, "author": 1}
  edges = _edges(cites=("paper", "paper", [0, 0, 1], [1, 2, 3]),
                 writes=("author", "paper", [0], [2]))
  undirected = attribution.hop_distances(sizes, edges, "paper", undirected=True)
  assert undirected["paper"].tolist() == [0, 1, 1, 2, UNREACHED]
  assert undirected["author"].tolist() == [2]
  sampled = attribution.hop_distances(sizes, edges, "paper", undirected=False)
  assert sampled["paper"].tolist() == [0, 1, 1, 2, UNREACHED]
  assert sampled["author"].tolist() == [UNREACHED]


def test_summarize_ranks_indices_and_averages_per_subgraph():
  def sub(values):
    return SubgraphAttribution(
        hops={"paper": np.array([0, 1])},
        values={"paper": {"feat": np.array(values, np.float64)}}, edges={})
  # Index 2 matters most (|-3|), then 0, then 1; two subgraphs, so means are halves of sums.
  summary = attribution.summarize([sub([[1.0, 0.0, -3.0], [0.5, 0.1, 0.0]]),
                                   sub([[1.0, 0.1, 3.0], [0.5, 0.0, 0.0]])])
  assert attribution.feature_ranks(summary.features, "paper", "feat") == {0: 2, 1: 3, 2: 1}
  rows = summary.features.set_index("index")
  assert rows.loc[2, "importance"] == pytest.approx(3.0)
  assert rows.loc[0, "importance"] == pytest.approx(1.5)
  assert summary.node_sets.share.tolist() == [1.0]
  hops = summary.hops.set_index("hop")
  assert hops.loc[0, "importance"] == pytest.approx(4.05)  # (4 + 4.1) / 2 subgraphs
  assert hops.loc[1, "num_nodes"] == 1.0
  with pytest.raises(KeyError, match="author"):
    attribution.feature_ranks(summary.features, "author", "feat")


def test_a_wide_node_set_draws_its_largest_features_only():
  """A bag of 1,902 words drew a 534-inch figure; the report draws the largest entries."""
  from tfx_gnn.components.attribution import report
  rng = np.random.default_rng(0)
  wide = pd.DataFrame({"node_set": "paper", "feature": "words", "index": range(1902),
                       "importance": rng.random(1902), "rank": 0})
  drawn, which = report.drawn_features(wide)
  assert len(drawn) == report.MAX_BARS and "of 1902" in which
  assert set(drawn["index"]) == set(wide.nlargest(report.MAX_BARS, "importance")["index"])
  narrow = wide.head(report.MAX_BARS)
  drawn, which = report.drawn_features(narrow)
  assert drawn is narrow and which == ""


def test_exporter_matches_tfgnn_integrated_gradients_and_handles_string_ids():
  """Our exporter's IG function equals TF-GNN's on float features, and also works when the
  graph has string ids (where TF-GNN's fails)."""
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tensorflow_gnn.runner.utils import attribution as tfgnn_attribution
  from tfx_gnn.components.gnn_trainer import ig_exporter as exporter

  def make(with_ids):
    features = {"x": tf.constant(np.random.default_rng(0).normal(size=(4, 3)), tf.float32)}
    if with_ids:
      features["#id"] = tf.constant(["a", "b", "c", "d"])
    return tfgnn.GraphTensor.from_pieces(
        context=tfgnn.Context.from_fields(features={"y": tf.constant([2], tf.int64)}),
        node_sets={"n": tfgnn.NodeSet.from_fields(sizes=tf.constant([4]), features=features)})

  def models(graph):
    inputs = tf.keras.Input(type_spec=graph.spec)
    labels = tfgnn.keras.layers.Readout(from_context=True, feature_name="y")(inputs)
    # The model sees every feature but the label, as the Runner's preprocessing does.
    stripped = tfgnn.keras.layers.MapFeatures(context_fn=lambda c: {})(inputs)
    preprocess = tf.keras.Model(inputs, (stripped, labels))
    model_in = tf.keras.Input(type_spec=stripped.spec)
    pooled = tfgnn.keras.layers.Pool(tfgnn.CONTEXT, "mean", node_set_name="n",
                                     feature_name="x")(model_in)
    hidden = tf.keras.layers.Dense(5, "tanh", kernel_initializer="glorot_uniform")(pooled)
    model = tf.keras.Model(model_in, tf.keras.layers.Dense(3)(hidden))
    model.compile(loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return preprocess, model

  tf.keras.utils.set_random_seed(0)
  graph = make(with_ids=False)
  preprocess, model = models(graph)
  kwargs = dict(output_name="g", random_counterfactual=False, steps=8)
  ours = exporter.integrated_gradients(preprocess, model, **kwargs)(graph)["g"]
  theirs = tfgnn_attribution.integrated_gradients(preprocess, model, **kwargs)(graph)["g"]
  np.testing.assert_allclose(ours.node_sets["n"]["x"].numpy(),
                             theirs.node_sets["n"]["x"].numpy(), rtol=1e-5, atol=1e-7)
  assert np.abs(ours.node_sets["n"]["x"].numpy()).sum() > 0

  with_ids = make(with_ids=True)
  preprocess_ids, model_ids = models(with_ids)
  model_ids.set_weights(model.get_weights())
  with pytest.raises(TypeError):
    tfgnn_attribution.integrated_gradients(preprocess_ids, model_ids, **kwargs)(with_ids)
  same = exporter.integrated_gradients(preprocess_ids, model_ids, **kwargs)(with_ids)["g"]
  np.testing.assert_allclose(same.node_sets["n"]["x"].numpy(),
                             ours.node_sets["n"]["x"].numpy(), rtol=1e-5, atol=1e-7)


def test_attributions_artifact_of_the_pipeline_run(served_tiny_run):
  from mlflow.tracking import MlflowClient
  from tfx_gnn.components.attribution import report
  uri = served_tiny_run.summary["attributions_uri"]
  files = set(os.listdir(uri))
  assert {"node_sets.parquet", "features.parquet", "hops.parquet", "summary.json",
          "examples.json", "report.html"} <= files
  summary = json.load(open(os.path.join(uri, report.SUMMARY_FILE)))
  assert summary["num_subgraphs"] == 60  # the whole test split (< num_subgraphs)
  assert summary["settings"]["counterfactual"] == "zeros"
  features = pd.read_parquet(os.path.join(uri, "features.parquet"))
  feature_dim = 32  # tests/configs/tiny.yaml
  paper = features[(features.node_set == "paper") & (features.feature == "feat")]
  assert sorted(paper["index"]) == list(range(feature_dim))
  assert sorted(paper["rank"]) == list(range(1, feature_dim + 1))
  assert (paper.importance > 0).all()
  shares = pd.read_parquet(os.path.join(uri, "node_sets.parquet"))
  assert shares.share.sum() == pytest.approx(1.0)
  # Two rounds of message passing: nodes three or more hops from the root cannot change
  # the prediction, so their attribution must be exactly zero; the root's own is not.
  hops = pd.read_parquet(os.path.join(uri, "hops.parquet"))
  num_rounds = served_tiny_run.config.model.num_rounds
  assert (hops[hops.hop > num_rounds].importance == 0).all()
  assert hops[hops.hop == 0].importance.sum() > 0
  html = open(os.path.join(uri, "report.html")).read()
  assert html.count("data:image/png;base64,") >= 3  # feature bars, hops, examples
  client = MlflowClient(tracking_uri=served_tiny_run.server.url)
  run_id = served_tiny_run.summary["mlflow_run_id"]
  logged = {a.path for a in client.list_artifacts(run_id, "attribution")}
  assert "attribution/report.html" in logged
  assert "attribution.share.paper" in client.get_run(run_id).data.metrics


def test_normalized_features_get_attributions_that_add_up():
  """`feature_normalization` runs before the model (a Runner feature processor), so integrated
  gradients interpolate the normalized features and the attributions add up to the loss's
  change from the all-zeros baseline. Inside the model, the sum normalization ignores scale:
  flat along the path but for its exploding gradient at zero (attributions of ~1e9 seen)."""
  import types
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components.gnn_trainer import ig_exporter as exporter
  from tfx_gnn.components.gnn_trainer import models

  counts = np.random.default_rng(0).integers(0, 4, size=(5, 6)).astype(np.float32)
  graph = tfgnn.GraphTensor.from_pieces(
      context=tfgnn.Context.from_fields(features={"y": tf.constant([1], tf.int64)}),
      node_sets={"n": tfgnn.NodeSet.from_fields(
          sizes=tf.constant([5]), features={"x": tf.constant(counts), "#id": tf.constant(
              ["a", "b", "c", "d", "e"])})})
  cfg = types.SimpleNamespace(feature_normalization="sum")

  def attribution_and_change(in_preprocessing: bool):
    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input(type_spec=graph.spec)
    labels = tfgnn.keras.layers.Readout(from_context=True, feature_name="y")(inputs)
    stripped = tfgnn.keras.layers.MapFeatures(context_fn=lambda c: {})(inputs)
    if in_preprocessing:
      stripped = models.normalize_features_processor(cfg)(stripped)
    preprocess = tf.keras.Model(inputs, (stripped, labels))
    model_in = tf.keras.Input(type_spec=stripped.spec)
    normalized = (model_in if in_preprocessing
                  else models.normalize_features_processor(cfg)(model_in))
    pooled = tfgnn.keras.layers.Pool(tfgnn.CONTEXT, "mean", node_set_name="n",
                                     feature_name="x")(normalized)
    hidden = tf.keras.layers.Dense(5, "tanh")(pooled)
    model = tf.keras.Model(model_in, tf.keras.layers.Dense(3)(hidden))
    model.compile(loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    steps = 64
    summed = exporter.integrated_gradients(preprocess, model, output_name="g",
                                           random_counterfactual=False, steps=steps)(graph)["g"]
    seen, y = preprocess(graph)
    x = seen.node_sets["n"]["x"]
    attribution = float(tf.reduce_sum(summed.node_sets["n"]["x"] / steps * x))

    def loss(features):
      return float(model.compiled_loss(y, model(seen.replace_features(
          node_sets={"n": {"x": features, "#id": seen.node_sets["n"]["#id"]}}))))

    return attribution, loss(x) - loss(tf.zeros_like(x))

  attribution, change = attribution_and_change(in_preprocessing=True)
  assert np.isclose(attribution, change, rtol=0.05, atol=1e-3), (attribution, change)
  attribution, change = attribution_and_change(in_preprocessing=False)
  assert abs(attribution) > 1e3 * max(abs(change), 1e-3), (attribution, change)


def test_normalize_features_processor_skips_ids_labels_and_aux_sets():
  import types
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components.gnn_trainer import models
  graph = tfgnn.GraphTensor.from_pieces(node_sets={
      "paper": tfgnn.NodeSet.from_fields(sizes=tf.constant([2]), features={
          "feat": tf.constant([[1.0, -3.0], [0.0, 0.0]]), "year": tf.constant([2.0, 4.0]),
          "label": tf.constant([3, 1]), "#id": tf.constant(["p", "q"])}),
      "_readout": tfgnn.NodeSet.from_fields(sizes=tf.constant([1]), features={
          "label": tf.constant([5.0])})})
  for mode, expected_feat, expected_year in [
      ("sum", [[1 / 6, -3 / 6], [0.0, 0.0]], [2 / 6, 1.0]),
      ("l2", [[1 / 14 ** 0.5, -3 / 14 ** 0.5], [0.0, 0.0]], [2 / 14 ** 0.5, 1.0])]:
    out = models.normalize_features_processor(
        types.SimpleNamespace(feature_normalization=mode), ["label"])(graph)
    paper = out.node_sets["paper"]
    np.testing.assert_allclose(paper["feat"].numpy(), expected_feat, rtol=1e-6)
    np.testing.assert_allclose(paper["year"].numpy(), expected_year, rtol=1e-6)
    assert paper["label"].numpy().tolist() == [3, 1]  # a label is never an input
    assert paper["#id"].numpy().tolist() == [b"p", b"q"]
    assert out.node_sets["_readout"]["label"].numpy().tolist() == [5.0]
  assert models.normalize_features_processor(
      types.SimpleNamespace(feature_normalization="none")) is None


def test_planted_features_rank_above_noise_features(tmp_path):
  """The synthetic generator plants class signal in some paper feature dimensions and none
  in the others; a trained model's attributions must rank every planted one above every
  noise one. A pipeline run of its own (tests/configs/attribution.yaml: papers only, so the
  model's inputs are paper features alone)."""
  from tfx_gnn.components.graph_ingest import synthetic
  from tfx_gnn.pipelines import config as config_lib, local_runner
  config = config_lib.load_config(
      os.path.join(os.path.dirname(__file__), "configs", "attribution.yaml"),
      {"pipeline": {"root": str(tmp_path)}})
  mlflow_template.copy_into(config)
  summary = local_runner.run(config)
  features = pd.read_parquet(os.path.join(summary["attributions_uri"], "features.parquet"))
  ranks = attribution.feature_ranks(features, "paper", "feat")
  dim = config.data.synthetic.feature_dim
  planted = {i: ranks[i] for i in synthetic.informative_features(dim)}
  noise = {i: ranks[i] for i in synthetic.noise_features(dim)}
  print(f"test accuracy {summary['test_metrics']['accuracy']:.3f}; ranks (1 = most important) "
        f"of planted dims {planted}, of noise dims {noise}")
  assert max(planted.values()) < min(noise.values()), (planted, noise)


def test_time_budget_stops_starting_batches(served_tiny_run):
  """`attribution.time_budget_s`: once spent, no further batch starts (the first always runs)."""
  import glob
  from tfx.utils import path_utils
  root = served_tiny_run.config.pipeline.root
  test_split = sorted(glob.glob(os.path.join(root, "**", "Split-test"), recursive=True))[0]
  model_dir = path_utils.serving_model_path(served_tiny_run.summary["model_uri"])
  files = sorted(glob.glob(os.path.join(test_split, "*")))
  kwargs = dict(steps=served_tiny_run.config.trainer.integrated_gradients.steps,
                num_subgraphs=60, batch_size=16)
  assert len(attribution.attribute(model_dir, files, "paper", time_budget_s=1e-9,
                                   **kwargs)) == 16
  assert len(attribution.attribute(model_dir, files, "paper", **kwargs)) == 60


def test_attributions_are_of_the_preprocessed_features_the_model_reads(served_tiny_run, tmp_path):
  """The default model normalizes each node's features in preprocessing, so its input, and with
  it every attribution, is the same when a subgraph's features are all scaled by 10: the
  attributions multiply the gradients by the normalized features, not the raw ones. The root
  labels come from the export, equal to the serialized subgraphs' own."""
  import glob
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tfx.utils import path_utils
  from tfx_gnn.components import graph_io
  root = served_tiny_run.config.pipeline.root
  test_split = sorted(glob.glob(os.path.join(root, "**", "Split-test"), recursive=True))[0]
  assert served_tiny_run.config.model.feature_normalization == "sum"
  gtspec = tfgnn.create_graph_spec_from_schema_pb(graph_io.read_schema_file(
      graph_io.subgraph_schema_path(os.path.dirname(test_split))))
  files = sorted(glob.glob(os.path.join(test_split, "*")))
  examples = list(tf.data.TFRecordDataset(files).take(16).as_numpy_iterator())
  scaled_file = str(tmp_path / "scaled.tfrecord")
  labels = []
  with tf.io.TFRecordWriter(scaled_file) as writer:
    for example in examples:
      graph = tfgnn.parse_single_example(gtspec, example)
      labels.append(int(graph.node_sets["paper"]["label"][0]))
      scaled = graph.replace_features(node_sets={
          name: {f: v * 10 if v.dtype.is_floating else v for f, v in s.features.items()}
          for name, s in graph.node_sets.items()})
      writer.write(tfgnn.write_example(scaled).SerializeToString())

  model_dir = path_utils.serving_model_path(served_tiny_run.summary["model_uri"])
  kwargs = dict(steps=served_tiny_run.config.trainer.integrated_gradients.steps,
                num_subgraphs=16, batch_size=8)
  plain = attribution.attribute(model_dir, files, "paper", **kwargs)  # the same first 16
  scaled = attribution.attribute(model_dir, [scaled_file], "paper", **kwargs)
  assert [sub.label for sub in plain] == labels == [sub.label for sub in scaled]
  total = 0.0
  for a, b in zip(plain, scaled):
    for name, features in a.values.items():
      for feature, values in features.items():
        np.testing.assert_allclose(b.values[name][feature], values, rtol=1e-4, atol=1e-7)
        total += np.abs(values).sum()
  assert total > 0
