"""The GnnTuner's `HyperParameters` artifact, as the components that consume it read it.

`best_hyperparameters.txt` (TFX Tuner's file name) holds JSON overrides of run-config sections:
`model` (the whole section the best trial trained with), `trainer` and `sampling` (only the
searched settings). Shared by the GnnTrainer and the SubgraphSampler, so that the train,
eval and test subgraphs are sampled with the tuned hops and fanouts.
"""
from __future__ import annotations

import json
import os

from tfx_gnn.components import config_base

BEST_HYPERPARAMETERS_FILE = "best_hyperparameters.txt"
SECTIONS = ("model", "trainer", "sampling")


def read_overrides(uri: str) -> dict:
  """{section: settings} of a HyperParameters artifact directory; a clear error naming the
  file when it is missing or not what the tuner writes."""
  import tensorflow as tf
  path = os.path.join(uri, BEST_HYPERPARAMETERS_FILE)
  try:
    with tf.io.gfile.GFile(path) as f:
      overrides = json.loads(f.read())
  except (tf.errors.NotFoundError, json.JSONDecodeError) as e:
    raise ValueError(f"hyperparameters {path}: not readable as the GnnTuner's JSON ({e})") \
        from None
  if not isinstance(overrides, dict) or set(overrides) - set(SECTIONS):
    raise ValueError(f"hyperparameters {path}: expected sections {SECTIONS}, got "
                     f"{sorted(overrides) if isinstance(overrides, dict) else overrides!r}")
  return overrides


def apply(cfg, overrides: dict, section: str, section_type=None):
  """`cfg` (a config section) with the artifact's settings for `section`, validated again as
  `section_type` (default: cfg's class; the model section's union, whose tag picks the
  template's class). The `model` section replaces the whole of it: its options fit the tuned
  template."""
  values = overrides.get(section) or {}
  if not values:
    return cfg
  section_type = section_type or type(cfg)
  if section == "model":
    return config_base.validate(section_type, values)
  return config_base.validate(section_type, {**cfg.model_dump(), **values})
