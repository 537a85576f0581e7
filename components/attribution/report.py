"""The Attributions artifact on disk: Parquet tables, a JSON summary and an HTML report.

  node_sets.parquet   node_set, importance (mean |attribution| per subgraph), share
  features.parquet    node_set, feature, index, importance, rank (1 = most important)
  hops.parquet        hop, node_set, num_nodes, importance, importance_per_node
  summary.json        the settings, the tables above as records, the top features
  examples.json       the drawn example subgraphs: nodes (set, index, hop, importance), edges
  report.html         self-contained: plots embedded as PNGs
"""
from __future__ import annotations

import io
import json
import math
import os
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection

from tfx_gnn.components import graph_io, html_report
from tfx_gnn.components.attribution.attribution import UNREACHED, SubgraphAttribution, Summary

REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.json"
TABLES = ("node_sets", "features", "hops")
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf"]


def _write_bytes(path: str, data: bytes) -> None:
  import tensorflow as tf  # gs:// as well as local
  tmp = path + ".tmp"
  with tf.io.gfile.GFile(tmp, "wb") as f:
    f.write(data)
  tf.io.gfile.rename(tmp, path, overwrite=True)


def summary_dict(summary: Summary, settings: dict, top: int = 10) -> dict:
  features = summary.features.sort_values("importance", ascending=False)
  return {
      "settings": settings,
      "num_subgraphs": summary.num_subgraphs,
      "node_sets": summary.node_sets.to_dict("records"),
      "hops": summary.hops.to_dict("records"),
      "features": summary.features.to_dict("records"),
      "top_features": features.head(top).to_dict("records"),
  }


def _example(sub: SubgraphAttribution) -> dict:
  nodes = []
  for ns, hops in sub.hops.items():
    total = np.zeros(len(hops))
    for a in sub.values.get(ns, {}).values():
      total += np.abs(a).sum(1)
    nodes += [{"node_set": ns, "index": i, "hop": int(h), "importance": float(v)}
              for i, (h, v) in enumerate(zip(hops, total))]
  edges = [{"edge_set": e, "source_set": ss, "target_set": ts, "source": int(s), "target": int(t)}
           for e, (ss, ts, sources, targets) in sub.edges.items()
           for s, t in zip(sources, targets)]
  return {"label": sub.label, "nodes": nodes, "edges": edges}


# Bars drawn per node set: all of a narrow node set's feature entries, a wide one's most
# important (a bag of 1,902 words drew a 534-inch figure in 7 s, unreadable; summary.json
# keeps every entry).
MAX_BARS = 40


def drawn_features(rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
  """One node set's feature rows to draw as bars, and what the title says of them."""
  if len(rows) <= MAX_BARS:
    return rows, ""
  return (rows.nlargest(MAX_BARS, "importance", keep="first"),
          f" (the {MAX_BARS} largest of {len(rows)})")


def _bars_per_node_set(summary: Summary) -> list[tuple[str, bytes]]:
  out = []
  for ns, rows in summary.features.groupby("node_set"):
    entries = rows.feature.value_counts()
    vector = set(entries[entries > 1].index)  # features with several entries get [index]
    rows, which = drawn_features(rows)
    title = f"feature importance: {ns}{which}"
    labels = [f"{r.feature}[{r.index}]" if r.feature in vector else r.feature
              for r in rows.itertuples()]
    fig, ax = html_report.subplots(figsize=(max(5, 0.28 * len(rows) + 2), 3.2))
    ax.bar(range(len(rows)), rows["importance"], color=COLORS[0])
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, rotation=90, fontsize=7)
    ax.set_ylabel("mean |attribution| per subgraph")
    ax.set_title(title)
    out.append((ns, html_report.figure_png(fig)))
  return out


def _hop_plot(summary: Summary) -> bytes:
  fig, (ax1, ax2) = html_report.subplots(1, 2, figsize=(10, 3.4))
  hops = summary.hops
  labels = sorted(hops.hop.unique())
  names = sorted(hops.node_set.unique())
  bottom = np.zeros(len(labels))
  for k, ns in enumerate(names):
    rows = hops[hops.node_set == ns].set_index("hop").reindex(labels).fillna(0)
    ax1.bar([str(h) if h != UNREACHED else "unreached" for h in labels], rows["importance"],
            bottom=bottom, label=ns, color=COLORS[k % len(COLORS)])
    bottom += rows["importance"].to_numpy()
    ax2.plot([str(h) if h != UNREACHED else "unreached" for h in labels],
             rows["importance_per_node"], marker="o", label=ns, color=COLORS[k % len(COLORS)])
  ax1.set_title("importance by hop (per subgraph)")
  ax1.set_xlabel("hops from the root")
  ax1.legend(fontsize=7)
  ax2.set_title("importance per node by hop")
  ax2.set_xlabel("hops from the root")
  return html_report.figure_png(fig)


