"""One pipeline run as one self-contained HTML page (plain functions; no TFX needed).

`collect()` reads the run's artifacts (graph statistics, anomalies, the evaluation, the
blessing, the attributions, the push), the training history from MLflow and the lineage from
ML Metadata; `render_html()` turns that into the page; `plots()` gives each figure as PNG
bytes so they can be logged to MLflow one by one too.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

import numpy as np

from tfx_gnn.components import html_report

REPORT_FILE = "report.html"
DATA_FILE = "report.json"
# Section ids, in page order; tests check that every one renders.
SECTIONS = ("overview", "graph", "validation", "drift", "training", "evaluation", "confusion",
            "attribution", "lineage")


@dataclasses.dataclass
class RunData:
  """Everything the report shows; each part may be None when its artifact is absent."""
  pipeline_name: str
  pipeline_run_id: str
  statistics: Optional[dict] = None
  # edge set -> {"out": {"degree": [...], "nodes": [...]}, "in": {...}}
  degree_histograms: Optional[dict] = None
  anomalies: Optional[list] = None
  drift: Optional[dict] = None  # GraphValidator's drift.json (none without a baseline)
  history: Optional[dict] = None  # metric -> [(step, value)]
  evaluation: Optional[dict] = None  # GnnEvaluator's metrics.json
  blessed: Optional[bool] = None
  attribution: Optional[dict] = None  # Attribution's summary.json
  pushed: Optional[dict] = None  # {"pushed": bool, "destination": ..., "mlflow_model_version"}
  mlflow: Optional[dict] = None  # {"tracking_uri", "run_id", "experiment_id"}
  lineage: Optional[list] = None  # [{"component", "state", "inputs", "outputs"}]
  lineage_source: str = ""  # where the lineage came from (ML Metadata, or why not)

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, default=str)


def read_json(path: str):
  import tensorflow as tf  # local or gs://
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def read_statistics(statistics_uri: str) -> dict:
  return read_json(os.path.join(statistics_uri, "statistics.json"))


def read_anomalies(anomalies_uri: str) -> list:
  return read_json(os.path.join(anomalies_uri, "anomalies.json"))


def read_drift(anomalies_uri: str) -> Optional[dict]:
  """The validator's comparison with the latest blessed model's graph; None on a run without
  one (the first run, or drift checks disabled)."""
  import tensorflow as tf
  path = os.path.join(anomalies_uri, "drift.json")
  return read_json(path) if tf.io.gfile.exists(path) else None


def degree_histograms(statistics: dict) -> dict:
  """{edge set: {"out": histogram, "in": histogram}} from the validator's statistics (which
  computed every degree already: re-reading the graph here took 177 s and 9 GB at OGBN-MAG
  size); edge sets without degrees (the validator's anomaly) are left out."""
  out = {}
  for name, entry in statistics.get("edge_sets", {}).items():
    if entry.get("out_degree") and entry.get("in_degree"):
      out[name] = {"out": entry["out_degree"]["histogram"], "in": entry["in_degree"]["histogram"]}
  return out


# Metrics that later steps (attribution, this report) add to the trainer's MLflow run: not
# training curves.
NOT_TRAINING = ("attribution.", "test_", "eval_", "graph.")


def mlflow_history(tracking_uri: str, run_id: str) -> dict:
  """The trainer's per-epoch metrics in its MLflow run, with their history."""
  from tfx_gnn.components import tracking
  client = tracking.client(tracking_uri)
  run = client.get_run(run_id)
  history = {}
  for key in sorted(k for k in run.data.metrics if not k.startswith(NOT_TRAINING)):
    points = client.get_metric_history(run_id, key)
    history[key] = sorted((m.step, m.value) for m in points)
  return history


# ------------------------------------------------------------------------------ plots
def _degree_plot(hists: dict):
  names = sorted(hists)
  fig, axes = html_report.subplots(1, len(names), figsize=(2.6 * len(names), 2.6), squeeze=False)
  for ax, name in zip(axes[0], names):
    for side, color in (("out", "#1f77b4"), ("in", "#ff7f0e")):
      degree = np.asarray(hists[name][side]["degree"])
      if degree.size:
        # One filled outline per histogram, not a patch per bin; no log-scale minor ticks:
        # the figure renders in a third of the time.
        ax.hist(degree, bins=min(30, max(degree.max(), 1)), weights=hists[name][side]["nodes"],
                alpha=0.6, color=color, label=side, histtype="stepfilled")
    ax.set_title(name, fontsize=8)
    ax.set_yscale("log")
    ax.minorticks_off()
    ax.tick_params(labelsize=6)
  axes[0][0].legend(fontsize=6)
  axes[0][0].set_ylabel("nodes (log)")
  return html_report.figure_png(fig)


def _training_plot(history: dict):
  epoch_metrics = {k: v for k, v in history.items() if len(v) > 1 or k in ("loss", "val_loss")}
  bases = sorted({k[4:] if k.startswith("val_") else k for k in epoch_metrics})
  width = max(len(bases), 1)
  fig, axes = html_report.subplots(1, width, figsize=(3.4 * width, 2.8), squeeze=False)
  for ax, base in zip(axes[0], bases):
    for key, style in ((base, "-o"), ("val_" + base, "--s")):
      if key in history:
        steps, values = zip(*history[key])
        ax.plot(steps, values, style, label=key, markersize=3)
    ax.set_title(base, fontsize=8)
    ax.set_xlabel("epoch", fontsize=7)
    ax.legend(fontsize=6)
  return html_report.figure_png(fig)


def _confusion_plot(matrix: list, split: str = "test"):
  m = np.asarray(matrix)
  fig, ax = html_report.subplots(figsize=(0.5 * len(m) + 2, 0.5 * len(m) + 1.6))
  ax.imshow(m, cmap="Blues")
  for i in range(len(m)):
    for j in range(len(m)):
      ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7,
              color="white" if m[i, j] > m.max() / 2 else "black")
  ax.set_xticks(range(len(m)))
  ax.set_yticks(range(len(m)))
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  ax.set_title(f"{split}-split confusion matrix", fontsize=8)
  return html_report.figure_png(fig)


