"""The embedded default data set: a synthetic OGBN-MAG-shaped graph, written as plain tables.

The graph has MAG's node sets — `paper` (a feature vector and a class label), `author`,
`institution` and `field_of_study` (no features) — and its edge sets: `cites` (paper->paper),
`writes` (author->paper), `affiliated_with` (author->institution) and `has_topic`
(paper->field_of_study). Node set sizes scale with `num_papers` as in OGBN-MAG; degrees are
heavy-tailed like MAG's but lighter, to keep the default pipeline quick.

Why the labels are learnable, and better from the neighbourhood than from the paper alone:
every paper has a latent class (its label). The paper's own features carry only a weak, noisy
copy of it — a class mean added to unit Gaussian noise in a few planted dimensions
(`informative_features`); every other dimension is pure noise. The rest of the signal is in
the graph: papers cite mostly papers of their own class (homophily), each author writes mostly
papers of one class, each field of study belongs mostly to one class, and institutions lean
towards one class. Averaging the features of a paper's ~14 citation neighbours, or looking at
its topics, therefore recovers the class far better than its own features do; the tests check
that a logistic regression gains well over 15 accuracy points from that neighbourhood.

Files (in `out_dir`), read by GraphIngest through the spec that `generate_tables` returns:

  paper.parquet               id (int64), feat (list<float32>, feature_dim long), label (int64)
  author.csv.gz               id
  institution.csv             id
  field_of_study.csv          id
  cites.csv.gz                src, dst                 paper -> paper
  writes.csv.gz               author_id, paper_id      author -> paper
  affiliated_with.csv         source, target           author -> institution
  has_topic.csv.gz            paper, field             paper -> field_of_study
  splits.csv                  id, split (train / valid / test, about 60/20/20)

Node ids are integers 0..n-1 within each node set. The same seed gives byte-identical files.
"""
from __future__ import annotations

import gzip
import io
import os
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# OGBN-MAG's node counts, for scaling the other node sets with the number of papers.
MAG_PAPERS = 736_389
MAG_AUTHORS = 1_134_649
MAG_INSTITUTIONS = 8_740
MAG_FIELDS = 59_965

# Mean degrees (MAG: 7.4 citations, 9.7 authors and 10.2 topics per paper, 0.9 affiliations
# per author); writes and has_topic are lighter than MAG's to keep ingest and sampling fast.
CITES_PER_PAPER = 7.0
EXTRA_AUTHORS_PER_PAPER = 2.5  # besides each author's one guaranteed paper
TOPICS_PER_PAPER = 4.0

# How strongly each relation follows the class: the probability that an edge goes to a node
# of the paper's (or author's) class rather than to a node drawn from all of them.
CITE_HOMOPHILY = 0.55
AUTHOR_FOCUS = 0.6
TOPIC_FOCUS = 0.45
INSTITUTION_FOCUS = 0.5

# Scale of the class means in the planted feature dimensions, against unit noise: weak on
# purpose, so that a paper's own features alone classify it poorly.
FEATURE_SIGNAL = 0.4
PLANTED_STRIDE = 4  # every 4th feature dimension carries class signal

MIN_PAPERS_PER_CLASS = 4

FILES = {
    "paper": "paper.parquet",
    "author": "author.csv.gz",
    "institution": "institution.csv",
    "field_of_study": "field_of_study.csv",
    "cites": "cites.csv.gz",
    "writes": "writes.csv.gz",
    "affiliated_with": "affiliated_with.csv",
    "has_topic": "has_topic.csv.gz",
    "splits": "splits.csv",
}


def informative_features(feature_dim: int) -> list[int]:
  """The paper feature indices that carry planted class signal; all others are pure noise."""
  return list(range(0, feature_dim, PLANTED_STRIDE))


def noise_features(feature_dim: int) -> list[int]:
  """The paper feature indices that are pure noise (the complement of the planted ones)."""
  planted = set(informative_features(feature_dim))
  return [i for i in range(feature_dim) if i not in planted]


def node_set_sizes(num_papers: int, num_classes: int) -> dict[str, int]:
  """Node set sizes: MAG's ratios to papers, with minimums so that tiny graphs stay usable
  (every class needs some institutions and fields of study of its own)."""
  def scaled(mag_count: int, minimum: int) -> int:
    return max(minimum, int(round(num_papers * mag_count / MAG_PAPERS)))
  return {
      "paper": num_papers,
      "author": scaled(MAG_AUTHORS, 2 * num_classes),
      "institution": scaled(MAG_INSTITUTIONS, 2 * num_classes),
      "field_of_study": scaled(MAG_FIELDS, 2 * num_classes),
  }


