"""Trim-to-layer (`model.trim_to_layer`): training and bulk inference with it on and off, side
by side in one process.

  make bench BENCH=trim
  .venv/bin/python -m benchmarks.trim_bench --papers 4000 --epochs 2 --reps 2

The driver builds the demo's synthetic graph and samples its train and eval splits with the
fast engine (benchmarks/input_bench.py's `prepare`, shared with that bench); then one child
process, for `--reps` reps in alternating order of the two variants (trim on, trim off; the
config's model otherwise, default pipelines/configs/demo.yaml):

  training    `training.train` (what the GnnTrainer executor calls) for `--epochs`: `fit`'s
              train examples x epochs / wall seconds (validation included), then its exports
              (serving and integrated gradients);
  inference   on each variant's exported model (the last rep's), every paper of the graph:
              (a) bulk inference end to end: `bulk_inference.run` on Beam (load, sample with the
                  training spec, model, write predictions.parquet), as GnnBulkInferrer runs it;
              (b) steady state: `NodeScorer.score_arrays` (sampling + model);
              (c) the model alone: `serving_default` on the pre-sampled eval examples.

Rates are per wall second and per CPU second of the process (the machine is shared; the
ratios on/off are what the load does not move much).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time

from benchmarks import common

MODULE = "benchmarks.trim_bench"
VARIANTS = ("trim", "no_trim")


def measure(args) -> dict:
  import apache_beam as beam
  import tensorflow as tf
  from apache_beam.options.pipeline_options import PipelineOptions
  from google.protobuf import text_format
  from tensorflow_gnn import runner
  from tfx_gnn.components import graph_io, node_scoring
  from tfx_gnn.components.bulk_inferrer import bulk_inference
  from tfx_gnn.components.bulk_inferrer.config import BulkInferenceConfig
  from tfx_gnn.components.gnn_evaluator import evaluation
  from tfx_gnn.components.gnn_trainer import training
  from tfx_gnn.components.subgraph_sampler import sampling
  from tfx_gnn.pipelines import config as config_lib
  config = config_lib.load_config(args.config, {
      "data": {"synthetic": {"num_papers": args.papers}}, "trainer": {"epochs": args.epochs}})
  files = json.loads(args.files)
  schema = graph_io.read_schema_file(graph_io.subgraph_schema_path(args.examples))
  label = graph_io.read_label(args.graph_dir)
  num_train = sum(1 for f in files["train"] for _ in tf.data.TFRecordDataset(f))
  num_eval = sum(1 for f in files["eval"] for _ in tf.data.TFRecordDataset(f))

  fit: dict = {}
  original_train = runner.KerasTrainer.train

  def timed_train(self, *a, epochs=1, **kw):
    start, cpu = time.time(), time.process_time()
    model = original_train(self, *a, epochs=epochs, **kw)
    fit.update(examples=num_train * epochs, seconds=time.time() - start,
               cpu_seconds=time.process_time() - cpu)
    return model
  runner.KerasTrainer.train = timed_train

  models = {v: config.model.model_copy(update={"trim_to_layer": v == "trim"}) for v in VARIANTS}
  workdir = tempfile.mkdtemp(dir=args.workdir)
  runs = []
  for rep in range(args.reps):
    for variant in (VARIANTS if rep % 2 == 0 else VARIANTS[::-1]):
      out = os.path.join(workdir, variant)
      shutil.rmtree(out, ignore_errors=True)  # the last rep's model is measured below
      start = time.time()
      epoch_ends = []  # (wall, CPU) at the end of each epoch, validation included
      training.train(train_files=files["train"], eval_files=files["eval"],
                     subgraph_schema=schema, label=label, model_cfg=models[variant],
                     trainer_cfg=config.trainer, task_cfg=config.task,
                     model_dir=os.path.join(out, "run"), export_dir=os.path.join(out, "model"),
                     on_epoch=lambda *_: epoch_ends.append((time.time(), time.process_time())))
      runs.append({"variant": variant, "rep": rep, "phase": "train", **fit,
                   "total_seconds": time.time() - start})
      # The first epoch also traces the train and test steps; the later ones are the steady
      # state.
      (wall, cpu), (last_wall, last_cpu) = epoch_ends[0], epoch_ends[-1]
      runs.append({"variant": variant, "rep": rep, "phase": "train_steady",
                   "examples": num_train * (len(epoch_ends) - 1), "seconds": last_wall - wall,
                   "cpu_seconds": last_cpu - cpu})
      print(f"[trim_bench] rep {rep} {variant}: train "
            f"{fit['examples'] / fit['seconds']:.0f} examples/s ({fit['seconds']:.1f} s fit, "
            f"{time.time() - start:.1f} s with exports), after the first epoch "
            f"{runs[-1]['examples'] / runs[-1]['seconds']:.0f}/s; load "
            f"{os.getloadavg()[0]:.1f}", flush=True)

  spec = sampling.build_sampling_spec(graph_io.read_schema(args.graph_dir), label.node_set,
                                      config.sampling.fanouts, config.sampling.hops)
  serving = node_scoring.ServingSpec(
      graph_dir=args.graph_dir, sampling_spec=text_format.MessageToString(spec),
      seed=config.sampling.seed, node_set=label.node_set, task=config.task.type)
  ids = node_scoring.node_ids(args.graph_dir, label.node_set)
  scorers = {v: node_scoring.NodeScorer(os.path.join(workdir, v, "model"), serving)
             for v in VARIANTS}

  def timed(variant, phase, nodes, fn):
    start, cpu = time.time(), time.process_time()
    result = fn()
    runs.append({"variant": variant, "rep": rep, "phase": phase, "examples": nodes,
                 "seconds": time.time() - start, "cpu_seconds": time.process_time() - cpu})
    return result

  for rep in range(args.reps):
    for variant in (VARIANTS if rep % 2 == 0 else VARIANTS[::-1]):
      model_dir = os.path.join(workdir, variant, "model")
      with tempfile.TemporaryDirectory(dir=workdir) as out:
        timed(variant, "bulk_end_to_end", len(ids), lambda: bulk_inference.run(
            lambda: beam.Pipeline(options=PipelineOptions(
                list(config.pipeline.beam_pipeline_args))),
            model_dir=model_dir, spec=serving, out_dir=out,
            config=BulkInferenceConfig(batch_size=args.batch_size)))
      timed(variant, "bulk_steady", len(ids),
            lambda: scorers[variant].score_arrays(ids, batch_size=args.batch_size))
      timed(variant, "model_presampled", num_eval, lambda: evaluation.predict(
          model_dir, files["eval"], schema, label, batch_size=args.batch_size))
      rates = {r["phase"]: r["examples"] / r["seconds"] for r in runs[-3:]}
      print(f"[trim_bench] rep {rep} {variant}: nodes/s " + ", ".join(
          f"{k} {v:.0f}" for k, v in rates.items()) + f"; load {os.getloadavg()[0]:.1f}",
          flush=True)
  shutil.rmtree(workdir, ignore_errors=True)
  overhead = _trim_overhead(config, files["eval"], schema, label, args)
  return {"runs": runs, "num_train": num_train, "num_eval": num_eval, "num_nodes": len(ids),
          "trim_overhead": overhead, "peak_rss_mb": common.peak_rss_mb()}


def _trim_overhead(config, files, schema, label, args) -> dict:
  """What the hop search and the trims cost inside the model (the alternative: a hop feature
  from the sampler): CPU seconds per batch of the trim layers alone, against the trimmed
  model's forward pass, on the eval examples (batches of --batch-size)."""
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components.gnn_trainer import models, trimming
  gtspec = tfgnn.create_graph_spec_from_schema_pb(schema)
  batches = [tfgnn.parse_example(gtspec, b).merge_batch_to_components()
             for b in tf.data.TFRecordDataset(files).batch(args.batch_size)]
  rounds = config.model.num_rounds
  model = models.build_model_fn(config.model, label.node_set, [label.feature],
                                trim_to_layer=True)(batches[0].spec)

  # Each returns everything it computes (TF prunes what no output needs).
  def trims(graph):
    graph = trimming.RootHops([label.node_set], rounds - 1)(graph)
    return tf.nest.flatten([trimming.TrimToHop(h)(graph) for h in range(rounds - 1, 0, -1)],
                           expand_composites=True)

  def forward(graph):
    return tfgnn.gather_first_node(model(graph), label.node_set,
                                   feature_name=tfgnn.HIDDEN_STATE)
  passes = {"trim_layers": tf.function(trims, reduce_retracing=True),
            "model_forward": tf.function(forward, reduce_retracing=True)}
  cpu = {}
  for name, fn in passes.items():
    for graph in batches:  # traced for each shape class once
      fn(graph)
    start = time.process_time()
    for _ in range(3):
      for graph in batches:
        fn(graph)
    cpu[name] = (time.process_time() - start) / (3 * len(batches))
  print(f"[trim_bench] per batch: hop search and trims {cpu['trim_layers'] * 1e3:.1f} CPU ms, "
        f"trimmed model forward {cpu['model_forward'] * 1e3:.1f} CPU ms", flush=True)
  return {"cpu_seconds_per_batch": cpu, "batches": len(batches),
          "share_of_forward": cpu["trim_layers"] / cpu["model_forward"]}