def _attribution_plot(summary: dict):
  rows = sorted(summary["features"], key=lambda r: -r["importance"])[:20]
  fig, ax = html_report.subplots(figsize=(6, 0.22 * len(rows) + 1))
  ax.barh([f"{r['node_set']}.{r['feature']}[{r['index']}]" for r in rows][::-1],
          [r["importance"] for r in rows][::-1], color="#2ca02c")
  ax.tick_params(labelsize=7)
  ax.set_title("top features by |attribution|", fontsize=8)
  return html_report.figure_png(fig)


def plots(data: RunData) -> dict[str, bytes]:
  """Every figure of the report, by file name."""
  out = {}
  if data.degree_histograms:
    out["degrees.png"] = _degree_plot(data.degree_histograms)
  if data.history:
    out["training.png"] = _training_plot(data.history)
  # Classification tasks only (regression and DGI's probe-less runs have no confusion matrix).
  if data.evaluation and "confusion_matrix" in data.evaluation["candidate"]:
    out["confusion.png"] = _confusion_plot(data.evaluation["candidate"]["confusion_matrix"],
                                           data.evaluation.get("split", "test"))
  if data.attribution and data.attribution.get("features"):
    out["attribution.png"] = _attribution_plot(data.attribution)
  return out


# ------------------------------------------------------------------------------ page
def _missing(what: str) -> str:
  return f'<p class="muted">No {html_report.esc(what)} in this run.</p>'