def _class_sampler(classes: np.ndarray, weights: np.ndarray,
                   num_classes: int) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
  """Returns sample(cls, rng): for each entry of `cls`, a node of that class drawn with
  probability proportional to `weights` (vectorised: one searchsorted over class blocks)."""
  order = np.argsort(classes, kind="stable")
  cum = np.cumsum(weights[order], dtype=np.float64)
  counts = np.bincount(classes, minlength=num_classes)
  if (counts == 0).any():
    raise ValueError(f"every class needs a node; class counts {counts.tolist()}")
  ends = np.cumsum(counts)
  starts = ends - counts
  lo = np.concatenate([[0.0], cum])[starts]
  hi = cum[ends - 1]

  def sample(cls: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    u = lo[cls] + rng.random(len(cls)) * (hi[cls] - lo[cls])
    idx = np.searchsorted(cum, u, side="right")
    # Rounding can land one past the class block; clamp into it.
    idx = np.clip(idx, starts[cls], ends[cls] - 1)
    return order[idx]
  return sample


def _any_sampler(weights: np.ndarray) -> Callable[[int, np.random.Generator], np.ndarray]:
  """Returns sample(n, rng): n nodes drawn with probability proportional to `weights`."""
  cum = np.cumsum(weights, dtype=np.float64)

  def sample(n: int, rng: np.random.Generator) -> np.ndarray:
    idx = np.searchsorted(cum, rng.random(n) * cum[-1], side="right")
    return np.minimum(idx, len(cum) - 1)
  return sample


def _focused_targets(source_classes: np.ndarray, focus: float, in_class, anywhere,
                     rng: np.random.Generator) -> np.ndarray:
  """One target per source: with probability `focus` of the source's class, else any."""
  same = rng.random(len(source_classes)) < focus
  targets = anywhere(len(source_classes), rng)
  targets[same] = in_class(source_classes[same], rng)
  return targets


def _dedupe(sources: np.ndarray, targets: np.ndarray, num_targets: int,
            drop_self_loops: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """Unique (source, target) pairs, sorted by source then target."""
  if drop_self_loops:
    keep = sources != targets
    sources, targets = sources[keep], targets[keep]
  keys = np.unique(sources.astype(np.int64) * num_targets + targets)
  return keys // num_targets, keys % num_targets


def _balanced_classes(n: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
  """Classes for n nodes, every class present, in random order."""
  return rng.permutation(np.arange(n) % num_classes)


def _paper_classes(n: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
  """Mildly imbalanced classes (like MAG's venues), at least MIN_PAPERS_PER_CLASS each."""
  probs = 1.0 / np.sqrt(np.arange(num_classes) + 2.0)
  probs /= probs.sum()
  labels = rng.choice(num_classes, size=n, p=probs)
  guaranteed = rng.choice(n, size=MIN_PAPERS_PER_CLASS * num_classes, replace=False)
  labels[guaranteed] = np.arange(len(guaranteed)) % num_classes
  return labels


def _degrees(n: int, mean: float, rng: np.random.Generator) -> np.ndarray:
  """Overdispersed (negative binomial) degrees with the given mean: a heavy-ish tail."""
  shape = 2.0
  return rng.negative_binomial(shape, shape / (shape + mean), size=n)


def _write_bytes(path: str, data: bytes) -> None:
  tmp = path + ".tmp"
  with open(tmp, "wb") as f:
    f.write(data)
  os.replace(tmp, path)


def _write_csv(path: str, columns: dict[str, np.ndarray]) -> None:
  text = pd.DataFrame(columns).to_csv(index=False).encode()
  # mtime=0 and no file name in the gzip header: the same data gives the same bytes.
  _write_bytes(path, gzip.compress(text, mtime=0) if path.endswith(".gz") else text)


def _write_papers(path: str, features: np.ndarray, labels: np.ndarray) -> None:
  n, dim = features.shape
  offsets = pa.array(np.arange(0, n * dim + 1, dim, dtype=np.int32))
  feat = pa.ListArray.from_arrays(offsets, pa.array(features.reshape(-1), pa.float32()))
  table = pa.table({"id": pa.array(np.arange(n, dtype=np.int64)), "feat": feat,
                    "label": pa.array(labels.astype(np.int64))})
  buffer = io.BytesIO()
  pq.write_table(table, buffer)
  _write_bytes(path, buffer.getvalue())


def generate_graph(*, num_papers: int, num_classes: int, feature_dim: int,
                   seed: int) -> dict:
  """The synthetic graph as numpy arrays: `sizes` (node set -> count), paper `features`
  [papers, feature_dim] float32 and `labels`, each edge set as (source, target) index arrays,
  and `split` (train / valid / test per paper)."""
  if num_classes < 2:
    raise ValueError(f"num_classes must be >= 2, got {num_classes}")
  if feature_dim < 1:
    raise ValueError(f"feature_dim must be >= 1, got {feature_dim}")
  min_papers = max(20, 2 * MIN_PAPERS_PER_CLASS * num_classes)
  if num_papers < min_papers:
    raise ValueError(f"num_papers must be >= {min_papers} for {num_classes} classes "
                     f"(every class needs papers in every split), got {num_papers}")
  rng = np.random.default_rng(seed)
  k = num_classes
  sizes = node_set_sizes(num_papers, k)
  n_pap, n_aut, n_ins, n_fos = (sizes[s] for s in
                                ("paper", "author", "institution", "field_of_study"))

  # Latent classes, and popularity weights (log-normal: a few hubs, as in real citation data).
  paper_cls = _paper_classes(n_pap, k, rng)
  author_cls = _balanced_classes(n_aut, k, rng)
  inst_cls = _balanced_classes(n_ins, k, rng)
  field_cls = _balanced_classes(n_fos, k, rng)
  paper_pop = rng.lognormal(0.0, 1.0, n_pap)
  author_pop = rng.lognormal(0.0, 1.0, n_aut)
  inst_pop = rng.lognormal(0.0, 1.5, n_ins)
  field_pop = rng.lognormal(0.0, 1.2, n_fos)
  paper_in, paper_any = _class_sampler(paper_cls, paper_pop, k), _any_sampler(paper_pop)
  author_in, author_any = _class_sampler(author_cls, author_pop, k), _any_sampler(author_pop)
  inst_in, inst_any = _class_sampler(inst_cls, inst_pop, k), _any_sampler(inst_pop)
  field_in, field_any = _class_sampler(field_cls, field_pop, k), _any_sampler(field_pop)

  # Paper features: unit noise everywhere, a weak class mean in the planted dimensions.
  planted = np.array(informative_features(feature_dim))
  class_means = rng.normal(0.0, 1.0, (k, len(planted)))
  features = rng.normal(0.0, 1.0, (n_pap, feature_dim))
  features[:, planted] += FEATURE_SIGNAL * class_means[paper_cls]
  features = features.astype(np.float32)

  # cites: mostly within the class (homophily), towards popular papers.
  src = np.repeat(np.arange(n_pap), _degrees(n_pap, CITES_PER_PAPER, rng))
  dst = _focused_targets(paper_cls[src], CITE_HOMOPHILY, paper_in, paper_any, rng)
  cites = _dedupe(src, dst, n_pap, drop_self_loops=True)

  # writes: every author writes at least one paper; each paper gets some more authors. An
  # author's papers are mostly of the author's class.
  first = _focused_targets(author_cls, AUTHOR_FOCUS, paper_in, paper_any, rng)
  paper_rows = np.repeat(np.arange(n_pap), _degrees(n_pap, EXTRA_AUTHORS_PER_PAPER, rng))
  extra = _focused_targets(paper_cls[paper_rows], AUTHOR_FOCUS, author_in, author_any, rng)
  writes = _dedupe(np.concatenate([np.arange(n_aut), extra]),
                   np.concatenate([first, paper_rows]), n_pap)

  # affiliated_with: most authors have one institution, a few two, some none (as in MAG);
  # every institution has at least one author.
  n_affil = (rng.random(n_aut) < 0.85).astype(int) + (rng.random(n_aut) < 0.08)
  aut_rows = np.repeat(np.arange(n_aut), n_affil)
  insts = _focused_targets(author_cls[aut_rows], INSTITUTION_FOCUS, inst_in, inst_any, rng)
  staff = _focused_targets(inst_cls, INSTITUTION_FOCUS, author_in, author_any, rng)
  affiliated = _dedupe(np.concatenate([aut_rows, staff]),
                       np.concatenate([insts, np.arange(n_ins)]), n_ins)

  # has_topic: every paper has at least one field, mostly fields of its class; every field
  # has at least one paper.
  paper_rows = np.repeat(np.arange(n_pap), 1 + rng.poisson(TOPICS_PER_PAPER - 1, n_pap))
  fields = _focused_targets(paper_cls[paper_rows], TOPIC_FOCUS, field_in, field_any, rng)
  members = _focused_targets(field_cls, TOPIC_FOCUS, paper_in, paper_any, rng)
  has_topic = _dedupe(np.concatenate([paper_rows, members]),
                      np.concatenate([fields, np.arange(n_fos)]), n_fos)

  # Splits: a seeded shuffle cut 60/20/20; "valid" exercises the eval synonym.
  order = rng.permutation(n_pap)
  n_train, n_valid = int(round(0.6 * n_pap)), int(round(0.2 * n_pap))
  split = np.empty(n_pap, dtype=object)
  split[order[:n_train]] = "train"
  split[order[n_train:n_train + n_valid]] = "valid"
  split[order[n_train + n_valid:]] = "test"
  return {"sizes": sizes, "features": features, "labels": paper_cls, "cites": cites,
          "writes": writes, "affiliated_with": affiliated, "has_topic": has_topic,
          "split": split}


def generate_tables(out_dir: str, *, num_papers: int, num_classes: int, feature_dim: int,
                    seed: int) -> dict:
  """Writes the synthetic graph's tables into `out_dir` (created if missing) and returns the
  graph spec (a dict that validates as `pipelines.config.TablesSource`)."""
  g = generate_graph(num_papers=num_papers, num_classes=num_classes, feature_dim=feature_dim,
                     seed=seed)
  sizes, features, paper_cls, split = g["sizes"], g["features"], g["labels"], g["split"]
  cites, writes, affiliated, has_topic = (g[k] for k in ("cites", "writes", "affiliated_with",
                                                         "has_topic"))
  n_pap = sizes["paper"]
  os.makedirs(out_dir, exist_ok=True)
  path = lambda name: os.path.join(out_dir, FILES[name])
  _write_papers(path("paper"), features, paper_cls)
  for name in ("author", "institution", "field_of_study"):
    _write_csv(path(name), {"id": np.arange(sizes[name])})
  _write_csv(path("cites"), {"src": cites[0], "dst": cites[1]})
  _write_csv(path("writes"), {"author_id": writes[0], "paper_id": writes[1]})
  _write_csv(path("affiliated_with"), {"source": affiliated[0], "target": affiliated[1]})
  _write_csv(path("has_topic"), {"paper": has_topic[0], "field": has_topic[1]})
  _write_csv(path("splits"), {"id": np.arange(n_pap), "split": split})

  def edges(name: str, source: str, target: str, columns: tuple[str, str],
            reverse: str) -> dict:
    return {"file": FILES[name], "source": source, "target": target,
            "source_column": columns[0], "target_column": columns[1], "reverse": reverse}

  return {
      "directory": out_dir,
      "node_sets": {
          "paper": {"file": FILES["paper"], "id_column": "id", "features": ["feat"],
                    "label_column": "label"},
          "author": {"file": FILES["author"], "id_column": "id"},
          "institution": {"file": FILES["institution"], "id_column": "id"},
          "field_of_study": {"file": FILES["field_of_study"], "id_column": "id"},
      },
      "edge_sets": {
          "cites": edges("cites", "paper", "paper", ("src", "dst"), "cited_by"),
          "writes": edges("writes", "author", "paper", ("author_id", "paper_id"), "written"),
          "affiliated_with": edges("affiliated_with", "author", "institution",
                                   ("source", "target"), "employs"),
          "has_topic": edges("has_topic", "paper", "field_of_study", ("paper", "field"),
                             "topic_of"),
      },
      "label_node_set": "paper",
      "num_classes": num_classes,
      "splits": {"file": FILES["splits"], "id_column": "id", "split_column": "split"},
  }


# ---------------------------------------------------------------- a graph collection
# For graph-level tasks: many small graphs, each one node of the `graph` node set (its class
# `label` and a float `target`), its nodes in `node` (a feature vector), linked to it by
# `member_of`, and its edges in `edge` (both directions of each undirected edge).
COLLECTION_FILES = {
    "graph": "graph.csv",
    "node": "node.parquet",
    "edge": "edge.csv.gz",
    "member_of": "member_of.csv.gz",
    "splits": "graph_splits.csv",
}
# The class shapes the graph: 0 a ring with a few chords, 1 a preferential-attachment tree
# (hubs), 2 a dense random graph, 3 two dense communities joined by one edge. Node features
# are unit noise plus a weak class mean (GRAPH_FEATURE_SIGNAL) in every 4th dimension: one
# node says little about its graph's class, the pooled graph says much more.
GRAPH_FEATURE_SIGNAL = 0.35


def _collection_edges(cls: int, n: int, rng: np.random.Generator) -> np.ndarray:
  """Undirected edges (pairs i < j) of one graph of class `cls` with n nodes."""
  pairs = []
  if cls == 0:
    pairs = [(i, (i + 1) % n) for i in range(n)]
    pairs += [tuple(rng.choice(n, 2, replace=False)) for _ in range(max(1, n // 6))]
  elif cls == 1:
    for i in range(1, n):
      degree = np.bincount(np.array(pairs, dtype=np.int64).reshape(-1), minlength=i)[:i] + 1.0
      pairs.append((int(rng.choice(i, p=degree / degree.sum())), i))
  elif cls == 2:
    upper = np.triu(rng.random((n, n)) < 0.35, 1)
    pairs = list(zip(*np.nonzero(upper)))
    pairs += [(i, i + 1) for i in range(n - 1)]  # connected
  else:
    half = n // 2
    for lo, hi in ((0, half), (half, n)):
      upper = np.triu(rng.random((hi - lo, hi - lo)) < 0.6, 1)
      pairs += [(lo + a, lo + b) for a, b in zip(*np.nonzero(upper))]
      pairs += [(i, i + 1) for i in range(lo, hi - 1)]
    pairs.append((half - 1, half))
  edges = {(min(a, b), max(a, b)) for a, b in pairs if a != b}
  return np.array(sorted(edges), dtype=np.int64).reshape(-1, 2)


def generate_graph_collection(out_dir: str, *, num_graphs: int, num_classes: int,
                              feature_dim: int, min_nodes: int, max_nodes: int,
                              seed: int) -> dict:
  """Writes the collection's tables into `out_dir` and returns their spec (a dict that
  validates as `pipelines.config.TablesSource`, labelled node set `graph`). Splits: a seeded
  60/20/20 cut of the graphs. The same seed gives byte-identical files."""
  if not 2 <= num_classes <= 4:
    raise ValueError(f"num_classes must be 2..4 (graph shapes), got {num_classes}")
  if max_nodes < min_nodes:
    raise ValueError(f"max_nodes ({max_nodes}) < min_nodes ({min_nodes})")
  rng = np.random.default_rng(seed)
  labels = _balanced_classes(num_graphs, num_classes, rng)
  planted = np.array(informative_features(feature_dim))
  class_means = rng.normal(0.0, 1.0, (num_classes, len(planted)))
  node_feats, sources, targets, members, targets_out = [], [], [], [], []
  first = 0
  for g, cls in enumerate(labels):
    n = int(rng.integers(min_nodes, max_nodes + 1))
    feats = rng.normal(0.0, 1.0, (n, feature_dim))
    feats[:, planted] += GRAPH_FEATURE_SIGNAL * class_means[cls]
    edges = _collection_edges(int(cls), n, rng) + first
    sources += [edges[:, 0], edges[:, 1]]
    targets += [edges[:, 1], edges[:, 0]]
    members.append(np.full(n, g))
    node_feats.append(feats)
    # The regression target: mean degree and the mean of feature 1 (structure and features).
    targets_out.append(0.25 * 2 * len(edges) / n + float(feats[:, 1 % feature_dim].mean()))
    first += n
  features = np.concatenate(node_feats).astype(np.float32)
  order = np.argsort(np.concatenate([s for s in sources]), kind="stable")
  src = np.concatenate(sources)[order]
  dst = np.concatenate(targets)[order]
  split = np.empty(num_graphs, dtype=object)
  perm = rng.permutation(num_graphs)
  n_train, n_eval = int(round(0.6 * num_graphs)), int(round(0.2 * num_graphs))
  split[perm[:n_train]] = "train"
  split[perm[n_train:n_train + n_eval]] = "eval"
  split[perm[n_train + n_eval:]] = "test"

  os.makedirs(out_dir, exist_ok=True)
  path = lambda name: os.path.join(out_dir, COLLECTION_FILES[name])
  _write_csv(path("graph"), {"id": np.arange(num_graphs), "label": labels,
                             "target": np.round(np.array(targets_out), 6)})
  n, dim = features.shape
  offsets = pa.array(np.arange(0, n * dim + 1, dim, dtype=np.int32))
  table = pa.table({"id": pa.array(np.arange(n, dtype=np.int64)),
                    "feat": pa.ListArray.from_arrays(offsets, pa.array(features.reshape(-1)))})
  buffer = io.BytesIO()
  pq.write_table(table, buffer)
  _write_bytes(path("node"), buffer.getvalue())
  _write_csv(path("edge"), {"src": src, "dst": dst})
  _write_csv(path("member_of"), {"node": np.arange(n), "graph": np.concatenate(members)})
  _write_csv(path("splits"), {"id": np.arange(num_graphs), "split": split})
  return {
      "directory": out_dir,
      "node_sets": {
          "graph": {"file": COLLECTION_FILES["graph"], "id_column": "id",
                    "label_column": "label", "features": ["target"]},
          "node": {"file": COLLECTION_FILES["node"], "id_column": "id", "features": ["feat"]},
      },
      "edge_sets": {
          "edge": {"file": COLLECTION_FILES["edge"], "source": "node", "target": "node",
                   "source_column": "src", "target_column": "dst"},
          "member_of": {"file": COLLECTION_FILES["member_of"], "source": "node",
                        "target": "graph", "source_column": "node", "target_column": "graph"},
      },
      "label_node_set": "graph",
      "num_classes": num_classes,
      "splits": {"file": COLLECTION_FILES["splits"], "id_column": "id", "split_column": "split"},
  }


# ---------------------------------------------------------------- OGB converter's format
# Years per split in `write_ogb_unigraph`, as OGBN-MAG's time split: train before 2018,
# validation 2018, test 2019.
OGB_YEARS = {"train": (2010, 2017), "valid": (2018, 2018), "test": (2019, 2019)}
OGB_EDGE_SETS = {"affiliated_with": ("author", "institution"), "cites": ("paper", "paper"),
                 "has_topic": ("paper", "field_of_study"), "writes": ("author", "paper")}


def _ogb_write_set(out_dir: str, basename: str, columns: dict[str, np.ndarray],
                   target_shard_size: int) -> str:
  """One node or edge set as TFRecord files of tf.Examples, sharded as TF-GNN's converter
  shards (`name-00000-of-00003`, named `name@3` in the schema, when over the target size);
  returns the schema's file name."""
  import tensorflow as tf
  filename = f"{basename}.tfrecords"
  rows = len(next(iter(columns.values())))
  total = sum(a.nbytes for a in columns.values())
  shards = -(-total // target_shard_size) if total > target_shard_size else 1
  per_file = -(-rows // shards)
  names = ([f"{filename}-{i:05d}-of-{shards:05d}" for i in range(shards)] if shards > 1
           else [filename])
  for i, name in enumerate(names):
    with tf.io.TFRecordWriter(os.path.join(out_dir, name)) as writer:
      for row in range(i * per_file, min(rows, (i + 1) * per_file)):
        example = tf.train.Example()
        for key, array in columns.items():
          feature = example.features.feature[key]
          value = array[row]
          if array.dtype.kind == "S":
            feature.bytes_list.value.append(value)
          elif array.dtype.kind == "f":
            feature.float_list.value.extend(np.ravel(value).tolist())
          else:
            feature.int64_list.value.extend(np.ravel(value).tolist())
        writer.write(example.SerializeToString())
  return f"{filename}@{shards}" if shards > 1 else filename


def write_ogb_unigraph(out_dir: str, *, num_papers: int, num_classes: int = 349,
                       feature_dim: int = 128, seed: int = 0,
                       target_shard_size: int = 10**6) -> str:
  """Writes the synthetic graph in the on-disk format of TF-GNN's `tfgnn_convert_ogb_dataset`
  for ogbn-mag (tensorflow_gnn/converters/ogb): a `schema.pbtxt` and sharded TFRecord files
  `nodes-<set>.tfrecords` / `edges-<set>.tfrecords` of tf.Examples; node ids `#id` are
  "<set><index>" (b"paper0"), edges carry `#source` / `#target`; papers have `feat`
  [feature_dim] float32, `labels` [1] int64 and `year` [1] int64; only the forward edge sets
  (no `written`), as the converter writes them. The years follow the generator's split (see
  OGB_YEARS). Returns the schema file's path."""
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  g = generate_graph(num_papers=num_papers, num_classes=num_classes, feature_dim=feature_dim,
                     seed=seed)
  rng = np.random.default_rng([seed, 2018])
  year = np.empty(num_papers, dtype=np.int64)
  for split, (lo, hi) in OGB_YEARS.items():
    mask = g["split"] == split
    year[mask] = rng.integers(lo, hi + 1, int(mask.sum()))
  os.makedirs(out_dir, exist_ok=True)

  def ids(node_set: str, index: np.ndarray) -> np.ndarray:
    return np.char.add(node_set.encode(), index.astype(np.int64).astype("S"))

  schema = tfgnn.GraphSchema()
  for name, count in g["sizes"].items():
    columns = {"#id": ids(name, np.arange(count))}
    proto = schema.node_sets[name]
    proto.features["#id"].dtype = tf.string.as_datatype_enum
    if name == "paper":
      columns.update({"feat": g["features"], "labels": g["labels"].astype(np.int64)[:, None],
                      "year": year[:, None]})
      proto.features["feat"].dtype = tf.float32.as_datatype_enum
      proto.features["feat"].shape.dim.add().size = feature_dim
      for key in ("labels", "year"):
        proto.features[key].dtype = tf.int64.as_datatype_enum
        proto.features[key].shape.dim.add().size = 1
    proto.metadata.filename = _ogb_write_set(out_dir, f"nodes-{name}", columns,
                                             target_shard_size)
    proto.metadata.cardinality = count
  for name, (source, target) in OGB_EDGE_SETS.items():
    src, dst = g[name]
    proto = schema.edge_sets[name]
    proto.source, proto.target = source, target
    proto.metadata.filename = _ogb_write_set(
        out_dir, f"edges-{name}", {"#source": ids(source, src), "#target": ids(target, dst)},
        target_shard_size)
    proto.metadata.cardinality = len(src)
  path = os.path.join(out_dir, "schema.pbtxt")
  with open(path, "w") as f:
    print(schema, file=f)
  return path


# ---------------------------------------------------------------- labels on another node set
# Authors (labelled, featureless) write papers; each paper appears in one venue. Each venue has
# a class, and so has each author, whose papers go mostly to venues of that class: the
# generating rule reads an author's class as the class most of their papers' venues have
# (2 hops away: author -> paper -> venue). Where that signal can be *seen*:
#   signal_hops=2: venues have features (their class mean plus noise), papers pure noise;
#   signal_hops=4: venues have no features, and each paper's features carry only a weak copy
#     of its venue's class: one author's few papers say little, the venue's many other papers
#     (author -> paper -> venue -> paper: 3 hops; 4 to return to authors) say much more.
AUTHOR_VENUE_FILES = {
    "author": "author.csv", "paper": "paper.parquet", "venue": "venue.parquet",
    "writes": "writes.csv.gz", "published_in": "published_in.csv.gz",
    "splits": "author_splits.csv",
}
VENUE_FOCUS = 0.7  # the probability that an author's paper goes to a venue of their class
VENUE_FEATURE_SIGNAL = 1.0  # signal_hops=2: venue features, against unit noise
PAPER_FEATURE_SIGNAL = 0.35  # signal_hops=4: paper features, against unit noise


class AuthorVenueTables(NamedTuple):
  tables: dict  # validates as `TablesSource`
  rule_accuracy: float  # over all authors
  rule_accuracy_by_split: dict[str, float]


def generate_author_venue_tables(out_dir: str, *, num_authors: int = 2000,
                                 num_venues: int = 40, num_classes: int = 4,
                                 papers_per_author: float = 4.0, feature_dim: int = 16,
                                 signal_hops: int = 4, train_per_class: int = 20,
                                 eval_fraction: float = 0.2,
                                 seed: int = 0) -> "AuthorVenueTables":
  """Writes an author-paper-venue graph whose labels sit on authors (see above). Returns its
  graph spec (a dict that validates as `TablesSource`) and the rule's accuracy: how often the
  generating rule (the majority class of the author's papers' venues, ties to the lowest
  class) gives the author's label (its latent class), a ceiling for any model; over all
  authors and per split. Splits:
  `train_per_class` labelled authors per class, `eval_fraction` of the authors for eval, the
  rest test."""
  if signal_hops not in (2, 4):
    raise ValueError(f"signal_hops must be 2 or 4, got {signal_hops}")
  if num_venues < num_classes or num_classes < 2:
    raise ValueError(f"need 2 <= num_classes <= num_venues, got {num_classes}, {num_venues}")
  rng = np.random.default_rng(seed)
  k = num_classes
  author_cls = _balanced_classes(num_authors, k, rng)
  venue_cls = _balanced_classes(num_venues, k, rng)
  venue_pop = rng.lognormal(0.0, 0.8, num_venues)
  venue_in, venue_any = _class_sampler(venue_cls, venue_pop, k), _any_sampler(venue_pop)
  # Each paper has one author (no co-authors: the only way to other authors is a venue).
  paper_author = np.repeat(np.arange(num_authors),
                           1 + rng.poisson(papers_per_author - 1, num_authors))
  paper_venue = _focused_targets(author_cls[paper_author], VENUE_FOCUS, venue_in, venue_any,
                                 rng)
  num_papers = len(paper_author)
  # The rule, and the labels it gives.
  counts = np.zeros((num_authors, k), np.int64)
  np.add.at(counts, (paper_author, venue_cls[paper_venue]), 1)
  rule = counts.argmax(axis=1)
  labels = author_cls
  rule_accuracy = float(np.mean(rule == labels))
  means = rng.normal(0.0, 1.0, (k, feature_dim))
  paper_feat = rng.normal(0.0, 1.0, (num_papers, feature_dim))
  venue_feat = rng.normal(0.0, 1.0, (num_venues, feature_dim))
  if signal_hops == 2:
    venue_feat += VENUE_FEATURE_SIGNAL * means[venue_cls]
  else:
    paper_feat += PAPER_FEATURE_SIGNAL * means[venue_cls[paper_venue]]
  # Splits: train_per_class labelled authors per class, then eval, then test.
  order = rng.permutation(num_authors)
  split = np.full(num_authors, "test", dtype=object)
  taken = np.zeros(num_authors, bool)
  for c in range(k):
    members = order[labels[order] == c][:train_per_class]
    split[members] = "train"
    taken[members] = True
  rest = order[~taken[order]]
  split[rest[:int(round(eval_fraction * num_authors))]] = "eval"

  os.makedirs(out_dir, exist_ok=True)
  path = lambda name: os.path.join(out_dir, AUTHOR_VENUE_FILES[name])
  _write_csv(path("author"), {"id": np.arange(num_authors), "label": labels})

  def write_features(name: str, features: np.ndarray) -> None:
    table = pa.table({"id": np.arange(len(features)), "feat": pa.FixedSizeListArray.from_arrays(
        pa.array(features.astype(np.float32).reshape(-1)), feature_dim)})
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    _write_bytes(path(name), buffer.getvalue().to_pybytes())

  write_features("paper", paper_feat)
  if signal_hops == 2:
    write_features("venue", venue_feat)
  else:
    _write_csv(path("venue").replace(".parquet", ".csv"), {"id": np.arange(num_venues)})
  _write_csv(path("writes"), {"author": paper_author, "paper": np.arange(num_papers)})
  _write_csv(path("published_in"), {"paper": np.arange(num_papers), "venue": paper_venue})
  _write_csv(path("splits"), {"id": np.arange(num_authors), "split": split})
  venue_file = (AUTHOR_VENUE_FILES["venue"] if signal_hops == 2 else
                AUTHOR_VENUE_FILES["venue"].replace(".parquet", ".csv"))
  by_split = {name: float(np.mean((rule == labels)[split == name]))
              for name in ("train", "eval", "test")}
  return AuthorVenueTables({
      "directory": out_dir,
      "node_sets": {
          "author": {"file": AUTHOR_VENUE_FILES["author"], "id_column": "id",
                     "label_column": "label"},
          "paper": {"file": AUTHOR_VENUE_FILES["paper"], "id_column": "id",
                    "features": ["feat"]},
          "venue": {"file": venue_file, "id_column": "id",
                    **({"features": ["feat"]} if signal_hops == 2 else {})},
      },
      "edge_sets": {
          "writes": {"file": AUTHOR_VENUE_FILES["writes"], "source": "author",
                     "target": "paper", "source_column": "author", "target_column": "paper",
                     "reverse": "written_by"},
          "published_in": {"file": AUTHOR_VENUE_FILES["published_in"], "source": "paper",
                           "target": "venue", "source_column": "paper",
                           "target_column": "venue", "reverse": "publishes"},
      },
      "label_node_set": "author",
      "num_classes": k,
      "splits": {"file": AUTHOR_VENUE_FILES["splits"], "id_column": "id",
                 "split_column": "split"},
  }, rule_accuracy, by_split)
