"""Sample and look at subgraphs in a notebook: from a Graph artifact, around seed ids you name.

  from tfx_gnn import interactive
  explorer = interactive.SubgraphExplorer.from_config("pipelines/configs/demo.yaml")
  #   or: interactive.SubgraphExplorer(graph_dir, fanouts={"cites": 8, "written": 4}, hops=2)
  sub = explorer.sample(["17", "42"])    # seed ids of the labelled node set
  sub.summary()      # pandas: nodes and edges per set, per subgraph
  sub.nodes          # pandas: one row per sampled node (set, index, id, hop, label)
  sub.edges          # pandas: one row per sampled edge (set, source/target indices)
  sub.draw("17")     # a matplotlib Figure (the Attribution report's subgraph drawing)
  sub.graph_tensor() # the batched GraphTensor the trainer would see
  sub.examples       # serialized tf.Examples, as the SubgraphSampler writes them

Sampling is the fast engine's (`components.subgraph_sampler.fast_sampler`) with the run's
`sampling` config, so what you see is what the pipeline trains on: `sample(ids, salt="train")`
gives exactly the batch mode's train subgraphs (for the same `sampling.seed`), `salt=
dynamic.epoch_salt(k)` the dynamic mode's epoch k, and any other salt a fresh draw.
"""
from __future__ import annotations

import dataclasses
import glob
import os
from typing import Iterable, Optional, Union

import numpy as np
import pandas as pd

# (tfx_gnn/__init__.py has set the environment TF-GNN needs before this module runs.)
from tfx_gnn.components import graph_io


@dataclasses.dataclass
class Subgraphs:
  """Subgraphs sampled around `seed_ids` (subgraph k is rooted at seed_ids[k])."""
  seed_ids: list[str]
  nodes: pd.DataFrame
  edges: pd.DataFrame
  examples: list[bytes]
  sampler: object  # the FastSampler that drew them

  def _position(self, seed: Union[int, str]) -> int:
    if isinstance(seed, (int, np.integer)):
      return int(seed)
    if seed not in self.seed_ids:
      raise KeyError(f"{seed!r} is not a seed of these subgraphs ({self.seed_ids[:5]}...)")
    return self.seed_ids.index(seed)

  def summary(self) -> pd.DataFrame:
    """One row per subgraph (indexed by seed id): the number of nodes of each node set and of
    edges of each edge set, and the hops the sampling reached."""
    nodes = self.nodes.pivot_table(index="subgraph", columns="node_set", values="index",
                                   aggfunc="count", fill_value=0)
    nodes.columns = [f"nodes/{c}" for c in nodes.columns]
    edges = (self.edges.pivot_table(index="subgraph", columns="edge_set", values="source",
                                    aggfunc="count", fill_value=0)
             if len(self.edges) else pd.DataFrame(index=nodes.index))
    edges.columns = [f"edges/{c}" for c in edges.columns]
    out = nodes.join(edges, how="left").fillna(0).astype(int)
    out["max_hop"] = self.nodes.groupby("subgraph")["hop"].max()
    out.index = pd.Index([self.seed_ids[i] for i in out.index], name="seed")
    return out

  def sets(self) -> pd.DataFrame:
    """One row per node and edge set: its kind, the mean and max count per subgraph."""
    summary = self.summary().drop(columns="max_hop")
    return pd.DataFrame({
        "kind": [c.split("/")[0][:-1] for c in summary.columns],
        "set": [c.split("/", 1)[1] for c in summary.columns],
        "mean_per_subgraph": summary.mean().round(2).to_numpy(),
        "max_per_subgraph": summary.max().to_numpy()}).reset_index(drop=True)

  def graph_tensor(self):
    """The subgraphs as one GraphTensor of shape [len(seed_ids)]."""
    import tensorflow as tf
    import tensorflow_gnn as tfgnn
    return tfgnn.parse_example(self.sampler.graph_tensor_spec(),
                               tf.constant(self.examples, dtype=tf.string))

  def example(self, seed: Union[int, str]) -> dict:
    """One subgraph in the drawing format of `components.attribution.report.draw_subgraph`."""
    k = self._position(seed)
    nodes = self.nodes[self.nodes.subgraph == k]
    edges = self.edges[self.edges.subgraph == k]
    root = nodes[nodes.hop == 0]
    label = root["label"].iloc[0] if "label" in nodes and len(root) else None
    return {"label": None if label is None or pd.isna(label) else int(label),
            "nodes": nodes[["node_set", "index", "hop", "node_id"]].to_dict("records"),
            "edges": edges[["edge_set", "source_set", "target_set", "source",
                            "target"]].to_dict("records")}

  def draw(self, seed: Union[int, str] = 0, ax=None):
    """Draws one subgraph (by seed id or position): the root in the centre, one ring per hop,
    coloured by node set. Returns the matplotlib Figure."""
    from tfx_gnn.components.attribution import report
    import matplotlib.pyplot as plt
    example = self.example(seed)
    if ax is None:
      _, ax = plt.subplots(figsize=(4.2, 4.2))
      # Out of pyplot's registry: a notebook shows the returned Figure, and would otherwise
      # show it a second time when the inline backend flushes pyplot's open figures.
      plt.close(ax.figure)
    k = self._position(seed)
    summary = self.summary().iloc[k]
    report.draw_subgraph(example, ax, title=(
        f"subgraph of {self.seed_ids[k]} (label {example['label']}): "
        f"{int(summary.filter(like='nodes/').sum())} nodes, "
        f"{int(summary.filter(like='edges/').sum())} edges"))
    return ax.figure


