"""A pipeline config for the synthetic author-venue graph (issue 17's "labels determined 4 hops
away"), with only what a user would give: the data, the fanouts and a tuner budget.

  .venv/bin/python benchmarks/author_venue.py --dir /tmp/av4 [--signal-hops 4] \
      [--tuner-minutes 15]
  .venv/bin/tfx-gnn run /tmp/av4/author_venue.yaml
  .venv/bin/python benchmarks/train_seeds.py /tmp/av4/author_venue.yaml --split test --seeds 5

Writes the tables (`synthetic.generate_author_venue_tables`: labels on featureless authors, 4
classes; with 4 signal hops an author's class shows only in the weak features of the other
papers of their papers' venues: author -> paper -> venue -> paper) under DIR/tables and the
config to DIR/author_venue.yaml, and prints the generating rule's accuracy (the majority class
of the author's venues), over all authors and per split: the ceiling a model is measured
against.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import yaml  # noqa: E402

from benchmarks.defaults_study import FANOUTS  # noqa: E402


def write(out_dir: str, signal_hops: int, tuner_minutes: float) -> dict:
  from tfx_gnn.components.graph_ingest import synthetic
  tables, rule_accuracy, by_split = synthetic.generate_author_venue_tables(
      os.path.join(out_dir, "tables"), signal_hops=signal_hops, seed=0)
  config = {
      "data": {"tables": tables},
      "pipeline": {"name": f"tfx-gnn-author-venue-{signal_hops}hop",
                   "root": os.path.join(out_dir, "runs")},
      "sampling": {"fanouts": FANOUTS["av"]},
      "tuner": {"max_minutes": tuner_minutes},
  }
  path = os.path.join(out_dir, "author_venue.yaml")
  with open(path + ".tmp", "w") as f:
    f.write(f"# Written by benchmarks/author_venue.py; the generating rule is right for "
            f"{100 * rule_accuracy:.2f}% of authors.\n")
    yaml.safe_dump(config, f, sort_keys=False)
  os.replace(path + ".tmp", path)
  return {"config": path, "signal_hops": signal_hops, "rule_accuracy": rule_accuracy,
          "rule_accuracy_by_split": by_split}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--dir", required=True, help="where the tables and the config go")
  parser.add_argument("--signal-hops", type=int, choices=[2, 4], default=4)
  parser.add_argument("--tuner-minutes", type=float, default=15)
  args = parser.parse_args(argv)
  print(json.dumps(write(args.dir, args.signal_hops, args.tuner_minutes)))
  return 0


if __name__ == "__main__":
  sys.exit(main())
