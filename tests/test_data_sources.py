"""Tables wherever they live (components/graph_ingest/tables.py) and OGB's raw layout
(components/graph_ingest/ogb.py).

Fast tests read local files in every format and a small OGB tree written here in OGB's exact
layout. The slow ones start a local S3-compatible server (moto's server mode, a separate
process on a loopback port, spoken to over real HTTP, with IAM authentication on) and run the
tiny pipeline from s3:// tables, and from the OGB tree; bad input (a missing bucket or object,
wrong credentials, a truncated Parquet file, a TFRecord file of another schema, an OGB tree
with a missing file) fails with a message naming the URL or file, and nothing is published.
"""
import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mlflow_template
from tfx_gnn.components import graph_io
from tfx_gnn.components.graph_ingest import ingest, ogb, tables
from tfx_gnn.pipelines import config as config_lib

HERE = os.path.dirname(__file__)
TINY = os.path.join(HERE, "configs", "tiny.yaml")
BUCKET = "tfx-gnn-data"


# ---------------------------------------------------------------- writing test tables
def write_tfrecord(path, rows, compression=None):
  """tf.Examples, one per row (a dict of feature -> list of ints, floats or bytes)."""
  import tensorflow as tf
  with tf.io.TFRecordWriter(str(path), options=compression) as writer:
    for row in rows:
      feature = {}
      for name, values in row.items():
        if isinstance(values[0], bytes):
          feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
        elif isinstance(values[0], float):
          feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
        else:
          feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
      writer.write(tf.train.Example(features=tf.train.Features(feature=feature))
                   .SerializeToString())


def paper_rows(lo, hi):
  return [{"id": [f"p{i}".encode()], "year": [2000 + i], "feat": [float(i), 0.5, -1.0]}
          for i in range(lo, hi)]


# ---------------------------------------------------------------- each format, locally
def test_csv_and_csv_gz(tmp_path):
  (tmp_path / "a.csv").write_text("id,x\n007,1.5\n8,2\n")
  with gzip.open(tmp_path / "a.csv.gz", "wt") as f:
    f.write("id,x\n007,1.5\n8,2\n")
  for name in ("a.csv", "a.csv.gz"):
    table = tables.read(str(tmp_path / name), string_columns=["id"])
    assert table.data.column("id").to_pylist() == ["007", "8"]  # ids stay strings
    assert table.data.column("x").to_pylist() == [1.5, 2.0]
    assert table.where(1) == "line 3"
  headerless = tables.read(str(tmp_path / "a.csv"), header=False)
  assert headerless.data.column_names == ["0", "1"] and headerless.data.num_rows == 3


def test_parquet_file_glob_and_partitioned_directory(tmp_path):
  frame = pd.DataFrame({"id": [f"p{i}" for i in range(6)], "x": np.arange(6.0)})
  pq.write_table(pa.Table.from_pandas(frame[:3]), tmp_path / "part-0.parquet")
  pq.write_table(pa.Table.from_pandas(frame[3:]), tmp_path / "part-1.parquet")
  one = tables.read(str(tmp_path / "part-0.parquet"))
  assert one.data.column("id").to_pylist() == ["p0", "p1", "p2"] and one.where(0) == "row 1"
  glob = tables.read(str(tmp_path / "part-*.parquet"))
  assert glob.data.column("x").to_pylist() == list(np.arange(6.0))
  assert glob.where(4) == f"row 2 of {tmp_path}/part-1.parquet"
  # A hive-partitioned directory (as Spark writes it, with its _SUCCESS marker).
  dataset = tmp_path / "papers"
  for year, rows in ((2019, frame[:2]), (2020, frame[2:])):
    (dataset / f"year={year}").mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False),
                   dataset / f"year={year}" / "part-0.snappy.parquet")
  (dataset / "_SUCCESS").write_text("")
  table = tables.read(str(dataset))
  assert table.data.column("year").to_pylist() == [2019, 2019] + [2020] * 4
  assert table.data.column("id").to_pylist() == list(frame["id"])
  # ... and as a graph's node table: the partition column is a feature like the others.
  graph_dir = tmp_path / "graph"
  graph_dir.mkdir()
  (graph_dir / "cites.csv").write_text("source,target\np0,p1\np2,p5\n")
  spec = config_lib.TablesSource.model_validate({
      "directory": str(graph_dir),
      "node_sets": {"paper": {"file": str(dataset)}},
      "edge_sets": {"cites": {"file": "cites.csv", "source": "paper", "target": "paper"}}})
  graph = ingest.tables_to_graph(spec)
  np.testing.assert_array_equal(graph.node_sets["paper"].features["year"], [2019] * 2 + [2020] * 4)