class SubgraphExplorer:
  """Samples subgraphs around given seed ids from a Graph artifact's directory."""

  def __init__(self, graph_dir: str, fanouts: Optional[dict[str, int]] = None, hops: int = 2,
               seed: int = 0, spec_text: Optional[str] = None):
    """`spec_text`: a SamplingSpec in text format instead of `fanouts` and `hops`."""
    from tfx_gnn.components.subgraph_sampler import fast_sampler, sampling
    self.graph_dir = graph_dir
    self.schema = graph_io.read_schema(graph_dir)
    self.label = graph_io.read_label(graph_dir)
    if self.label is None:
      raise ValueError(f"graph {graph_dir} has no labelled node set to seed the sampling from")
    self.graph = graph_io.read_graph(graph_dir)
    if spec_text:
      self.spec = sampling.parse_sampling_spec(spec_text, self.schema, self.label.node_set,
                                               "spec_text")
    elif fanouts is None:
      raise ValueError("give fanouts (with hops) or a SamplingSpec's spec_text")
    else:
      self.spec = sampling.build_sampling_spec(self.schema, self.label.node_set, dict(fanouts),
                                               hops)
    self.sampler = fast_sampler.FastSampler(self.graph, self.spec, seed=seed, schema=self.schema)

  @classmethod
  def from_config(cls, config, graph_dir: Optional[str] = None) -> "SubgraphExplorer":
    """From a run config (a path or a `pipelines.config.Config`): its `sampling` section, on
    the newest Graph artifact under its `pipeline.root` (or `graph_dir`)."""
    from tfx_gnn.pipelines import config as config_lib
    if not isinstance(config, config_lib.Config):
      config = config_lib.load_config(config)
    if graph_dir is None:
      graph_dir = newest_graph(config.root)
    return cls(graph_dir, config.sampling.fanouts, config.sampling.hops, config.sampling.seed,
               spec_text=config.sampling.spec_text)

  def seeds(self, split: str = "train") -> list[str]:
    """The seed ids of a split (train, eval, test)."""
    return graph_io.read_seeds(self.graph_dir, split)

  def graph_summary(self) -> pd.DataFrame:
    """One row per node and edge set of the whole graph: its size and features."""
    rows = [{"kind": "node", "set": n, "count": len(s),
             "features": ", ".join(f"{k}{list(v.shape[1:]) or ''}" for k, v in s.features.items())}
            for n, s in self.graph.node_sets.items()]
    rows += [{"kind": "edge", "set": n, "count": len(s),
              "features": f"{s.source_set} -> {s.target_set}"}
             for n, s in self.graph.edge_sets.items()]
    return pd.DataFrame(rows).sort_values(["kind", "set"], ascending=[False, True],
                                          ignore_index=True)

  def sample(self, seed_ids: Union[str, Iterable[str]], salt: str = "interactive") -> Subgraphs:
    """Subgraphs around `seed_ids` (of the labelled node set). The same salt gives the same
    subgraphs; the SubgraphSampler salts with the split's name."""
    from tfx_gnn.components.attribution import attribution
    seed_ids = [seed_ids] if isinstance(seed_ids, str) else [str(s) for s in seed_ids]
    nodes, edges = self.sampler.sample_frames(seed_ids, salt=salt)
    hops = np.empty(len(nodes), np.int64)
    for k in range(len(seed_ids)):
      in_k = (nodes.subgraph == k).to_numpy()
      sub_nodes = nodes[in_k]
      sub_edges = edges[edges.subgraph == k]
      sizes = sub_nodes.groupby("node_set").size().to_dict()
      by_set = {name: (e.source_set.iloc[0], e.target_set.iloc[0], e.source.to_numpy(),
                       e.target.to_numpy()) for name, e in sub_edges.groupby("edge_set")}
      distances = attribution.hop_distances(sizes, by_set, self.label.node_set,
                                            undirected=True)
      hops[in_k] = [distances[ns][i] for ns, i in zip(sub_nodes.node_set, sub_nodes["index"])]
    nodes["hop"] = hops
    labels = self.graph.node_sets[self.label.node_set].features.get(self.label.feature)
    if labels is not None:
      row = pd.Index(self.graph.node_sets[self.label.node_set].ids.astype(str))
      in_set = (nodes.node_set == self.label.node_set).to_numpy()
      nodes["label"] = pd.array([pd.NA] * len(nodes), dtype="Int64")
      nodes.loc[in_set, "label"] = labels.reshape(-1)[row.get_indexer(nodes.node_id[in_set])]
    return Subgraphs(seed_ids, nodes, edges, self.sampler.sample(seed_ids, salt=salt),
                     self.sampler)


