"""TF-GNN's remaining rows through the real pipeline (issue 22): real-valued targets, edge
features chosen per edge set, graph pooling over configurable node sets, dynamic mode with a
SamplingSpec, and the bad input of each new config surface.

Each learning test builds a small table graph whose target depends only on what the feature
under test carries, and asserts learning above the trivial predictor."""
import os

import numpy as np
import pytest

from tfx_gnn.pipelines import config as config_lib
from tfx_gnn.pipelines import local_runner

HERE = os.path.dirname(__file__)


def _write_csv(path, header, rows):
  with open(path, "w") as f:
    f.write(",".join(header) + "\n")
    f.writelines(",".join(v if isinstance(v, str) else f"{v:.4f}" for v in row) + "\n"
                 for row in rows)


def _config(root, **sections) -> config_lib.Config:
  raw = {"pipeline": {"name": "tfx-gnn-rows", "root": str(root)},
         "model": {"num_rounds": 1, "units": 16, "message_dim": 16},
         "trainer": {"epochs": 15, "batch_size": 32, "learning_rate": 0.01},
         "report": {"enabled": False}}
  raw.update(sections)
  return config_lib.parse_config(raw, "rows", HERE)


def _regression_tables(directory, n=300, seed=0):
  """n nodes with 4 noise features; each cites 3 others; its label is the mean of its cited
  nodes' f0 (times 2): a function of neighbour features only."""
  rng = np.random.default_rng(seed)
  features = rng.normal(0, 1, (n, 4))
  cited = np.stack([rng.choice(np.delete(np.arange(n), i), 3, replace=False)
                    for i in range(n)])
  target = 2.0 * features[cited, 0].mean(1) + 0.01  # + 0.01: never an integer by chance
  _write_csv(directory / "nodes.csv", ["id", "f0", "f1", "f2", "f3", "y"],
             [[f"n{i}", *features[i], target[i]] for i in range(n)])
  _write_csv(directory / "cites.csv", ["source", "target"],
             [[f"n{i}", f"n{j}"] for i in range(n) for j in cited[i]])
  return {"tables": {"directory": str(directory),
                     "node_sets": {"node": {"file": "nodes.csv", "label_column": "y"}},
                     "edge_sets": {"cites": {"file": "cites.csv", "source": "node",
                                             "target": "node"}},
                     "splits": {"ratios": {"train": 0.6, "eval": 0.2, "test": 0.2}}}}


# ----------------------------------------------------------------- 1. real-valued targets
@pytest.mark.slow
def test_node_regression_on_float_labels_beats_the_mean_predictor(tmp_path):
  from tfx_gnn.components import graph_io
  data = _regression_tables(tmp_path)
  config = _config(tmp_path / "root", data=data,
                   sampling={"hops": 1, "fanouts": {"cites": 3}},
                   task={"type": "root_node_regression"},
                   evaluation={"metric": "mse", "max_regression": 100.0})
  summary = local_runner.run(config)
  for component in ("GraphIngest", "GraphValidator", "GnnTrainer", "GnnEvaluator"):
    assert summary["components"][component] == "COMPLETE", summary["components"]
  graph_dirs = [os.path.join(d, sub) for d, subs, _ in os.walk(tmp_path / "root")
                for sub in subs if d.endswith(os.path.join("GraphIngest", "graph"))]
  label = graph_io.read_label(graph_dirs[0])
  assert label.real_valued and label.num_classes == 0
  ev = summary["evaluation"]
  mean = ev["trivial"]["eval"]
  metrics, test = summary["eval_metrics"], summary["test_metrics"]
  print(f"\nregression eval: mse {metrics['mse']:.4f} mae {metrics['mae']:.4f} "
        f"r2 {metrics['r2']:.4f}; mean predictor mse {mean['mse']:.4f} r2 {mean['r2']:.4f}; "
        f"test: mse {test['mse']:.4f} r2 {test['r2']:.4f}")
  assert mean["r2"] == pytest.approx(0.0, abs=1e-9)
  assert metrics["mse"] < 0.6 * mean["mse"] and metrics["r2"] > 0.4
  assert test["r2"] > 0.4 and {"mse", "mae", "r2"} <= set(test)
  assert summary["blessed"] is True
