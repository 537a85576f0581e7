"""Real OGBN-MAG's path (pipelines/configs/mag.yaml), on a small MAG-shaped graph written in the
on-disk format of TF-GNN's `tfgnn_convert_ogb_dataset`: sharded TFRecords, `#id`s like
b"paper0", `labels` and `year` as [1] int64, forward edge sets only. Ingest, the year split,
the added `written` edge set and the fast sampler with TF-GNN's MAG sampling spec; no TFX run
(the pipeline itself is covered on the tiny graphs)."""
import os

import numpy as np
import pydantic
import pytest

from tfx_gnn.components import graph_io
from tfx_gnn.components.graph_ingest import ingest
from tfx_gnn.pipelines import config as config_lib
from tfx_gnn.components.graph_ingest import synthetic

HERE = os.path.dirname(__file__)
MAG_CONFIG = os.path.join(HERE, "..", "pipelines", "configs", "mag.yaml")
PAPERS = 400
CLASSES = 8  # labels below the config's num_classes (349)


@pytest.fixture(scope="module")
def ogb_dir(tmp_path_factory):
  out = tmp_path_factory.mktemp("ogbn-mag") / "graph"
  # A small shard size, so that the sets are sharded as the converter shards big ones.
  synthetic.write_ogb_unigraph(str(out), num_papers=PAPERS, num_classes=CLASSES,
                               target_shard_size=20_000, seed=3)
  return str(out)


@pytest.fixture(scope="module")
def config(ogb_dir, tmp_path_factory):
  return config_lib.load_config(MAG_CONFIG, {
      "pipeline": {"root": str(tmp_path_factory.mktemp("run"))},
      "data": {"unigraph": {"schema_file": os.path.join(ogb_dir, "schema.pbtxt")}}})


@pytest.fixture(scope="module")
def graph(config, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("artifact"))
  ingest.ingest(config.data, out, str(tmp_path_factory.mktemp("scratch")))
  return out, graph_io.read_graph(out)


def test_written_like_the_converter(ogb_dir):
  from tensorflow_gnn.data import unigraph
  schema = unigraph.read_schema(os.path.join(ogb_dir, "schema.pbtxt"))
  assert sorted(schema.edge_sets) == ["affiliated_with", "cites", "has_topic", "writes"]
  paper = schema.node_sets["paper"]
  assert os.path.basename(paper.metadata.filename).startswith("nodes-paper.tfrecords@")
  assert sorted(paper.features) == ["#id", "feat", "labels", "year"]
  shards = int(paper.metadata.filename.split("@")[1])
  files = sorted(f for f in os.listdir(ogb_dir) if f.startswith("nodes-paper.tfrecords-"))
  assert shards > 1 and files[-1] == f"nodes-paper.tfrecords-{shards - 1:05d}-of-{shards:05d}"
  node_id, example = next(iter(unigraph.DictStreams.iter_nodes_via_schema(schema)["paper"]))
  assert node_id.startswith(b"paper")  # DictStreams reads the shards in glob order
  assert len(example.features.feature["feat"].float_list.value) == 128


def test_ingest_year_split_labels_and_reverse(graph):
  _, g = graph
  expected = synthetic.generate_graph(num_papers=PAPERS, num_classes=CLASSES,
                                      feature_dim=128, seed=3)
  paper = g.node_sets["paper"]
  assert len(paper) == PAPERS and paper.ids[0] == "paper0"
  np.testing.assert_array_equal(paper.features["labels"], expected["labels"])
  assert paper.features["feat"].shape == (PAPERS, 128)
  assert "#id" not in paper.features
  assert g.label == graph_io.Label("paper", "labels", 349)
  # The generator's split, recovered from the years (train < 2018, eval 2018, test 2019).
  for split, name in (("train", "train"), ("eval", "valid"), ("test", "test")):
    want = sorted(f"paper{i}" for i in np.flatnonzero(expected["split"] == name))
    assert sorted(g.splits[split]) == want
  years = paper.features["year"][:, 0]
  assert years[np.isin(paper.ids, g.splits["train"])].max() < 2018
  written, writes = g.edge_sets["written"], g.edge_sets["writes"]
  assert (written.source_set, written.target_set, written.reverse_of) == (
      "paper", "author", "writes")
  np.testing.assert_array_equal(written.sources, writes.targets)
  assert len(writes) == len(expected["writes"][0])


