"""GraphIngest's work alone on the synthetic graph, phase by phase: CPU seconds and peak RSS.

  PYTHONPATH=. .venv/bin/python benchmarks/ingest_scale.py 736389 /tmp/ingest_scale

Generates the tables (`tfx_gnn.components.graph_ingest.synthetic.generate_tables`, 349
classes, 128-d features), reads them (`ingest.tables_to_graph`) and writes the unigraph
(`graph_io.write_graph`) under the given directory, as GraphIngest does, printing each
phase's CPU seconds.
"""
import resource
import sys
import time

from tfx_gnn.components import graph_io
from tfx_gnn.components.graph_ingest import ingest
from tfx_gnn.pipelines import config as config_lib
from tfx_gnn.components.graph_ingest import synthetic


def _cpu() -> float:
  r = resource.getrusage(resource.RUSAGE_SELF)
  return r.ru_utime + r.ru_stime


def main(num_papers: int, out_dir: str) -> None:
  start, c0 = time.time(), _cpu()
  spec = synthetic.generate_tables(out_dir + "/tables", num_papers=num_papers, num_classes=349,
                                   feature_dim=128, seed=0)
  c1 = _cpu()
  print(f"generate tables: cpu {c1 - c0:.1f} s", flush=True)
  graph = ingest.tables_to_graph(config_lib.TablesSource.model_validate(spec))
  c2 = _cpu()
  print(f"tables_to_graph: cpu {c2 - c1:.1f} s", flush=True)
  graph_io.write_graph(graph, out_dir + "/graph")
  c3 = _cpu()
  print(f"write_graph: cpu {c3 - c2:.1f} s", flush=True)
  print(f"total cpu {c3 - c0:.1f} s wall {time.time() - start:.1f} s peak rss "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")


if __name__ == "__main__":
  main(int(sys.argv[1]), sys.argv[2])