def _evaluation_html(ev: dict) -> str:
  """Each split's metrics beside the trivial baseline's and the latest blessed model's on the
  split that decided, the bars the model had to clear, the baseline's compatibility and the
  exported epoch."""
  t = html_report.table
  esc = html_report.esc
  decided = ev.get("split", "test")
  splits = ev.get("splits") or {decided: ev["candidate"]}
  trivial = (ev.get("trivial") or {}).get(decided)
  baseline = ev.get("baseline")
  # The task's scalar metrics (classification: accuracy, F1; regression: mse, mae, ...).
  keys = [k for k, v in ev["candidate"].items()
          if isinstance(v, (int, float)) and not isinstance(v, bool)]
  rows = []
  for k in keys:
    row = {"metric": k}
    for split, metrics in splits.items():
      row[f"{split}" + (" (decided)" if split == decided else "")] = metrics.get(k, "")
    if trivial is not None:
      row[f"trivial baseline ({decided})"] = trivial.get(k, "")
    row[f"latest blessed model ({decided})"] = baseline[k] if baseline else "(none)"
    row["change vs. latest blessed"] = (ev["candidate"][k] - baseline[k]) if baseline else ""
    rows.append(row)
  body = t(rows, left=("metric",))
  thresholds = ev.get("thresholds")
  metric = ev["metric"]
  if thresholds and trivial is not None:
    better = "&le;" if thresholds.get("lower_is_better") else "&ge;"
    bound = (f"upper bound {thresholds['upper_bound']}" if thresholds.get("lower_is_better")
             else f"lower bound {thresholds['lower_bound']:g}")
    body += (f"<p>Decided on the <b>{esc(decided)}</b> split by {esc(metric)} "
             f"{ev['candidate'][metric]:.4f}. Thresholds: {esc(metric)} {better} "
             f"{thresholds['required_over_trivial']:.4f} to beat the trivial baseline "
             f"({esc(trivial.get('predictor'))}: {trivial[metric]:.4f}) by "
             f"min_margin_over_trivial {thresholds['min_margin_over_trivial']:g}; {esc(bound)}; "
             f"max_regression {thresholds['max_regression']:g} against the latest blessed "
             f"model.</p>")
  body += ('<p class="good">Blessed.</p>' if ev["blessed"] else
           f'<p class="bad">Not blessed: {esc("; ".join(ev["reasons"]))}</p>')
  if ev.get("baseline_incompatibility"):
    body += (f'<p class="bad">Baseline {esc(ev.get("baseline_model_uri"))} incompatible: '
             f'{esc(ev["baseline_incompatibility"])}.</p>')
  elif ev.get("baseline_model_uri"):
    body += f"<p>Baseline: {esc(ev['baseline_model_uri'])}</p>"
  else:
    body += "<p>No baseline: no model was blessed before.</p>"
  if ev.get("exported_epoch"):
    body += (f"<p>Exported weights: epoch {ev['exported_epoch']} of "
             f"{ev.get('epochs_trained')}.</p>")
  return body


def _tasks_html(ev: dict) -> str:
  """A multi-task model's heads: each one's metric on every split against its own trivial
  baseline, the bar it had to clear and its verdict (every head must pass)."""
  esc = html_report.esc
  decided = ev.get("split", "eval")
  rows = []
  for name, task in ev["tasks"].items():
    metric, thresholds = task["metric"], task["thresholds"]
    row = {"task": name, "type": task["type"], "target": task["target"], "metric": metric}
    for split, metrics in task["splits"].items():
      row[split + (" (decided)" if split == decided else "")] = metrics[metric]
    row[f"trivial baseline ({decided})"] = task["trivial"][decided][metric]
    row["required"] = (("<= " if thresholds["lower_is_better"] else ">= ")
                       + f"{thresholds['required_over_trivial']:.4f}")
    row["latest blessed"] = task["baseline"][metric] if task.get("baseline") else "(none)"
    row["passed"] = "yes" if task["blessed"] else "no: " + "; ".join(task["reasons"])
    rows.append(row)
  return (html_report.table(rows, left=("task", "type", "target", "metric", "passed"))
          + f"<p>Blessed only if every head beats its own trivial baseline and passes its own "
            f"gate: {esc('blessed' if ev['blessed'] else 'not blessed')}.</p>")


