"""What the benchmarks share: the machine's description, child processes, tables, JSON, the
synthetic graph and its sampled subgraphs."""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time

CHILD_ENV = {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "NO_GCE_CHECK": "true",
             "GCE_METADATA_HOST": "127.0.0.1:1"}


def machine() -> dict:
  model = ""
  try:
    with open("/proc/cpuinfo") as f:
      model = next((line.split(":", 1)[1].strip() for line in f
                    if line.startswith("model name")), "")
  except OSError:
    pass
  mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
  return {"cpu_count": os.cpu_count(), "cpu_model": model, "memory_gb": round(mem_gb, 1),
          "load_average_at_start": os.getloadavg(), "python": platform.python_version(),
          "platform": platform.platform()}


def describe_machine(m: dict) -> str:
  end = m.get("load_average_at_end")
  return (f"machine: {m['cpu_count']} CPUs ({m['cpu_model']}), {m['memory_gb']} GB; load average "
          f"{m['load_average_at_start'][0]:.1f} at start"
          + (f", {end[0]:.1f} at end" if end else ""))


def peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(module: str, role: str, argv: list[str]) -> dict:
  """Runs `python -m module --role role argv...`; returns the JSON on its last stdout line,
  with the child's wall and CPU seconds (as the parent sees them) under `_process`. The
  child's progress lines (stdout lines starting with `[`) are echoed as they come."""
  import tempfile
  cmd = [sys.executable, "-m", module, "--role", role] + argv
  print(f"[bench] {role} ...", flush=True)
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  start = time.time()
  lines = []
  with tempfile.TemporaryFile("w+") as stderr:
    with subprocess.Popen(cmd, env=dict(os.environ, **CHILD_ENV), stdout=subprocess.PIPE,
                          stderr=stderr, text=True) as proc:
      for line in proc.stdout:
        lines.append(line)
        if line.startswith("["):
          print("  " + line.rstrip(), flush=True)
    seconds = time.time() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
      stderr.seek(0)
      sys.stderr.write(stderr.read()[-5000:])
      raise SystemExit(f"benchmark child {role!r} failed (exit {proc.returncode})")
  result = json.loads(lines[-1])
  result["_process"] = {"seconds": seconds,
                        "cpu_seconds": (after.ru_utime - before.ru_utime
                                        + after.ru_stime - before.ru_stime),
                        "started_at": start}
  print(f"[bench] {role} done in {seconds:.0f} s", flush=True)
  return result


def table(rows: list[tuple]) -> str:
  widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
  return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows)


def fmt(x) -> str:
  """A figure for a table: thousands separators above 100, one decimal below."""
  if x is None:
    return "n/a"
  return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}" if abs(x) < 1 else f"{x:,.1f}"


def fmt_ratio(x) -> str:
  return "n/a" if x is None else f"{x:.2f}x"


def write_json(report: dict, path: str) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w") as out:
    json.dump(report, out, indent=2, ensure_ascii=False)
  os.replace(tmp, path)
  print(f"written: {path}")


def synthetic_graph(workdir: str, papers: int, feature_dim: int, num_classes: int = 8,
                    seed: int = 0) -> str:
  """The synthetic MAG-shaped graph (with train/eval/test seeds) as a Graph artifact directory
  under `workdir`, built once and reused."""
  from tfx_gnn.components import graph_io
  base = os.path.join(workdir, f"graph-{papers}-d{feature_dim}-c{num_classes}-s{seed}")
  graph_dir = os.path.join(base, "graph")
  if not os.path.exists(os.path.join(graph_dir, graph_io.SCHEMA_FILE)):
    from tfx_gnn.components.graph_ingest import ingest
    from tfx_gnn.pipelines import config as config_lib
    from tfx_gnn.components.graph_ingest import synthetic
    spec = synthetic.generate_tables(os.path.join(base, "tables"), num_papers=papers,
                                     num_classes=num_classes, feature_dim=feature_dim, seed=seed)
    graph_io.write_graph(ingest.tables_to_graph(config_lib.TablesSource.model_validate(spec)),
                         graph_dir)
  return graph_dir