def test_tfrecord_file_glob_and_gzip(tmp_path):
  write_tfrecord(tmp_path / "papers-0.tfrecord", paper_rows(0, 3))
  write_tfrecord(tmp_path / "papers-1.tfrecord", paper_rows(3, 5))
  write_tfrecord(tmp_path / "papers.tfrecord.gz", paper_rows(0, 5), compression="GZIP")
  for url in (str(tmp_path / "papers-*.tfrecord"), str(tmp_path / "papers.tfrecord.gz")):
    table = tables.read(url)
    assert table.data.column("id").to_pylist() == [f"p{i}" for i in range(5)]
    assert table.data.column("year").type == pa.int64()
    assert table.data.column("feat").to_pylist()[4] == [4.0, 0.5, -1.0]
  assert tables.read(str(tmp_path / "papers-*.tfrecord")).where(3) == (
      f"record 1 of {tmp_path}/papers-1.tfrecord")
  # Features become columns of a node table: vectors, scalars and string ids.
  (tmp_path / "cites.csv").write_text("source,target\np0,p1\n")
  (tmp_path / "split.csv").write_text("id,split\np0,train\np1,train\np2,valid\np3,test\n")
  spec = config_lib.TablesSource.model_validate({
      "directory": str(tmp_path),
      "node_sets": {"paper": {"file": "papers-*.tfrecord", "label_column": "year"}},
      "edge_sets": {"cites": {"file": "cites.csv", "source": "paper", "target": "paper"}},
      "splits": {"file": "split.csv"}, "num_classes": 2010})
  paper = ingest.tables_to_graph(spec).node_sets["paper"]
  assert paper.features["feat"].shape == (5, 3) and paper.features["feat"].dtype == np.float32
  np.testing.assert_array_equal(paper.features["label"], 2000 + np.arange(5))
  # An explicit format reads a file whatever its name.
  shutil.copy(tmp_path / "papers-0.tfrecord", tmp_path / "papers.data")
  assert tables.read(str(tmp_path / "papers.data"), fmt="tfrecord").data.num_rows == 3


def test_a_record_without_a_feature_is_an_empty_cell(tmp_path):
  rows = paper_rows(0, 3)
  del rows[1]["year"]
  write_tfrecord(tmp_path / "p.tfrecord", rows)
  assert tables.read(str(tmp_path / "p.tfrecord")).data.column("year").to_pylist() == [
      2000, None, 2002]


def test_open_url_and_file_info_for_fingerprints(tmp_path):
  (tmp_path / "a.csv").write_text("id\n1\n")
  fs, path = tables.open_url(str(tmp_path / "a.csv"))
  assert fs.info(path)["size"] == 5
  fs, files, fmt = tables.list_files(str(tmp_path / "*.csv"))
  assert files == [path] and fmt == "csv"
  assert tables.join("s3://b/graph", "x.csv") == "s3://b/graph/x.csv"
  assert tables.join("s3://b/graph", "gs://c/y.csv") == "gs://c/y.csv"
  assert tables.join(str(tmp_path), "/abs/z.csv") == "/abs/z.csv"