def render_html(data: RunData, figures: Optional[dict[str, bytes]] = None) -> str:
  figures = plots(data) if figures is None else figures
  t = html_report.table
  sec = html_report.section
  out = []

  overview = [{"item": "pipeline", "value": data.pipeline_name},
              {"item": "pipeline run", "value": data.pipeline_run_id}]
  if data.evaluation:
    ev = data.evaluation
    decided = ev.get("split", "test")
    for split, metrics in (ev.get("splits") or {decided: ev["candidate"]}).items():
      overview.append({"item": f"{split} {ev['metric']}" + (" (decided the blessing)"
                                                           if split == decided else ""),
                       "value": f"{metrics[ev['metric']]:.4f}"})
  overview.append({"item": "blessed", "value": {None: "unknown", True: "yes",
                                                False: "no"}[data.blessed]})
  if data.pushed:
    overview.append({"item": "pushed to", "value": data.pushed.get("destination") or "not pushed"})
    if data.pushed.get("mlflow_model_version"):
      overview.append({"item": "MLflow registered model version",
                       "value": data.pushed["mlflow_model_version"]})
  if data.mlflow:
    overview.append({"item": "MLflow run", "value": f"{data.mlflow['run_id']} at "
                                                    f"{data.mlflow['tracking_uri']}"})
  out.append(sec("overview", "Overview", t(overview, left=("item", "value"))))

  if data.statistics:
    s = data.statistics
    nodes = [{"node set": k, "nodes": v["count"]} for k, v in s["node_sets"].items()]
    edges = [{"edge set": k, "edges": v["count"], "source": v["source_set"],
              "target": v["target_set"],
              "mean out-degree": (v.get("out_degree") or {}).get("mean", ""),
              "max in-degree": (v.get("in_degree") or {}).get("max", "")}
             for k, v in s["edge_sets"].items()]
    body = t(nodes, left=("node set",)) + t(edges, left=("edge set", "source", "target"))
    if s.get("splits"):
      body += t([{"split": k, "nodes": v} for k, v in s["splits"].items()], left=("split",))
    if "degrees.png" in figures:
      body += "<p>Degree distributions (out = as source, in = as target):</p>"
      body += html_report.img(figures["degrees.png"], "degree distributions")
    out.append(sec("graph", "Graph statistics", body))
  else:
    out.append(sec("graph", "Graph statistics", _missing("graph statistics")))

  if data.anomalies is None:
    out.append(sec("validation", "Validation", _missing("validation result")))
  elif not data.anomalies:
    out.append(sec("validation", "Validation",
                   '<p class="good">The graph passed validation: no anomalies.</p>'))
  else:
    out.append(sec("validation", "Validation", f'<p class="bad">{len(data.anomalies)} '
                   f'anomalies:</p>' + t([{"anomaly": json.dumps(a)} for a in data.anomalies],
                                         left=("anomaly",))))

  out.append(sec("drift", "Drift from the latest blessed model's graph", _drift_body(data)))

  if data.history:
    final = [{"metric": k, "final": v[-1][1], "epochs": len(v)} for k, v in data.history.items()]
    out.append(sec("training", "Training", html_report.img(figures["training.png"],
                                                           "training curves")
                   + t(final, left=("metric",))))
  else:
    out.append(sec("training", "Training", _missing("training history")))

  if data.evaluation:
    out.append(sec("evaluation", "Evaluation: the blessing gate",
                   _evaluation_html(data.evaluation)))
    if data.evaluation.get("tasks"):
      out.append(sec("tasks", "Tasks: each head's gate", _tasks_html(data.evaluation)))
    out.append(sec("confusion", "Confusion matrix",
                   html_report.img(figures["confusion.png"], "confusion matrix")
                   if "confusion.png" in figures else
                   '<p class="muted">No confusion matrix: not a classification task.</p>'))
  else:
    out.append(sec("evaluation", "Evaluation: the blessing gate", _missing("evaluation")))
    out.append(sec("confusion", "Confusion matrix", _missing("evaluation")))

  if data.attribution:
    a = data.attribution
    body = (f"<p>{a['num_subgraphs']} test subgraphs, {a['settings'].get('steps')} steps, "
            f"{html_report.esc(a['settings'].get('counterfactual'))} counterfactual.</p>"
            + t(a["node_sets"], left=("node_set",)))
    if "attribution.png" in figures:
      body += html_report.img(figures["attribution.png"], "top features")
    hops = {}
    for r in a["hops"]:
      hops[r["hop"]] = hops.get(r["hop"], 0.0) + r["importance"]
    body += t([{"hop": h, "importance": v} for h, v in sorted(hops.items())])
    out.append(sec("attribution", "Attribution", body))
  else:
    out.append(sec("attribution", "Attribution", _missing("attribution")))

  if data.lineage:
    rows = [{"component": r["component"], "state": r["state"],
             "inputs": ", ".join(f"{i['key']}: {i['type']} #{i['id']}" for i in r["inputs"]),
             "outputs": ", ".join(f"{o['key']}: {o['type']} #{o['id']}" for o in r["outputs"])}
            for r in data.lineage]
    body = (f"<p>{html_report.esc(data.lineage_source)}</p>"
            + t(rows, left=("component", "state", "inputs", "outputs")))
  else:
    body = f'<p class="muted">{html_report.esc(data.lineage_source or "No lineage.")}</p>'
  out.append(sec("lineage", "Lineage", body))
  return html_report.page(f"{data.pipeline_name}: run {data.pipeline_run_id}", out)