def newest_graph(root: str) -> str:
  """The newest Graph artifact directory of a pipeline root (`<root>/pipeline/GraphIngest/`)."""
  found = sorted(glob.glob(os.path.join(root, "pipeline", "GraphIngest", "graph", "*")),
                 key=lambda p: int(os.path.basename(p)) if os.path.basename(p).isdigit() else -1)
  found = [p for p in found if os.path.exists(os.path.join(p, graph_io.SCHEMA_FILE))]
  if not found:
    raise FileNotFoundError(f"no Graph artifact under {root}/pipeline/GraphIngest: run the "
                            "pipeline (or its ingest) first")
  return found[-1]


def ingest_data(data, out_dir: str) -> str:
  """Ingests a config's `data` section (a dict or `pipelines.config.DataConfig`; e.g.
  `{"synthetic": {"num_papers": 300}}`, the embedded graph) into a Graph artifact directory
  `<out_dir>/graph`, as GraphIngest does: the quickest graph to explore without a pipeline."""
  from tfx_gnn.components.graph_ingest import ingest
  graph_dir = os.path.join(out_dir, "graph")
  ingest.ingest(data, out_dir=graph_dir, scratch_dir=os.path.join(out_dir, "tables"))
  return graph_dir


__all__ = ["SubgraphExplorer", "Subgraphs", "newest_graph", "ingest_data"]