PHASES = {"train": "training (fit, all epochs), train examples/s",
          "train_steady": "training after the first epoch (no tracing), train examples/s",
          "bulk_end_to_end": "(a) bulk inference end to end (Beam), nodes/s",
          "bulk_steady": "(b) bulk inference steady (sample + model), nodes/s",
          "model_presampled": "(c) model on pre-sampled examples, nodes/s"}


def summarize(report: dict) -> None:
  runs = report["measure"]["runs"]

  def median(variant, phase, key):
    return statistics.median(r["examples"] / r[key] for r in runs
                             if r["variant"] == variant and r["phase"] == phase)
  rates = {p: {v: {"per_s": median(v, p, "seconds"), "per_cpu_s": median(v, p, "cpu_seconds")}
               for v in VARIANTS} for p in PHASES}
  ratios = {p: {k: rates[p]["trim"][k] / rates[p]["no_trim"][k] for k in ("per_s", "per_cpu_s")}
            for p in PHASES}
  report.update(rates=rates, ratios_trim_over_no_trim=ratios)
  p = report["params"]
  print(f"\ngraph: {p['papers']:,} papers; config {p['config']}, {p['epochs']} epochs, "
        f"{p['reps']} reps (medians)")
  print(common.describe_machine(report["machine"]) + "\n")
  rows = [("", "trim /s", "no trim /s", "ratio", "trim /CPU s", "no trim /CPU s", "ratio")]
  for phase, name in PHASES.items():
    r = rates[phase]
    rows.append((name, common.fmt(r["trim"]["per_s"]), common.fmt(r["no_trim"]["per_s"]),
                 common.fmt_ratio(ratios[phase]["per_s"]), common.fmt(r["trim"]["per_cpu_s"]),
                 common.fmt(r["no_trim"]["per_cpu_s"]), common.fmt_ratio(
                     ratios[phase]["per_cpu_s"])))
  print(common.table(rows))
  overhead = report["measure"]["trim_overhead"]
  print(f"\nhop search and trims inside the model: "
        f"{overhead['cpu_seconds_per_batch']['trim_layers'] * 1e3:.1f} CPU ms per batch of "
        f"{p['batch_size']}, {overhead['share_of_forward']:.0%} of the trimmed model's forward "
        "pass")


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--papers", type=int, default=4000, help="synthetic graph size")
  parser.add_argument("--config", default="pipelines/configs/demo.yaml",
                      help="model, task, trainer and sampling sections")
  parser.add_argument("--epochs", type=int, default=3, help="at least 2 (the first traces)")
  parser.add_argument("--reps", type=int, default=2, help="runs of each variant")
  parser.add_argument("--shards", type=int, default=4, help="TFRecord files per split")
  parser.add_argument("--batch-size", type=int, default=256, help="inference batches")
  parser.add_argument("--workdir", default="runs/bench")
  parser.add_argument("--out", default="runs/bench/trim_bench.json")
  parser.add_argument("--summarize", default="", help="reprint an earlier run's JSON and exit")
  parser.add_argument("--role", default="driver", help=argparse.SUPPRESS)
  for hidden in ("--graph-dir", "--examples", "--files"):
    parser.add_argument(hidden, default="", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  args.workdir = os.path.abspath(args.workdir)
  if args.summarize:
    with open(args.summarize) as f:
      summarize(json.load(f))
    return
  if args.role == "measure":
    print(json.dumps(measure(args)))
    return
  os.makedirs(args.workdir, exist_ok=True)
  report = {"machine": common.machine(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "params": {"papers": args.papers, "config": args.config, "epochs": args.epochs,
                       "reps": args.reps, "shards": args.shards, "batch_size": args.batch_size}}
  base = ["--papers", str(args.papers), "--config", args.config, "--epochs", str(args.epochs),
          "--reps", str(args.reps), "--shards", str(args.shards), "--workdir", args.workdir]
  prepared = common.child("benchmarks.input_bench", "prepare", base)
  report["data"] = prepared
  report["measure"] = common.child(MODULE, "measure", base + [
      "--batch-size", str(args.batch_size), "--graph-dir", prepared["graph_dir"],
      "--examples", prepared["examples"], "--files", json.dumps(prepared["files"])])
  report["machine"]["load_average_at_end"] = os.getloadavg()
  summarize(report)
  common.write_json(report, args.out)


if __name__ == "__main__":
  main()