def test_reverse_already_in_the_schema(ogb_dir, config, tmp_path):
  # TF-GNN's MAG example ships a schema that declares `written`; `reverse` then adds nothing.
  text = open(os.path.join(ogb_dir, "schema.pbtxt")).read()
  writes_file = text.split('filename: "edges-writes.tfrecords', 1)[1].split('"', 1)[0]
  extended = os.path.join(ogb_dir, "schema_with_written.pbtxt")
  with open(extended, "w") as f:
    f.write(text + 'edge_sets { key: "written" value { source: "paper" target: "author" '
            f'metadata {{ filename: "edges-writes.tfrecords{writes_file}" '
            'extra { key: "edge_type" value: "reversed" } } } }\n')
  spec = config.data.unigraph.model_copy(update={"schema_file": extended})
  g = ingest.unigraph_to_graph(spec)
  assert g.edge_sets["written"].reverse_of == "writes"
  bad = spec.model_copy(update={"reverse": {"cites": "written"}})
  with pytest.raises(ingest.IngestError, match="already has an edge set 'written', which is "
                     "not 'cites' reversed"):
    ingest.unigraph_to_graph(bad)


def test_mag_sampling_spec_with_the_fast_engine(config, graph):
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components.subgraph_sampler import fast_sampler, sampling
  graph_dir, g = graph
  schema = graph_io.read_schema(graph_dir)
  spec = sampling.spec_from_config(config.sampling, schema, "paper")
  assert [(op.edge_set_name, op.sample_size) for op in spec.sampling_ops] == [
      ("cites", 32), ("written", 8), ("writes", 16), ("affiliated_with", 16), ("has_topic", 16)]
  sampler = fast_sampler.FastSampler(g, spec, seed=0, schema=schema)
  seeds = list(g.splits["test"][:16])
  graphs = tfgnn.parse_example(sampler.graph_tensor_spec(),
                               tf.constant(sampler.sample(seeds, salt="test")))
  assert graphs.shape == [16]
  assert set(graphs.edge_sets) == {"cites", "written", "writes", "affiliated_with", "has_topic"}
  # The root comes first, with its own label.
  first = tfgnn.gather_first_node(graphs.merge_batch_to_components(), "paper",
                                  feature_name="labels")
  rows = [int(s[len("paper"):]) for s in seeds]
  np.testing.assert_array_equal(first.numpy(), g.node_sets["paper"].features["labels"][rows])


def test_spec_errors_name_the_op(graph):
  from tfx_gnn.components.subgraph_sampler import sampling
  graph_dir, _ = graph
  schema = graph_io.read_schema(graph_dir)
  bad = ('seed_op { op_name: "seed" node_set_name: "paper" }\n'
         'sampling_ops { op_name: "a" input_op_names: "seed" edge_set_name: "writes" '
         'sample_size: 2 }')
  with pytest.raises(sampling.SamplingSpecError, match="op 'a'.*yields 'paper'.*'author'"):
    sampling.parse_sampling_spec(bad, schema, "paper")
  with pytest.raises(sampling.SamplingSpecError, match="seed op starts from node set 'author'"):
    sampling.parse_sampling_spec('seed_op { op_name: "s" node_set_name: "author" }', schema,
                                 "paper")


def test_config_errors(tmp_path):
  base = {"data": {"synthetic": {}}}
  with pytest.raises(config_lib.ConfigError, match="either `fanouts`.*not both"):
    config_lib.parse_config({**base, "sampling": {"fanouts": {"cites": 2},
                                                  "spec_text": "seed_op {}"}})
  with pytest.raises(config_lib.ConfigError, match="spec_file .*cannot read"):
    config_lib.parse_config({**base, "sampling": {"spec_file": "missing.pbtxt"}},
                            base_dir=str(tmp_path))
  with pytest.raises(pydantic.ValidationError, match="exactly one of `file`, `ratios` or `feat"):
    config_lib.SplitTable.model_validate({"file": "s.csv", "feature": "year",
                                          "boundaries": {"eval": 1, "test": 2}})
  with pytest.raises(pydantic.ValidationError, match="eval .2019.0. must not be above test"):
    config_lib.SplitTable.model_validate({"feature": "year",
                                          "boundaries": {"eval": 2019, "test": 2018}})


def test_split_feature_errors():
  split = config_lib.SplitTable(feature="year", boundaries={"eval": 2018, "test": 2019})
  ids = np.array(["p0", "p1", "p2"], dtype=object)
  got = ingest.make_splits(split, ids, ".", {"year": np.array([[2017], [2018], [2019]])})
  assert {k: list(v) for k, v in got.items()} == {"train": ["p0"], "eval": ["p1"],
                                                   "test": ["p2"]}
  with pytest.raises(ingest.IngestError, match="'year' is not a feature.*features: feat"):
    ingest.make_splits(split, ids, ".", {"feat": np.zeros((3, 2))}, "node set 'paper'")
  with pytest.raises(ingest.IngestError, match="empty for node 'p1'"):
    ingest.make_splits(split, ids, ".", {"year": np.array([2017.0, np.nan, 2019.0])})
