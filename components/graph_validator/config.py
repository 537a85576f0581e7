"""GraphValidator's config: the run config's `validation` section."""
from __future__ import annotations

from typing import Literal

import pydantic

from tfx_gnn.components.config_base import Strict


class DriftConfig(Strict):
  """How far this run's graph may move from the graph of the latest blessed model (its
  GraphStatistics, resolved from ML Metadata). Above a threshold the run fails naming the set,
  the feature and the distance; anything that moved less is a warning. The first run (no
  blessed model yet) has nothing to compare with."""
  enabled: bool = True
  # |count - baseline count| / baseline count of a node or edge set.
  count_change: float = pydantic.Field(0.5, ge=0)
  # L-infinity distance of the label distributions (largest change of a class's share), as
  # TFDV's infinity_norm for categorical features.
  label_l_infinity: float = pydantic.Field(0.1, ge=0, le=1)
  # Jensen-Shannon divergence (base 2, in [0, 1]) of a numeric feature's histograms (per
  # component of a vector feature), as TFDV's jensen_shannon_divergence.
  feature_jensen_shannon: float = pydantic.Field(0.1, ge=0, le=1)
  # The same for an edge set's out- and in-degree distributions (log2 buckets).
  degree_jensen_shannon: float = pydantic.Field(0.1, ge=0, le=1)
  # Node sets, edge sets or features added or removed, or a feature whose dtype or shape
  # changed: a warning (the evaluator then judges the baseline's compatibility) or an error.
  added_or_removed: Literal["warn", "fail"] = "warn"


class ValidationConfig(Strict):
  allow_self_loops: bool = True
  allow_duplicate_edges: bool = True
  max_isolated_fraction: float = pydantic.Field(1.0, ge=0, le=1)
  # A Graph artifact larger than this on storage is validated as a Beam pipeline over the
  # component's beam_pipeline_args (components/graph_validator/beam_validation.py): duplicate
  # ids and dangling edges on the workers, the schema, labels and splits with only the
  # labelled node set in memory.
  beam_threshold_mb: float = pydantic.Field(1024.0, ge=0)
  drift: DriftConfig = DriftConfig()