def draw_subgraph(example: dict, ax, title: str | None = None) -> None:
  """Draws one subgraph on matplotlib axes `ax`. Radial layout: the root in the centre, each
  hop on its own ring; node area ~ `importance` when the nodes have one. `example` has
  `nodes` (node_set, index, hop, and optionally importance, node_id) and `edges` (source_set,
  source, target_set, target: node indices per set). Shared with `tfx_gnn.interactive`."""
  nodes = example["nodes"]
  sets = sorted({n["node_set"] for n in nodes})
  color = {ns: COLORS[k % len(COLORS)] for k, ns in enumerate(sets)}
  rings: dict[int, list[int]] = {}
  for k, n in enumerate(nodes):
    rings.setdefault(n["hop"] if n["hop"] != UNREACHED else max(
        [m["hop"] for m in nodes] + [0]) + 1, []).append(k)
  pos = {}
  for hop, members in rings.items():
    for j, k in enumerate(members):
      angle = 2 * math.pi * j / max(len(members), 1) + 0.3 * hop
      pos[k] = (hop * math.cos(angle), hop * math.sin(angle))
  index = {(n["node_set"], n["index"]): k for k, n in enumerate(nodes)}
  segments = []
  for e in example["edges"]:
    a, b = index.get((e["source_set"], e["source"])), index.get((e["target_set"], e["target"]))
    if a is not None and b is not None:
      segments.append([pos[a], pos[b]])
  # One collection, not a line per edge: a 2-hop subgraph has hundreds of edges.
  ax.add_collection(LineCollection(segments, colors="#bbb", linewidths=0.6, zorder=1))
  weighted = any("importance" in n for n in nodes)
  top = max([n.get("importance", 0.0) for n in nodes] + [1e-12])
  for ns in sets:
    ks = [k for k, n in enumerate(nodes) if n["node_set"] == ns]
    sizes = ([12 + 300 * nodes[k].get("importance", 0.0) / top for k in ks] if weighted
             else 40)
    ax.scatter([pos[k][0] for k in ks], [pos[k][1] for k in ks], s=sizes, color=color[ns],
               label=ns, zorder=2, edgecolors="k", linewidths=0.3)
  root = [k for k, n in enumerate(nodes) if n["hop"] == 0]
  if root and "node_id" in nodes[root[0]]:
    ax.annotate(str(nodes[root[0]]["node_id"]), pos[root[0]], fontsize=7,
                xytext=(4, 4), textcoords="offset points")
  if title is None:
    title = f"root label {example.get('label')}: node area = |attribution|"
  ax.set_title(title, fontsize=8)
  ax.legend(fontsize=6, loc="upper right")
  ax.set_axis_off()


def _draw_subgraph(example: dict) -> bytes:
  fig, ax = html_report.subplots(figsize=(4.2, 4.2))
  draw_subgraph(example, ax)
  return html_report.figure_png(fig)


def render_html(summary: Summary, settings: dict, examples: Sequence[dict],
                title: str = "Attribution report") -> str:
  sections = [html_report.section("settings", "Settings", html_report.table(
      [{"setting": k, "value": v} for k, v in
       {**settings, "subgraphs attributed": summary.num_subgraphs}.items()],
      left=("setting", "value")) + "<p>Importance is the mean absolute gradient &times; input "
      "attribution per subgraph (integrated gradients, TF-GNN's IntegratedGradientsExporter)."
      " Node sets without input features (learned id embeddings) get none.</p>")]
  sections.append(html_report.section("node-sets", "Importance per node set", html_report.table(
      summary.node_sets.to_dict("records"), left=("node_set",))))
  bars = "".join(html_report.img(png, f"feature importance {ns}")
                 for ns, png in _bars_per_node_set(summary))
  top = summary.features.sort_values("importance", ascending=False).head(15)
  sections.append(html_report.section(
      "features", "Feature importance per node set",
      bars + html_report.table(top.to_dict("records"), left=("node_set", "feature"))))
  sections.append(html_report.section(
      "hops", "Importance by hop from the root",
      html_report.img(_hop_plot(summary), "importance by hop")
      + html_report.table(summary.hops.to_dict("records"), left=("node_set",))))
  drawn = "".join(html_report.img(_draw_subgraph(ex), f"example subgraph {i}")
                  for i, ex in enumerate(examples))
  sections.append(html_report.section("examples", "Example subgraphs",
                                      drawn or '<p class="muted">(none drawn)</p>'))
  return html_report.page(title, sections)


def write(out_dir: str, summary: Summary, subgraphs: Sequence[SubgraphAttribution],
          settings: dict, drawn: int) -> dict:
  """Writes every file of the artifact (each atomically); returns the summary dict."""
  import tensorflow as tf
  tf.io.gfile.makedirs(out_dir)
  for name in TABLES:
    buffer = io.BytesIO()
    getattr(summary, name).to_parquet(buffer, index=False)
    _write_bytes(os.path.join(out_dir, f"{name}.parquet"), buffer.getvalue())
  examples = [_example(s) for s in subgraphs[:drawn]]
  graph_io.write_text(os.path.join(out_dir, "examples.json"), json.dumps(examples))
  result = summary_dict(summary, settings)
  graph_io.write_text(os.path.join(out_dir, SUMMARY_FILE), json.dumps(result, indent=2))
  graph_io.write_text(os.path.join(out_dir, REPORT_FILE),
                      render_html(summary, settings, examples))
  return result
