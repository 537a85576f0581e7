"""Training input pipeline: our trainer against `tensorflow_gnn.runner` standalone, same files.

  make bench BENCH=input                          # the demo's graph (4,000 papers) and model
  .venv/bin/python -m benchmarks.input_bench --papers 8000 --epochs 3 --reps 3

The driver builds the synthetic graph and samples its train and eval splits with the fast
engine into sharded TFRecord files (as the SubgraphSampler writes them); then one child
process runs, `--reps` times in alternating order, the same training two ways:

  ours        components.gnn_trainer.training.train (what the GnnTrainer executor calls), with
              the config's model, task and trainer sections (default: pipelines/configs/demo.yaml)
  standalone  a plain `runner.run`: `runner.TFRecordDatasetProvider(filenames=...)` for train
              and eval, `runner.KerasTrainer`, the same model_fn (trimmed, as ours:
              `model.trim_to_layer`), task, optimizer (tf_keras's AdamW), batch size and
              epochs, `runner.KerasModelExporter`
  standalone_untrimmed
              the same, but the model untrimmed (`trim_to_layer` false): what a TF-GNN user
              gets from `runner.run` with its defaults and this model (issue #21's baseline)

In both, `runner.KerasTrainer.train` is wrapped to measure (1) the input pipeline alone: the
epochs' passes over the exact dataset Keras is about to get (the provider, then the runner's
batching, parsing and preprocessing), with no model; and (2) training: the whole `fit` (its input
pipeline, the model and the validation after each epoch), as train examples x epochs / wall
seconds. CPU seconds are the process's (all threads) over the same spans. Then each variant
trains once more alone in a child of its own, for its peak RSS (`ru_maxrss`).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

from benchmarks import common

MODULE = "benchmarks.input_bench"
TARGET = 0.95  # ours >= 0.95x the standalone runner, examples/s
UNTRIMMED_TARGET = 3.0  # issue #21: ours >= 3x runner.run with TF-GNN's defaults (untrimmed)
VARIANTS = ("ours", "standalone", "standalone_untrimmed")
NAMES = {"ours": "ours (training.train)", "standalone": "runner.run standalone (trimmed model)",
         "standalone_untrimmed": "runner.run standalone, untrimmed (TF-GNN defaults)"}


# ------------------------------------------------------------------ children
def prepare(args) -> dict:
  """The graph and its train/eval subgraphs as TFRecord shards (reused when present)."""
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.subgraph_sampler import fast_sampler, sampling
  from google.protobuf import text_format
  config = _config(args)
  graph_dir = common.synthetic_graph(args.workdir, args.papers, config.data.synthetic.feature_dim,
                                     config.data.synthetic.num_classes)
  examples = os.path.join(os.path.dirname(graph_dir), "examples-input-bench")
  schema = graph_io.read_schema(graph_dir)
  label = graph_io.read_label(graph_dir)
  spec = sampling.build_sampling_spec(schema, label.node_set, config.sampling.fanouts,
                                      config.sampling.hops)
  files = {}
  if not os.path.exists(graph_io.subgraph_schema_path(examples)):
    import tensorflow as tf
    engine = fast_sampler.FastSampler(graph_io.read_graph(graph_dir), spec, seed=0,
                                      schema=schema)
    tmp = examples + ".tmp"
    for split in ("train", "eval"):
      ids = graph_io.read_seeds(graph_dir, split)
      os.makedirs(os.path.join(tmp, f"Split-{split}"), exist_ok=True)
      for shard in range(args.shards):
        path = os.path.join(tmp, f"Split-{split}",
                            f"subgraphs-{shard:05d}-of-{args.shards:05d}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
          for example in engine.sample(ids[shard::args.shards], salt=split):
            writer.write(example)
    graph_io.write_text(graph_io.subgraph_schema_path(tmp),
                        text_format.MessageToString(engine.subgraph_schema()))
    os.replace(tmp, examples)
  for split in ("train", "eval"):
    folder = os.path.join(examples, f"Split-{split}")
    files[split] = sorted(os.path.join(folder, f) for f in os.listdir(folder))
  return {"graph_dir": graph_dir, "examples": examples, "files": files,
          "train_examples": len(graph_io.read_seeds(graph_dir, "train")),
          "eval_examples": len(graph_io.read_seeds(graph_dir, "eval"))}


def _config(args):
  from tfx_gnn.pipelines import config as config_lib
  return config_lib.load_config(args.config, {
      "data": {"synthetic": {"num_papers": args.papers}},
      "trainer": {"epochs": args.epochs}})


def epoch_timer(seconds: list):
  """A Keras callback class that appends each epoch's wall seconds to `seconds`. It takes and
  ignores any constructor arguments, so that it can stand in for the trainer's own per-epoch
  callback (`training.EpochProgress`)."""
  import tensorflow as tf

  class EpochSeconds(tf.keras.callbacks.Callback):
    def __init__(self, *_, **__):
      super().__init__()

    def on_epoch_begin(self, epoch, logs=None):
      self.start = time.time()

    def on_epoch_end(self, epoch, logs=None):
      seconds.append(time.time() - self.start)

  return EpochSeconds


def demo_training_inputs(workdir: str):
  """The demo's 4,000-paper graph sampled into train and eval files (reused when present), as
  `training.train` reads them: (prepared files, config, subgraph schema, label)."""
  from tfx_gnn.components import graph_io
  args = argparse.Namespace(papers=4000, config="pipelines/configs/demo.yaml", epochs=1,
                            shards=4, workdir=workdir)
  prep = prepare(args)
  schema = graph_io.read_schema_file(graph_io.subgraph_schema_path(prep["examples"]))
  return prep, _config(args), schema, graph_io.read_label(prep["graph_dir"])


def measure(args) -> dict:
  """Both trainings, `--reps` times each in alternating order, in this one process."""
  import tensorflow as tf
  import tensorflow_gnn as tfgnn
  from tensorflow_gnn import runner
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.gnn_trainer import models, tasks, training
  config = _config(args)
  files = json.loads(args.files)
  schema = graph_io.read_schema_file(graph_io.subgraph_schema_path(args.examples))
  label = graph_io.read_label(args.graph_dir)
  num_train = sum(1 for f in files["train"] for _ in tf.data.TFRecordDataset(f))

  current: dict = {}
  original_train = runner.KerasTrainer.train

  def instrumented_train(self, model_fn, train_ds_provider, *, epochs=1, **kwargs):
    ds = train_ds_provider.get_dataset(tf.distribute.InputContext())
    start, cpu, n = time.time(), time.process_time(), 0
    for _ in range(epochs):  # as fit() does: one iterator per epoch over the same dataset
      for _, labels in ds:
        n += int(tf.shape(labels)[0])
    current["input"] = {"examples": n, "seconds": time.time() - start,
                        "cpu_seconds": time.process_time() - cpu}
    epoch_seconds: list[float] = []
    self._callbacks = [*(self._callbacks or []), epoch_timer(epoch_seconds)()]
    start, cpu = time.time(), time.process_time()
    model = original_train(self, model_fn, train_ds_provider, epochs=epochs, **kwargs)
    current["train"] = {"examples": num_train * epochs, "seconds": time.time() - start,
                        "cpu_seconds": time.process_time() - cpu}
    # The epochs after the first (its tracing and, in ours, the batch cache's first pass
    # done), each with its validation: the steady state.
    if len(epoch_seconds) > 1:
      current["later_epochs"] = {"examples": num_train * (len(epoch_seconds) - 1),
                                 "seconds": sum(epoch_seconds[1:])}
    current["epoch_seconds"] = epoch_seconds
    return model
  runner.KerasTrainer.train = instrumented_train

  # `--ours-trainer`: trainer options of ours only (e.g. padding and jit_compile); the
  # standalone run keeps runner.run's defaults.
  ours_trainer = config.trainer.model_copy(update=json.loads(args.ours_trainer or "{}"))
  ours_trainer = type(config.trainer).model_validate(ours_trainer.model_dump())

  def ours(tmp):
    training.train(train_files=files["train"], eval_files=files["eval"], subgraph_schema=schema,
                   label=label, model_cfg=config.model, trainer_cfg=ours_trainer,
                   task_cfg=config.task, model_dir=os.path.join(tmp, "run"),
                   export_dir=os.path.join(tmp, "model"))

  def standalone(tmp, trim=True):
    tf.keras.utils.set_random_seed(config.trainer.seed)
    task_set = tasks.make_tasks(config.task, label, config.trainer.seed)
    runner.run(
        train_ds_provider=runner.TFRecordDatasetProvider(filenames=files["train"]),
        valid_ds_provider=runner.TFRecordDatasetProvider(filenames=files["eval"]),
        model_fn=models.build_model_fn(config.model, label.node_set, task_set.exclude_features,
                                       trim_to_layer=trim and models.trims_to_layer(
                                           config.model, True)),
        optimizer_fn=lambda: tf.keras.optimizers.AdamW(config.trainer.learning_rate,
                                                       weight_decay=config.trainer.weight_decay),
        trainer=runner.KerasTrainer(strategy=tf.distribute.get_strategy(),
                                    model_dir=os.path.join(tmp, "run"),
                                    summarize_every_n_steps="never", verbose=0),
        task=task_set.task,
        feature_processors=task_set.feature_processors + [p for p in [
            models.normalize_features_processor(
                config.model, training.not_inputs(task_set, label, config.task))] if p],
        gtspec=tfgnn.create_graph_spec_from_schema_pb(schema),
        global_batch_size=config.trainer.batch_size,
        epochs=config.trainer.epochs,
        model_exporters=[runner.KerasModelExporter(output_names=tasks.OUTPUT_NAME)],
        export_dirs=[os.path.join(tmp, "model")])

  runs = []
  variants = {"ours": ours, "standalone": standalone,
              "standalone_untrimmed": lambda tmp: standalone(tmp, trim=False)}
  chosen = [v for v in VARIANTS if v in args.variants.split(",")]
  for rep in range(args.reps):
    order = chosen[rep % len(chosen):] + chosen[:rep % len(chosen)]  # each first in turn
    for name in order:
      current.clear()
      with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        start = time.time()
        variants[name](tmp)
        total = time.time() - start
      runs.append({"variant": name, "rep": rep, "total_seconds": total, **current})
      print(f"[input_bench] rep {rep} {name}: input "
            f"{current['input']['examples'] / current['input']['seconds']:.0f}/s, train "
            f"{current['train']['examples'] / current['train']['seconds']:.0f}/s",
            flush=True)
  return {"runs": runs, "num_train": num_train, "peak_rss_mb": common.peak_rss_mb()}


# ------------------------------------------------------------------ driver
def _rates(runs: list[dict], variant: str, phase: str) -> dict:
  mine = [r[phase] for r in runs if r["variant"] == variant]
  per_s = [r["examples"] / r["seconds"] for r in mine]
  per_cpu = [r["examples"] / r["cpu_seconds"] for r in mine]
  return {"per_s_median": statistics.median(per_s), "per_s": per_s,
          "per_cpu_s_median": statistics.median(per_cpu), "per_cpu_s": per_cpu}


def summarize(report: dict) -> None:
  """Adds rates, ratios and the target to `report` and prints the table."""
  runs = report["measure"]["runs"]
  present = [v for v in VARIANTS if any(r["variant"] == v for r in runs)]
  rates = {v: {p: _rates(runs, v, p) for p in ("input", "train")} for v in present}
  ratios = {f"{p}_{k}_ours_over_{v}":
            rates["ours"][p][f"{k}_median"] / rates[v][p][f"{k}_median"]
            for v in present[1:] for p in ("input", "train") for k in ("per_s", "per_cpu_s")}
  # Input-bound? The input pipeline alone against training, per CPU second (how much of a
  # training step's CPU the input pipeline would take, were it not overlapped).
  headroom = {v: rates[v]["input"]["per_s_median"] / rates[v]["train"]["per_s_median"]
              for v in rates}
  report.update(rates=rates, ratios=ratios, input_over_train_rate=headroom)
  report["targets"] = {"input_at_least_0.95x_standalone": ratios["input_per_s_ours_over_standalone"]
                       >= TARGET,
                       "train_at_least_0.95x_standalone": ratios["train_per_s_ours_over_standalone"]
                       >= TARGET}
  if "standalone_untrimmed" in rates:  # issue #21: fit >= 3x the standalone TF-GNN runner
    report["targets"][f"train_at_least_{UNTRIMMED_TARGET}x_standalone_untrimmed"] = (
        ratios["train_per_s_ours_over_standalone_untrimmed"] >= UNTRIMMED_TARGET)
  f, p = common.fmt, report["params"]
  print(f"\ngraph: {p['papers']:,} papers, {report['measure']['num_train']:,} train subgraphs in "
        f"{p['shards']} files; config {p['config']}, {p['epochs']} epochs, {p['reps']} reps")
  print(common.describe_machine(report["machine"]) + "\n")
  rows = [("examples/s (median over reps)", "input pipeline /s", "per CPU s",
           "training /s", "per CPU s", "input / training")]
  for v in present:
    name, r = NAMES[v], rates[v]
    rows.append((name, f(r["input"]["per_s_median"]), f(r["input"]["per_cpu_s_median"]),
                 f(r["train"]["per_s_median"]), f(r["train"]["per_cpu_s_median"]),
                 common.fmt_ratio(headroom[v])))
  for v in present[1:]:
    rows.append((f"ratio ours / {v}",
                 common.fmt_ratio(ratios[f"input_per_s_ours_over_{v}"]),
                 common.fmt_ratio(ratios[f"input_per_cpu_s_ours_over_{v}"]),
                 common.fmt_ratio(ratios[f"train_per_s_ours_over_{v}"]),
                 common.fmt_ratio(ratios[f"train_per_cpu_s_ours_over_{v}"]), ""))
  print(common.table(rows))
  if all("later_epochs" in r for r in runs):  # runs before 2026-12-05 did not time epochs
    later = {v: statistics.median(r["later_epochs"]["examples"] / r["later_epochs"]["seconds"]
                                  for r in runs if r["variant"] == v) for v in present}
    report["later_epochs_per_s_median"] = later
    for v in present[1:]:
      ratios[f"later_epochs_per_s_ours_over_{v}"] = later["ours"] / later[v]
    print("\ntraining after the first epoch (median examples/s, validation included): " + ", ".join(
        f"{v} {f(later[v])}" + ("" if v == "ours" else
                                f" (ours {common.fmt_ratio(later['ours'] / later[v])})")
        for v in present))
  if "memory" in report:  # runs before 2026-12-04 measured both variants in one process
    memory = report["memory"]
    report["targets"]["peak_rss_at_most_standalone"] = memory["ours"] <= memory["standalone"]
    print("\npeak RSS of one training per process (ru_maxrss): " + ", ".join(
        f"{v} {memory[v]:,.0f} MB" + ("" if v == "ours" else
                                      f" (ours {memory['ours'] / memory[v]:.2f}x)")
        for v in VARIANTS if v in memory))
  print(f"\ntargets: {report['targets']}")


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--papers", type=int, default=4000, help="synthetic graph size")
  parser.add_argument("--config", default="pipelines/configs/demo.yaml",
                      help="model, task, trainer and sampling sections")
  parser.add_argument("--epochs", type=int, default=2)
  parser.add_argument("--reps", type=int, default=2, help="runs of each variant")
  parser.add_argument("--shards", type=int, default=4, help="TFRecord files per split")
  parser.add_argument("--workdir", default="runs/bench")
  parser.add_argument("--out", default="runs/bench/input_bench.json")
  parser.add_argument("--summarize", default="", help="reprint an earlier run's JSON and exit")
  parser.add_argument("--ours-trainer", default="", help=(
      "JSON of trainer options for ours only, e.g. '{\"padding\": \"none\", "
      "\"jit_compile\": false}' (default: the config's trainer section)"))
  parser.add_argument("--role", default="driver", help=argparse.SUPPRESS)
  parser.add_argument("--variants", default=",".join(VARIANTS), help=argparse.SUPPRESS)
  for hidden in ("--graph-dir", "--examples", "--files"):
    parser.add_argument(hidden, default="", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  args.workdir = os.path.abspath(args.workdir)
  if args.summarize:
    with open(args.summarize) as f:
      summarize(json.load(f))
    return
  if args.role != "driver":
    print(json.dumps({"prepare": prepare, "measure": measure}[args.role](args)))
    return
  os.makedirs(args.workdir, exist_ok=True)
  report = {"machine": common.machine(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "params": {"papers": args.papers, "config": args.config, "epochs": args.epochs,
                       "reps": args.reps, "shards": args.shards}}
  base = ["--papers", str(args.papers), "--config", args.config, "--epochs", str(args.epochs),
          "--reps", str(args.reps), "--shards", str(args.shards), "--workdir", args.workdir,
          "--ours-trainer", args.ours_trainer]
  prepared = common.child(MODULE, "prepare", base)
  report["data"] = prepared
  report["measure"] = common.child(MODULE, "measure", base + [
      "--graph-dir", prepared["graph_dir"], "--examples", prepared["examples"],
      "--files", json.dumps(prepared["files"])])
  # Memory: each variant alone in its own process (one rep), so each peak is its own.
  one_rep = base[:base.index("--reps")] + ["--reps", "1"] + base[base.index("--reps") + 2:]
  report["memory"] = {
      v: common.child(MODULE, "measure", one_rep + [
          "--graph-dir", prepared["graph_dir"], "--examples", prepared["examples"],
          "--files", json.dumps(prepared["files"]), "--variants", v])["peak_rss_mb"]
      for v in VARIANTS}
  report["machine"]["load_average_at_end"] = os.getloadavg()
  summarize(report)
  common.write_json(report, args.out)


if __name__ == "__main__":
  main()
