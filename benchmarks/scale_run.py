"""Scale benchmark: one whole pipeline run, timed per component, with the process tree's memory.

  .venv/bin/python -m benchmarks.scale_run pipelines/configs/mag_scale.yaml
  .venv/bin/python -m benchmarks.scale_run pipelines/configs/mag_scale.yaml \
      --set data.synthetic.num_papers=73639 --set pipeline.root=runs/mag_scale_10

Runs `tfx-gnn run CONFIG` as a child process and samples, every `--interval` seconds, the
resident memory (RSS) and CPU time of the child's whole process tree (read from /proc). When the
run ends it reads the run's executions from ML Metadata (each execution's start and last
update) and reports, per component: wall seconds, CPU seconds of the process tree over that
interval, and the tree's peak RSS within it; then the whole run's wall time, CPU seconds
(getrusage of the children) and peak RSS (the largest sampled sum over the tree, and the largest
single process's `ru_maxrss`). A table goes to stdout, everything to `--out` (JSON), with the
machine's memory and load at the start: other users' load inflates wall times, not CPU seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICK = os.sysconf("SC_CLK_TCK")


def _children_map() -> dict[int, list[int]]:
  children: dict[int, list[int]] = {}
  for entry in os.listdir("/proc"):
    if not entry.isdigit():
      continue
    try:
      with open(f"/proc/{entry}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
      continue
    children.setdefault(int(fields[1]), []).append(int(entry))
  return children


def tree_usage(pid: int) -> tuple[int, float, int]:
  """(RSS bytes, CPU seconds, processes) of `pid` and all its descendants, now."""
  children = _children_map()
  rss, cpu, count, todo = 0, 0.0, 0, [pid]
  while todo:
    p = todo.pop()
    try:
      with open(f"/proc/{p}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
      with open(f"/proc/{p}/statm") as f:
        rss += int(f.read().split()[1]) * _PAGE
    except OSError:
      continue  # ended between the listing and the read
    # utime, stime, cutime, cstime (fields 14-17 of stat; 12-15 after the name).
    cpu += sum(int(x) for x in fields[11:15]) / _TICK
    count += 1
    todo.extend(children.get(p, []))
  return rss, cpu, count


def _meminfo() -> dict[str, float]:
  out = {}
  with open("/proc/meminfo") as f:
    for line in f:
      key, value = line.split(":", 1)
      if key in ("MemTotal", "MemAvailable"):
        out[key] = int(value.split()[0]) / 1e6  # GB
  return out


class Sampler(threading.Thread):
  """Samples the process tree's (time, RSS, CPU seconds) until stopped."""

  def __init__(self, pid: int, interval: float):
    super().__init__(daemon=True)
    self.pid, self.interval = pid, interval
    self.samples: list[tuple[float, int, float]] = []
    self._done = threading.Event()

  def run(self):
    while not self._done.is_set():
      rss, cpu, count = tree_usage(self.pid)
      if count:
        self.samples.append((time.time(), rss, cpu))
      self._done.wait(self.interval)

  def stop(self):
    self._done.set()
    self.join()


def _window(samples, start: float, end: float) -> tuple[float, float]:
  """CPU seconds and peak RSS (GB) of the samples within [start, end] (CPU: the difference
  between the last sample at or before each end)."""
  def cpu_at(t):
    before = [s for s in samples if s[0] <= t]
    return before[-1][2] if before else 0.0
  inside = [s[1] for s in samples if start <= s[0] <= end]
  return cpu_at(end) - cpu_at(start), (max(inside) / 1e9 if inside else float("nan"))