# ---------------------------------------------------------------- bad tables, locally
def test_truncated_parquet_names_the_file(tmp_path):
  pq.write_table(pa.table({"id": ["a", "b"]}), tmp_path / "part-0.parquet")
  pq.write_table(pa.table({"id": ["c"]}), tmp_path / "part-1.parquet")
  data = (tmp_path / "part-1.parquet").read_bytes()
  (tmp_path / "part-1.parquet").write_bytes(data[:len(data) // 2])
  with pytest.raises(ingest.IngestError, match=f"{tmp_path}/part-1.parquet: cannot read "
                     "parquet .truncated or not a Parquet file"):
    tables.read(str(tmp_path / "*.parquet"))


def test_tfrecord_of_another_schema_names_the_file(tmp_path):
  write_tfrecord(tmp_path / "papers-0.tfrecord", paper_rows(0, 3))
  write_tfrecord(tmp_path / "papers-1.tfrecord", [{"id": [b"p9"], "venue": [3]}])
  with pytest.raises(ingest.IngestError) as info:
    tables.read(str(tmp_path / "papers-*.tfrecord"))
  message = str(info.value)
  assert message.startswith(f"{tmp_path}/papers-1.tfrecord: its columns id (bytes_list), "
                             "venue (int64_list) differ from those of")
  assert "papers-0.tfrecord" in message and "feat (float_list)" in message
  # A feature of another kind within a file; a file that is not a TFRecord; a cut-off one.
  write_tfrecord(tmp_path / "mixed.tfrecord", paper_rows(0, 2) + [
      {"id": [b"p2"], "year": [1.5], "feat": [1.0, 2.0, 3.0]}])
  with pytest.raises(ingest.IngestError, match="mixed.tfrecord: records 1-3 do not match "
                     "record 1's features .*year"):
    tables.read(str(tmp_path / "mixed.tfrecord"))
  (tmp_path / "text.tfrecord").write_text("id,year\np1,2000\n")
  with pytest.raises(ingest.IngestError, match="text.tfrecord: not a TFRecord file"):
    tables.read(str(tmp_path / "text.tfrecord"))
  data = (tmp_path / "papers-0.tfrecord").read_bytes()
  (tmp_path / "cut.tfrecord").write_bytes(data[:-7])
  with pytest.raises(ingest.IngestError, match="cut.tfrecord: truncated TFRecord file "
                     r"\(record 3 is cut short\)"):
    tables.read(str(tmp_path / "cut.tfrecord"))


def test_missing_files_and_unknown_formats(tmp_path):
  with pytest.raises(ingest.IngestError, match=f"{tmp_path}/nope.csv: file not found"):
    tables.read(str(tmp_path / "nope.csv"))
  with pytest.raises(ingest.IngestError, match=r"\*.parquet: no files match"):
    tables.read(str(tmp_path / "*.parquet"))
  (tmp_path / "x.json").write_text("{}")
  with pytest.raises(ingest.IngestError, match="x.json: unsupported table format"):
    tables.read(str(tmp_path / "x.json"))
  mixed = tmp_path / "mixed"
  mixed.mkdir()
  (mixed / "a.csv").write_text("id\n1\n")
  pq.write_table(pa.table({"id": ["b"]}), mixed / "b.parquet")
  with pytest.raises(ingest.IngestError, match="holds csv files and .*b.parquet"):
    tables.read(str(mixed))


# ---------------------------------------------------------------- OGB's raw layout
OGB_COUNTS = {"author": 12, "field_of_study": 5, "institution": 3, "paper": 40}
OGB_FEATURE_DIM = 4
OGB_CLASSES = 3


def _gz_csv(path, rows, header=None):
  """As OGB's files were written (pandas, gzip), with or without a header row."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  frame = pd.DataFrame(rows, columns=header)
  frame.to_csv(path, index=False, header=header is not None, compression="gzip")


def write_ogb_tree(root, name="ogbn-mag", skip=()):
  """A small heterogeneous dataset exactly as OGB's loader extracts ogbn-mag under `root`:
  returns the arrays it wrote."""
  rng = np.random.default_rng(0)
  base = os.path.join(root, name.replace("-", "_"))
  n = OGB_COUNTS
  labels = np.arange(n["paper"]) % OGB_CLASSES
  feat = (rng.normal(size=(n["paper"], OGB_FEATURE_DIM)) + labels[:, None]).astype(np.float32)
  years = 2010 + np.arange(n["paper"]) % 10  # 2010 .. 2019
  relations = {
      ("author", "affiliated_with", "institution"): (np.arange(n["author"]),
                                                     np.arange(n["author"]) % 3),
      ("author", "writes", "paper"): (np.arange(n["paper"]) % n["author"],
                                      np.arange(n["paper"])),
      ("paper", "cites", "paper"): (np.arange(n["paper"]), (np.arange(n["paper"]) + 1)
                                    % n["paper"]),
      ("paper", "has_topic", "field_of_study"): (np.arange(n["paper"]),
                                                 labels + (labels > 0)),
  }
  files = {
      "raw/num-node-dict.csv.gz": lambda p: _gz_csv(p, [list(n.values())], list(n)),
      "raw/triplet-type-list.csv.gz": lambda p: _gz_csv(p, [list(t) for t in relations]),
      "raw/node-feat/paper/node-feat.csv.gz": lambda p: _gz_csv(p, feat),
      "raw/node-feat/paper/node_year.csv.gz": lambda p: _gz_csv(p, years[:, None]),
      "raw/nodetype-has-label.csv.gz": lambda p: _gz_csv(
          p, [[t == "paper" for t in n]], list(n)),
      "raw/node-label/paper/node-label.csv.gz": lambda p: _gz_csv(p, labels[:, None]),
      "split/time/nodetype-has-split.csv.gz": lambda p: _gz_csv(
          p, [[t == "paper" for t in n]], list(n)),
  }
  # OGB's time split: train before 2018, valid 2018, test 2019.
  for split, mask in (("train", years < 2018), ("valid", years == 2018), ("test", years == 2019)):
    files[f"split/time/paper/{split}.csv.gz"] = (
        lambda p, ids=np.flatnonzero(mask): _gz_csv(p, ids[:, None]))
  for (head, rel, tail), (src, dst) in relations.items():
    folder = f"raw/relations/{head}___{rel}___{tail}"
    files[f"{folder}/edge.csv.gz"] = lambda p, e=np.stack([src, dst], 1): _gz_csv(p, e)
    files[f"{folder}/num-edge-list.csv.gz"] = lambda p, k=len(src): _gz_csv(p, [[k]])
    files[f"{folder}/edge_reltype.csv.gz"] = (
        lambda p, k=len(src), r=len(files): _gz_csv(p, np.full((k, 1), r)))
  for path, write in files.items():
    if path not in skip:
      write(os.path.join(base, path))
  open(os.path.join(base, "RELEASE_v2.txt"), "w").close()
  return {"labels": labels, "feat": feat, "years": years, "relations": relations}


def test_ogb_tree_reads_as_ogbs_loader(tmp_path):
  expected = write_ogb_tree(str(tmp_path))
  spec = config_lib.OgbSource(name="ogbn-mag", root=str(tmp_path),
                              reverse={"writes": "written"})
  graph = ogb.ogb_to_graph(spec)
  assert {k: len(v) for k, v in graph.node_sets.items()} == OGB_COUNTS
  paper = graph.node_sets["paper"]
  assert list(paper.ids[:3]) == ["0", "1", "2"]  # OGB's node indices
  np.testing.assert_allclose(paper.features["feat"], expected["feat"], rtol=1e-6)
  np.testing.assert_array_equal(paper.features["year"], expected["years"])
  np.testing.assert_array_equal(paper.features["label"], expected["labels"])
  assert graph.label == graph_io.Label("paper", "label", OGB_CLASSES)
  assert sorted(graph.edge_sets) == ["affiliated_with", "cites", "has_topic", "writes",
                                     "written"]
  for (head, rel, tail), (src, dst) in expected["relations"].items():
    edges = graph.edge_sets[rel]
    assert (edges.source_set, edges.target_set) == (head, tail)
    assert list(edges.sources) == [str(i) for i in src]
    assert list(edges.targets) == [str(i) for i in dst]
  written = graph.edge_sets["written"]
  assert (written.source_set, written.target_set, written.reverse_of) == (
      "paper", "author", "writes")
  years = expected["years"]
  assert list(graph.splits["train"]) == [str(i) for i in np.flatnonzero(years < 2018)]
  assert list(graph.splits["eval"]) == [str(i) for i in np.flatnonzero(years == 2018)]
  assert list(graph.splits["test"]) == [str(i) for i in np.flatnonzero(years == 2019)]


def test_ogb_homogeneous_layout(tmp_path):
  raw = tmp_path / "ogbn_arxiv" / "raw"
  _gz_csv(str(raw / "num-node-list.csv.gz"), [[6]])
  _gz_csv(str(raw / "edge.csv.gz"), [[0, 1], [1, 2], [4, 5]])
  _gz_csv(str(raw / "num-edge-list.csv.gz"), [[3]])
  _gz_csv(str(raw / "node-feat.csv.gz"), np.eye(6, 2))
  _gz_csv(str(raw / "node_year.csv.gz"), [[2000 + i] for i in range(6)])
  _gz_csv(str(raw / "node-label.csv.gz"), [[i % 2] for i in range(6)])
  for split, ids in (("train", [0, 1, 2]), ("valid", [3]), ("test", [4, 5])):
    _gz_csv(str(tmp_path / "ogbn_arxiv" / "split" / "time" / f"{split}.csv.gz"),
            [[i] for i in ids])
  graph = ogb.ogb_to_graph(config_lib.OgbSource(name="ogbn-arxiv", root=str(tmp_path)))
  assert graph.counts() == {"node_sets": {"node": 6}, "edge_sets": {"edge": 3},
                            "splits": {"train": 3, "eval": 1, "test": 2}}
  assert graph.node_sets["node"].features["feat"].shape == (6, 2)
  assert graph.label == graph_io.Label("node", "label", 2)


@pytest.mark.parametrize("missing", ["raw/relations/author___writes___paper/edge.csv.gz",
                                     "raw/node-label/paper/node-label.csv.gz",
                                     "split/time/paper/valid.csv.gz",
                                     "raw/num-node-dict.csv.gz"])
def test_ogb_tree_with_a_missing_file(tmp_path, missing):
  write_ogb_tree(str(tmp_path), skip=(missing,))
  spec = config_lib.OgbSource(name="ogbn-mag", root=str(tmp_path))
  out = tmp_path / "out"
  with pytest.raises(ingest.IngestError) as info:
    ingest.ingest(config_lib.DataConfig(ogb=spec), str(out), str(tmp_path / "scratch"))
  assert f"{tmp_path}/ogbn_mag/{missing}: file not found" in str(info.value)
  assert "OGB's loader" in str(info.value)
  assert not out.exists()


def test_ogb_config(tmp_path):
  raw = {"data": {"ogb": {"name": "ogbn-mag", "root": "datasets"}},
         "sampling": {"fanouts": {"cites": 2}}}
  config = config_lib.parse_config(raw, base_dir=str(tmp_path))
  assert config.data.ogb.root == str(tmp_path / "datasets")  # relative to the config file
  raw["data"]["ogb"]["root"] = "s3://bucket/ogb"
  assert config_lib.parse_config(raw).data.ogb.root == "s3://bucket/ogb"  # URLs stay
  with pytest.raises(config_lib.ConfigError, match="give exactly one of .*ogb"):
    config_lib.parse_config({**raw, "data": {"ogb": raw["data"]["ogb"], "synthetic": {}}})
  with pytest.raises(config_lib.ConfigError, match="data.ogb.name"):
    config_lib.parse_config({**raw, "data": {"ogb": {"name": "mag", "root": "x"}}})
  mag = config_lib.load_config(os.path.join(HERE, "..", "pipelines", "configs",
                                            "mag_ogb.yaml"))
  assert mag.data.ogb.name == "ogbn-mag" and mag.data.ogb.reverse == {"writes": "written"}


# ---------------------------------------------------------------- a local S3 server
class MotoServer:
  """moto's S3-compatible server in its own process on a free loopback port, with IAM
  authentication on: requests need a key that the server issued (and a correct signature)."""

  def __init__(self, log_path):
    with socket.socket() as s:
      s.bind(("127.0.0.1", 0))
      self.port = s.getsockname()[1]
    self.url = f"http://127.0.0.1:{self.port}"
    # The first 3 requests (creating the user, its policy and its key) need no credentials.
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
    self._log = open(log_path, "wb")
    self.process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
        env=env, stdout=self._log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while True:
      try:
        urllib.request.urlopen(self.url + "/moto-api/", timeout=2)
        break
      except OSError:
        if time.time() > deadline or self.process.poll() is not None:
          self.stop()
          raise RuntimeError(f"moto server did not start; see {log_path}")
        time.sleep(0.2)
    import boto3
    iam = boto3.client("iam", endpoint_url=self.url, region_name="us-east-1",
                       aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
    iam.create_user(UserName="pipeline")
    iam.put_user_policy(UserName="pipeline", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="pipeline")["AccessKey"]
    self.key_id, self.secret = key["AccessKeyId"], key["SecretAccessKey"]

  def env(self, **override) -> dict:
    env = {"AWS_ACCESS_KEY_ID": self.key_id, "AWS_SECRET_ACCESS_KEY": self.secret,
           "AWS_ENDPOINT_URL": self.url, "AWS_DEFAULT_REGION": "us-east-1"}
    env.update(override)
    return env

  def stop(self):
    if self.process.poll() is None:
      self.process.terminate()
      try:
        self.process.wait(timeout=10)
      except subprocess.TimeoutExpired:
        self.process.kill()
        self.process.wait()
    self._log.close()


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
  server = MotoServer(str(tmp_path_factory.mktemp("moto") / "moto.log"))
  try:
    yield server
  finally:
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
  """The server's credentials and endpoint in the environment, as a user would set them; an
  s3fs filesystem to put test data with."""
  for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
    monkeypatch.delenv(name, raising=False)
  for name, value in s3_server.env().items():
    monkeypatch.setenv(name, value)
  fs, _ = tables.open_url(f"s3://{BUCKET}")
  if not fs.exists(BUCKET):
    fs.mkdir(BUCKET)
  return fs


def tiny_tables(out_dir) -> dict:
  """The tiny synthetic graph's tables in every format: papers as a partitioned Parquet
  directory, cites as a glob of TFRecord shards, the rest CSV and CSV.gz."""
  from tfx_gnn.components.graph_ingest import synthetic
  spec = synthetic.generate_tables(str(out_dir), num_papers=300, num_classes=4, feature_dim=8,
                                   seed=0)
  papers = pq.read_table(os.path.join(out_dir, "paper.parquet"))
  os.remove(os.path.join(out_dir, "paper.parquet"))
  for shard in (0, 1):
    part = os.path.join(out_dir, "paper", f"shard={shard}")
    os.makedirs(part)
    pq.write_table(papers.slice(shard * 150, 150), os.path.join(part, "part-0.parquet"))
  spec["node_sets"]["paper"]["file"] = "paper"
  cites = pd.read_csv(os.path.join(out_dir, "cites.csv.gz"))
  os.remove(os.path.join(out_dir, "cites.csv.gz"))
  os.makedirs(os.path.join(out_dir, "cites"))
  for shard, rows in enumerate(np.array_split(cites.to_numpy(), 2)):
    write_tfrecord(os.path.join(out_dir, "cites", f"part-{shard}.tfrecord"),
                   [{"src": [int(s)], "dst": [int(d)]} for s, d in rows])
  spec["edge_sets"]["cites"]["file"] = "cites/part-*.tfrecord"
  return spec


@pytest.mark.slow
def test_s3_tables_in_every_format(s3, tmp_path):
  local = tmp_path / "tables"
  spec = tiny_tables(local)
  s3.put(str(local), f"{BUCKET}/formats", recursive=True)
  url = f"s3://{BUCKET}/formats"
  papers = tables.read(f"{url}/paper")
  assert papers.data.num_rows == 300 and papers.data.column("shard").to_pylist()[-1] == 1
  assert tables.read(f"{url}/paper/*/*.parquet").data.num_rows == 300
  cites = tables.read(f"{url}/cites/part-*.tfrecord")
  assert cites.where(len(cites) - 1).endswith(f"of {url}/cites/part-1.tfrecord")
  assert tables.read(f"{url}/writes.csv.gz").data.column_names == ["author_id", "paper_id"]
  # The same graph from the bucket and from the local copy.
  remote = ingest.tables_to_graph(config_lib.TablesSource.model_validate(
      {**spec, "directory": url}))
  here = ingest.tables_to_graph(config_lib.TablesSource.model_validate(spec))
  assert remote.counts() == here.counts()
  np.testing.assert_array_equal(remote.edge_sets["cites"].sources,
                                here.edge_sets["cites"].sources)
  # Object info (size, ETag) for fingerprints.
  fs, path = tables.open_url(f"{url}/writes.csv.gz")
  assert fs.info(path)["size"] == os.path.getsize(local / "writes.csv.gz")
  assert fs.info(path)["ETag"]


@pytest.mark.slow
def test_s3_errors_name_the_url_and_never_the_secret(s3, s3_server, monkeypatch, tmp_path):
  s3.pipe(f"{BUCKET}/errors/a.csv", b"id\n1\n")
  with pytest.raises(ingest.IngestError, match="s3://no-such-bucket/a.csv: file not found "
                     r"\(The specified bucket does not exist\)"):
    tables.read("s3://no-such-bucket/a.csv")
  with pytest.raises(ingest.IngestError, match=f"s3://{BUCKET}/errors/b.csv: file not found$"):
    tables.read(f"s3://{BUCKET}/errors/b.csv")
  assert tables.read(f"s3://{BUCKET}/errors/a.csv").data.num_rows == 1
  for name, value in (("AWS_SECRET_ACCESS_KEY", "wrong-secret-0123"),
                      ("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")):
    monkeypatch.setenv(name, value)
    with pytest.raises(ingest.IngestError) as info:
      tables.read(f"s3://{BUCKET}/errors/a.csv")
    message = str(info.value)
    assert message.startswith(f"s3://{BUCKET}/errors/a.csv: access denied")
    assert "AWS_SECRET_ACCESS_KEY" in message and "AWS_ENDPOINT_URL" in message
    assert s3_server.secret not in message and "wrong-secret-0123" not in message


def tiny_config(tmp_path, name, data, fanouts) -> config_lib.Config:
  """tests/configs/tiny.yaml with another data source (and fanouts over its edge sets)."""
  import yaml
  with open(TINY) as f:
    raw = yaml.safe_load(f)
  raw["pipeline"].update(name=name, root=str(tmp_path / "run"))
  raw["data"] = data
  raw["sampling"]["fanouts"] = fanouts
  # The steps after the Pusher have their own tests; here they would only add time. Nothing
  # here asserts learning (the runs check what was read and that every step completed): one
  # round of message passing and two epochs, a cheaper model to trace and train.
  raw.update(attribution={"enabled": False}, report={"enabled": False},
             bulk_inference={"enabled": False})
  raw["model"]["num_rounds"] = 1
  raw["trainer"]["epochs"] = 2
  config = config_lib.parse_config(raw, TINY, os.path.dirname(TINY))
  mlflow_template.copy_into(config)
  return config


def _s3_config(server, tmp_path, directory, spec) -> config_lib.Config:
  return tiny_config(tmp_path, "s3-tables", {"tables": {**spec, "directory": directory}},
                     {"cites": 3, "cited_by": 3, "written": 2, "writes": 2})


@pytest.fixture(scope="module")
def s3_run(s3_server, tmp_path_factory):
  """The tiny pipeline, once, from tables in the bucket (every format)."""
  from tfx_gnn.pipelines import local_runner
  tmp_path = tmp_path_factory.mktemp("s3-run")
  with pytest.MonkeyPatch.context() as monkeypatch:
    for name, value in s3_server.env().items():
      monkeypatch.setenv(name, value)
    fs, _ = tables.open_url(f"s3://{BUCKET}")
    if not fs.exists(BUCKET):
      fs.mkdir(BUCKET)
    spec = tiny_tables(tmp_path / "tables")
    fs.put(str(tmp_path / "tables"), f"{BUCKET}/tiny", recursive=True)
    config = _s3_config(s3_server, tmp_path, f"s3://{BUCKET}/tiny", spec)
    summary = local_runner.run(config)
    yield config, summary, spec


@pytest.mark.slow
def test_pipeline_from_s3(s3_run, s3_server):
  from tfx_gnn.components import lineage
  config, summary, _ = s3_run
  assert set(summary["components"].values()) == {"COMPLETE"}, summary["components"]
  assert summary["test_metrics"]["num_examples"] == 60  # 20% of 300 papers
  store = lineage.open_store(config.metadata_path)
  graph = [ref for r in lineage.executions(store, summary["run_id"]) for ref in r.outputs
           if ref.type.endswith("Graph")][0]
  counts = json.loads(graph.properties["node_counts"])
  assert counts["paper"] == 300
  g = graph_io.read_graph(graph.uri)
  assert g.node_sets["paper"].source_file == f"s3://{BUCKET}/tiny/paper"
  # The credentials never reach ML Metadata (the executions' properties): only the URLs do.
  dump = str(store.get_executions())
  assert f"s3://{BUCKET}/tiny" in dump and s3_server.secret not in dump


@pytest.mark.slow
@pytest.mark.parametrize("case", ["missing bucket", "missing object", "wrong credentials",
                                  "truncated parquet", "tfrecord of another schema"])
def test_bad_s3_input_through_the_pipeline(case, s3_run, s3_server, monkeypatch, tmp_path):
  from test_bad_input import run_and_expect_failure
  _, _, spec = s3_run
  for name, value in s3_server.env().items():
    monkeypatch.setenv(name, value)
  fs, _ = tables.open_url(f"s3://{BUCKET}")
  prefix = f"{BUCKET}/bad-{case.replace(' ', '-')}"
  fs.copy(f"{BUCKET}/tiny", prefix, recursive=True)
  directory, expected = f"s3://{prefix}", []
  if case == "missing bucket":
    directory = "s3://no-such-bucket/tiny"
    expected = ["s3://no-such-bucket/tiny/", "file not found", "bucket does not exist"]
  elif case == "missing object":
    fs.rm(f"{prefix}/writes.csv.gz")
    expected = [f"s3://{prefix}/writes.csv.gz: file not found"]
  elif case == "wrong credentials":
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-42")
    expected = [f"s3://{prefix}/", "access denied", "AWS_SECRET_ACCESS_KEY"]
  elif case == "truncated parquet":
    part = f"{prefix}/paper/shard=1/part-0.parquet"
    fs.pipe(part, fs.cat(part)[:-100])
    expected = [f"s3://{part}: cannot read parquet"]
  else:
    import tensorflow as tf  # noqa: F401  (write_tfrecord's)
    local = tmp_path / "other.tfrecord"
    write_tfrecord(local, [{"from": [1], "to": [2], "weight": [0.5]}])
    fs.put(str(local), f"{prefix}/cites/part-1.tfrecord")
    expected = [f"s3://{prefix}/cites/part-1.tfrecord: its columns from (int64_list), to "
                "(int64_list), weight (float_list) differ from those of "
                f"s3://{prefix}/cites/part-0.tfrecord"]
  config = _s3_config(s3_server, tmp_path, directory, spec)
  message = run_and_expect_failure(config, *expected)
  assert s3_server.secret not in message and "not-the-secret-42" not in message


# ---------------------------------------------------------------- OGB through the pipeline
@pytest.mark.slow
def test_ogb_tree_through_the_pipeline(tmp_path):
  from tfx_gnn.components import lineage
  from tfx_gnn.pipelines import local_runner
  write_ogb_tree(str(tmp_path / "datasets"))
  config = tiny_config(
      tmp_path, "ogb-tiny", {"ogb": {"name": "ogbn-mag", "root": str(tmp_path / "datasets"),
                                     "reverse": {"writes": "written"}}},
      {"cites": 3, "written": 2, "writes": 2, "has_topic": 2})
  summary = local_runner.run(config)
  assert summary["components"]["GraphIngest"] == "COMPLETE"
  assert summary["components"]["GraphValidator"] == "COMPLETE"
  assert summary["components"]["GnnTrainer"] == "COMPLETE", summary["components"]
  years = 2010 + np.arange(OGB_COUNTS["paper"]) % 10
  assert summary["test_metrics"]["num_examples"] == int((years == 2019).sum())
  store = lineage.open_store(config.metadata_path)
  graph = [ref for r in lineage.executions(store, summary["run_id"]) for ref in r.outputs
           if ref.type.endswith("Graph")][0]
  assert json.loads(graph.properties["node_counts"]) == OGB_COUNTS


# ---------------------------------------------------------------- a local GCS emulator
@pytest.mark.slow
def test_gcs_tables_in_every_format(tmp_path, monkeypatch):
  """gs:// through gcsfs, against gcp-storage-emulator (a process on a loopback port, over
  HTTP; gcsfs finds it through STORAGE_EMULATOR_HOST, as the Google client libraries do)."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  emulator = os.path.join(os.path.dirname(sys.executable), "gcp-storage-emulator")
  with open(tmp_path / "gcs.log", "wb") as log:
    process = subprocess.Popen([emulator, "-d", str(tmp_path / "gcs"), "start", "--host",
                                "127.0.0.1", "--port", str(port), "--default-bucket", BUCKET],
                               stdout=log, stderr=subprocess.STDOUT)
  try:
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
      try:
        urllib.request.urlopen(f"{url}/storage/v1/b", timeout=2)
        break
      except OSError:
        assert time.time() < deadline and process.poll() is None, "the emulator did not start"
        time.sleep(0.2)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
    # gcsfs (read when it is first imported) would ask the storage-control API, which the
    # emulator lacks, for each bucket's layout, retrying with backoff: minutes of waiting.
    monkeypatch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    spec = tiny_tables(tmp_path / "tables")
    fs, _ = tables.open_url(f"gs://{BUCKET}")
    fs.put(str(tmp_path / "tables"), f"{BUCKET}/tiny", recursive=True)
    remote = ingest.tables_to_graph(config_lib.TablesSource.model_validate(
        {**spec, "directory": f"gs://{BUCKET}/tiny"}))
    here = ingest.tables_to_graph(config_lib.TablesSource.model_validate(spec))
    assert remote.counts() == here.counts()
    np.testing.assert_array_equal(remote.node_sets["paper"].features["feat"],
                                  here.node_sets["paper"].features["feat"])
    assert remote.edge_sets["cites"].source_file == f"gs://{BUCKET}/tiny/cites/part-*.tfrecord"
    with pytest.raises(ingest.IngestError, match=f"gs://{BUCKET}/tiny/nope.csv: file not found"):
      tables.read(f"gs://{BUCKET}/tiny/nope.csv")
  finally:
    process.terminate()
    process.wait(timeout=10)


@pytest.mark.slow
def test_ogb_tree_with_a_missing_file_through_the_pipeline(tmp_path):
  from test_bad_input import run_and_expect_failure
  missing = "split/time/paper/test.csv.gz"
  write_ogb_tree(str(tmp_path / "datasets"), skip=(missing,))
  config = tiny_config(tmp_path, "ogb-missing", {"ogb": {
      "name": "ogbn-mag", "root": str(tmp_path / "datasets")}}, {"cites": 3})
  run_and_expect_failure(config, f"{tmp_path}/datasets/ogbn_mag/{missing}: file not found",
                         "OGB's loader")
