"""Drift and skew: this run's graph statistics against a baseline's (the statistics of the graph
that the latest blessed model was trained on), as TFDV compares a span's statistics with the
previous span's. Plain functions over two `statistics.json` dicts; no TFX.

Per node set and edge set: the count's relative change; for the labelled node set, the
L-infinity distance of the label distributions (TFDV's measure for categorical features); per
numeric feature (and per component of a vector feature), the Jensen-Shannon divergence of the
value histograms, re-bucketed onto common edges as TFDV does; per edge set, the same divergence
of the out- and in-degree distributions (log2 buckets); and sets or features added, removed or
changed in dtype or shape. Above a `validation.drift` threshold a comparison is an error naming
the set, the feature and the distance; what moved less is one warning per set.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import numpy as np

from tfx_gnn.components.graph_validator.config import DriftConfig
from tfx_gnn.components.graph_validator.validation import ERROR, WARNING, Anomaly

DRIFT = "drift"  # a comparison above its threshold
DRIFT_BELOW_THRESHOLD = "drift_below_threshold"  # moved, within the thresholds (a warning)
ADDED_OR_REMOVED = "added_or_removed"  # sets or features added, removed or retyped

_KEY = "validation.drift."


@dataclasses.dataclass
class Comparison:
  """One measured difference. `feature` is a feature (`feat[3]` for a vector's component),
  `label`, `count`, `out-degree` or `in-degree`; `before`/`after` summarize both sides."""
  set_kind: str  # "node set" or "edge set"
  set_name: str
  file: str
  feature: str
  metric: str
  distance: float
  threshold: Optional[float]  # None: added/removed/changed, judged by config.added_or_removed
  config_key: str
  before: Any = None
  after: Any = None

  @property
  def exceeded(self) -> bool:
    return self.threshold is not None and self.distance > self.threshold

  @property
  def moved(self) -> bool:
    return self.threshold is None or self.distance > 0

  def where(self) -> str:
    return f"{self.set_kind} {self.set_name!r}" + (f" ({self.file})" if self.file else "")

  def describe(self) -> str:
    if self.threshold is None:
      return f"{self.where()}: {self.feature} {self.metric}"
    change = f" ({_short(self.before)} -> {_short(self.after)})" if self.before is not None else ""
    relation = ">" if self.exceeded else "<="
    return (f"{self.where()}: {self.feature}: {self.metric} {self.distance:.3f} {relation} "
            f"{self.config_key} = {self.threshold:g}{change}")

  def to_dict(self) -> dict:
    return {**dataclasses.asdict(self), "exceeded": self.exceeded}


def _short(value: Any) -> str:
  if isinstance(value, dict):
    return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
  if isinstance(value, float):
    return f"{value:.4g}"
  return str(value)


# ---------------------------------------------------------------- distances
def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
  """Jensen-Shannon divergence (base 2, in [0, 1]) of two non-negative weight vectors."""
  from scipy.spatial import distance
  p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
  if p.sum() == 0 or q.sum() == 0:
    return 0.0 if p.sum() == q.sum() else 1.0
  return float(min(1.0, distance.jensenshannon(p, q, base=2) ** 2))


def histogram_divergence(before: dict, after: dict) -> float:
  """Jensen-Shannon divergence of two {"edges", "counts"} histograms with their own edges:
  both are re-bucketed onto the union of their edges, counts spread evenly within a bucket
  (TFDV's re-bucketing of numeric histograms)."""
  if not before["edges"] or not after["edges"]:
    return 0.0 if before["edges"] == after["edges"] else 1.0
  edges = np.union1d(before["edges"], after["edges"])

  def masses(h):
    cdf = np.concatenate([[0.0], np.cumsum(np.asarray(h["counts"], np.float64))])
    return np.diff(np.interp(edges, h["edges"], cdf))

  return jensen_shannon(masses(before), masses(after))


def l_infinity(before: dict[str, int], after: dict[str, int]) -> float:
  """Largest change of one category's share between two {category: count} histograms."""
  keys = sorted(set(before) | set(after))
  p = np.array([before.get(k, 0) for k in keys], np.float64)
  q = np.array([after.get(k, 0) for k in keys], np.float64)
  if p.sum() == 0 or q.sum() == 0:
    return 0.0 if p.sum() == q.sum() else 1.0
  return float(np.abs(p / p.sum() - q / q.sum()).max())


def degree_buckets(histogram: dict) -> dict[str, int]:
  """{bucket: nodes} with buckets 0, 1, 2-3, 4-7, ... (log2), from {"degree", "nodes"}."""
  out: dict[str, int] = {}
  for degree, nodes in zip(histogram["degree"], histogram["nodes"]):
    if degree == 0:
      key = "0"
    else:
      low = 1 << int(np.floor(np.log2(degree)))
      key = f"{low}-{2 * low - 1}" if low > 1 else "1"
    out[key] = out.get(key, 0) + int(nodes)
  return out


def _shares(histogram: dict[str, int]) -> dict[str, float]:
  total = sum(histogram.values()) or 1
  return {k: round(v / total, 4) for k, v in sorted(histogram.items())}


def _summary(feature: dict) -> dict:
  return {k: feature.get(k) for k in ("min", "mean", "max")}


# ---------------------------------------------------------------- comparisons
def _sets_added_or_removed(kind: str, before: dict, after: dict, file_of) -> list[Comparison]:
  out = []
  for name in sorted(set(before) - set(after)):
    out.append(Comparison(kind, name, before[name].get("source_file", ""), "the whole set",
                          "was removed (the baseline has it)", 1.0, None,
                          _KEY + "added_or_removed"))
  for name in sorted(set(after) - set(before)):
    out.append(Comparison(kind, name, file_of(name), "the whole set",
                          "was added (the baseline lacks it)", 1.0, None,
                          _KEY + "added_or_removed"))
  return out


def _features(kind: str, name: str, file: str, before: dict, after: dict,
              config: DriftConfig, skip: Optional[str] = None) -> list[Comparison]:
  out = []
  for feature in sorted(set(before) | set(after)):
    if feature == skip:
      continue
    old, new = before.get(feature), after.get(feature)
    if old is None or new is None:
      out.append(Comparison(kind, name, file, f"feature {feature!r}",
                            "was added (the baseline lacks it)" if old is None else
                            "was removed (the baseline has it)", 1.0, None,
                            _KEY + "added_or_removed"))
      continue
    if (old["dtype"], old["shape"]) != (new["dtype"], new["shape"]):
      out.append(Comparison(kind, name, file, f"feature {feature!r}",
                            f"changed from {old['dtype']} {old['shape']} to {new['dtype']} "
                            f"{new['shape']}", 1.0, None, _KEY + "added_or_removed"))
      continue
    if "histograms" not in old or "histograms" not in new:
      continue  # not numeric, or statistics from before histograms were recorded
    worst, worst_index = 0.0, 0
    for index, (h_old, h_new) in enumerate(zip(old["histograms"], new["histograms"])):
      divergence = histogram_divergence(h_old, h_new)
      if divergence > worst:
        worst, worst_index = divergence, index
    label = feature if len(new["histograms"]) == 1 else f"{feature}[{worst_index}]"
    out.append(Comparison(kind, name, file, f"feature {label!r}",
                          "Jensen-Shannon divergence", worst, config.feature_jensen_shannon,
                          _KEY + "feature_jensen_shannon", _summary(old), _summary(new)))
  return out


def _count(kind: str, name: str, file: str, before: int, after: int,
           config: DriftConfig) -> Comparison:
  change = abs(after - before) / before if before else (0.0 if after == before else 1.0)
  return Comparison(kind, name, file, "count", "relative change", change, config.count_change,
                    _KEY + "count_change", before, after)


def compare(current: dict, baseline: dict, config: DriftConfig) -> list[Comparison]:
  """Every comparison between two GraphValidator statistics dicts (moved or not)."""
  out: list[Comparison] = []
  nodes_now, nodes_then = current["node_sets"], baseline["node_sets"]
  edges_now, edges_then = current["edge_sets"], baseline["edge_sets"]
  out += _sets_added_or_removed("node set", nodes_then, nodes_now,
                                lambda n: nodes_now[n].get("source_file", ""))
  out += _sets_added_or_removed("edge set", edges_then, edges_now,
                                lambda n: edges_now[n].get("source_file", ""))
  label, label_then = current.get("label"), baseline.get("label")
  for name in sorted(set(nodes_now) & set(nodes_then)):
    now, then = nodes_now[name], nodes_then[name]
    file = now.get("source_file", "")
    out.append(_count("node set", name, file, then["count"], now["count"], config))
    skip = label["feature"] if label and label["node_set"] == name else None
    out += _features("node set", name, file, then["features"], now["features"], config, skip)
  if label and label_then and label["node_set"] == label_then["node_set"]:
    name = label["node_set"]
    out.append(Comparison(
        "node set", name, nodes_now.get(name, {}).get("source_file", ""),
        f"label {label['feature']!r}", "L-infinity distance",
        l_infinity(label_then["histogram"], label["histogram"]), config.label_l_infinity,
        _KEY + "label_l_infinity", _shares(label_then["histogram"]),
        _shares(label["histogram"])))
  for name in sorted(set(edges_now) & set(edges_then)):
    now, then = edges_now[name], edges_then[name]
    if now.get("reverse_of"):
      continue  # its forward set's data, compared there
    file = now.get("source_file", "")
    out.append(_count("edge set", name, file, then["count"], now["count"], config))
    out += _features("edge set", name, file, then["features"], now["features"], config)
    for side in ("out", "in"):
      old, new = then.get(f"{side}_degree"), now.get(f"{side}_degree")
      if not old or not new:
        continue  # the validator could not compute degrees (an anomaly of its own)
      old_buckets, new_buckets = (degree_buckets(old["histogram"]),
                                  degree_buckets(new["histogram"]))
      keys = sorted(set(old_buckets) | set(new_buckets))
      out.append(Comparison(
          "edge set", name, file, f"{side}-degree", "Jensen-Shannon divergence",
          jensen_shannon([old_buckets.get(k, 0) for k in keys],
                         [new_buckets.get(k, 0) for k in keys]),
          config.degree_jensen_shannon, _KEY + "degree_jensen_shannon",
          {k: old.get(k) for k in ("mean", "p90", "max")},
          {k: new.get(k) for k in ("mean", "p90", "max")}))
  return out


def anomalies(comparisons: list[Comparison], config: DriftConfig) -> list[Anomaly]:
  """Errors for comparisons above their thresholds (and, with added_or_removed: fail, for
  sets and features added or removed); one warning per set for what moved less."""
  out = []
  below: dict[tuple[str, str, str], list[Comparison]] = {}
  for c in comparisons:
    if c.threshold is None:
      severity = ERROR if config.added_or_removed == "fail" else WARNING
      out.append(Anomaly(ADDED_OR_REMOVED, c.set_name, c.file,
                         f"{c.describe()} (compared with the latest blessed model's graph; "
                         f"{c.config_key} = {config.added_or_removed})",
                         examples=[c.feature], severity=severity))
    elif c.exceeded:
      out.append(Anomaly(DRIFT, c.set_name, c.file,
                         f"{c.where()}: {c.feature} drifted from the latest blessed model's "
                         f"graph: {c.metric} {c.distance:.3f} is above {c.config_key} = "
                         f"{c.threshold:g} ({_short(c.before)} -> {_short(c.after)})",
                         examples=[c.feature], severity=ERROR))
    elif c.moved:
      below.setdefault((c.set_kind, c.set_name, c.file), []).append(c)
  for (_, name, file), moved in below.items():
    moved.sort(key=lambda c: -c.distance / (c.threshold or 1))
    out.append(Anomaly(
        DRIFT_BELOW_THRESHOLD, name, file,
        f"{moved[0].where()}: {len(moved)} measure(s) moved from the latest blessed model's "
        f"graph, within the thresholds; the most: {moved[0].describe()}",
        examples=[c.feature for c in moved], count=len(moved), severity=WARNING))
  return out


def report(comparisons: list[Comparison], baseline_uri: str) -> dict:
  """drift.json: the baseline and every comparison that moved (the run report shows them)."""
  return {"baseline_statistics": baseline_uri,
          "compared": len(comparisons),
          "moved": [c.to_dict() for c in comparisons if c.moved]}