def component_figures(metadata_path: str, pipeline_name: str, samples) -> list[dict]:
  """Per execution of the latest run: wall seconds (ML Metadata), CPU seconds and peak RSS."""
  from tfx_gnn.components import lineage
  store = lineage.open_store(metadata_path)
  run_id = lineage.latest_run_id(store, pipeline_name)
  run = store.get_context_by_type_and_name("pipeline_run", run_id)
  node_type = store.get_context_type("node").id
  rows = []
  for e in sorted(store.get_executions_by_context(run.id), key=lambda e: e.id):
    node = [c.name for c in store.get_contexts_by_execution(e.id) if c.type_id == node_type]
    start, end = e.create_time_since_epoch / 1000, e.last_update_time_since_epoch / 1000
    if e.last_known_state == e.RUNNING:
      end = time.time()
    cpu, peak = _window(samples, start, end)
    rows.append({"component": node[0].split(".", 1)[-1] if node else str(e.type_id),
                 "state": lineage._STATES.get(e.last_known_state, "?"),
                 "wall_s": round(end - start, 1), "cpu_s": round(cpu, 1),
                 "peak_rss_gb": round(peak, 2)})
  return rows


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("config")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
  parser.add_argument("--interval", type=float, default=1.0, help="sampling period (s)")
  parser.add_argument("--out", help="JSON file (default: <pipeline root>/scale_run.json); "
                      "rewritten every 30 s while the run goes on")
  parser.add_argument("--timeout", type=float, default=0,
                      help="stop the run after this many seconds and report what finished")
  args = parser.parse_args(argv)

  from tfx_gnn.pipelines import cli
  config = cli.config_lib.load_config(args.config, cli.parse_overrides(args.set))
  machine = {"cpus": os.cpu_count(), "platform": platform.platform(),
             "loadavg_at_start": os.getloadavg(), **_meminfo()}
  print(f"machine: {machine}", flush=True)
  command = [os.path.join(os.path.dirname(sys.executable), "tfx-gnn"), "run", args.config]
  for item in args.set:
    command += ["--set", item]
  out = args.out or os.path.join(config.root, "scale_run.json")
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  start = time.time()
  child = subprocess.Popen(command)
  sampler = Sampler(child.pid, args.interval)
  sampler.start()

  def figures(rc) -> dict:
    try:
      rows = component_figures(config.metadata_path, config.pipeline.name,
                               list(sampler.samples))
    except Exception as e:  # no run recorded yet
      rows = [{"error": str(e)}]
    return {
        "config": args.config, "overrides": args.set, "returncode": rc, "machine": machine,
        "wall_s": round(time.time() - start, 1),
        "cpu_s": round(max((s[2] for s in sampler.samples), default=0.0), 1),
        "peak_rss_tree_gb": round(max((s[1] for s in sampler.samples), default=0) / 1e9, 2),
        "components": rows,
    }

  rc = None
  while rc is None:
    try:
      rc = child.wait(timeout=30)
    except subprocess.TimeoutExpired:
      if args.timeout and time.time() - start > args.timeout:
        print(f"scale_run: over --timeout {args.timeout} s; stopping the run", flush=True)
        child.terminate()
        rc = child.wait()
      else:
        with open(out, "w") as f:  # partial figures while it runs
          json.dump(figures(None), f, indent=2)
  sampler.stop()
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  machine["loadavg_at_end"] = os.getloadavg()
  result = figures(rc)
  result["cpu_s"] = round(max(result["cpu_s"], usage.ru_utime + usage.ru_stime), 1)
  result["max_single_process_rss_gb"] = round(usage.ru_maxrss / 1e6, 2)
  rows = [r for r in result["components"] if "component" in r]
  result["components_wall_s"] = round(sum(r["wall_s"] for r in rows), 1)
  print(f"\n{'component':32s} {'state':9s} {'wall s':>8s} {'CPU s':>8s} {'peak RSS GB':>12s}")
  for r in rows:
    print(f"{r['component']:32s} {r['state']:9s} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} "
          f"{r['peak_rss_gb']:12.2f}")
  print(f"{'whole run (tfx-gnn run)':32s} {'rc=' + str(rc):9s} {result['wall_s']:8.1f} "
        f"{result['cpu_s']:8.1f} {result['peak_rss_tree_gb']:12.2f}")
  print(f"largest single process ru_maxrss: {result['max_single_process_rss_gb']} GB; "
        f"load average at start {machine['loadavg_at_start']}, end {machine['loadavg_at_end']}")
  with open(out, "w") as f:
    json.dump(result, f, indent=2)
  print(f"wrote {out}")
  return rc


if __name__ == "__main__":
  sys.exit(main())