def _brief(value) -> str:
  if isinstance(value, dict):
    return ", ".join(f"{k}: {_brief(v)}" for k, v in value.items())
  return f"{value:.4g}" if isinstance(value, float) else str(value)


def _drift_body(data: RunData) -> str:
  """Before/after of every measure that moved since the baseline, worst first."""
  if data.drift is None:
    return ('<p class="muted">No drift check in this run: no model was blessed before this '
            'graph arrived (a first run), or validation.drift.enabled is false.</p>')
  moved = sorted(data.drift["moved"], key=lambda m: (not m["exceeded"], m["threshold"] is not None,
                                                     -m["distance"]))
  body = (f"<p>{data.drift['compared']} measures compared with the statistics of "
          f"{html_report.esc(data.drift['baseline_statistics'])}; "
          f"{len(moved)} moved.</p>")
  if not moved:
    return body
  rows = [{"set": f"{m['set_kind']} {m['set_name']}", "measure": m["feature"],
           "distance": (f"{m['metric']} {m['distance']:.4f}" if m["threshold"] is not None
                        else m["metric"]),
           "threshold": "" if m["threshold"] is None else f"{m['threshold']:g}",
           "before": _brief(m["before"]) if m["before"] is not None else "",
           "after": _brief(m["after"]) if m["after"] is not None else "",
           "verdict": ("above threshold" if m["exceeded"] else
                       "added/removed" if m["threshold"] is None else "within threshold")}
          for m in moved]
  return body + html_report.table(rows, left=("set", "measure", "distance", "before", "after",
                                              "verdict"))


def lineage_from_mlmd(metadata_path: str, pipeline_run_id: str) -> list[dict]:
  """The run's executions and their artifacts from the ML Metadata SQLite file."""
  from tfx_gnn.components import lineage
  store = lineage.open_store(metadata_path)
  return [{"component": r.component, "state": r.state,
           "inputs": [{"key": i.key, "type": i.type, "id": i.id, "uri": i.uri} for i in r.inputs],
           "outputs": [{"key": o.key, "type": o.type, "id": o.id, "uri": o.uri}
                       for o in r.outputs]}
          for r in lineage.executions(store, pipeline_run_id)]
