"""What dropout's random numbers cost on CPU, by the op that draws them (issue #21: dropout's
random numbers were a quarter of a steady-state training step in benchmarks/step_profile.py).

Keras's Dropout draws with the legacy stateful `RandomUniform` op (`tf.nn.dropout`), or with
a `tf.random.Generator` after `tf.keras.backend.experimental.enable_tf_random_generator()`;
TensorFlow's stateless ops take an explicit seed. Each variant runs as a tf.function on a
float32 tensor the size of a demo batch's node states, `--calls` times after one warm-up
call, in alternating order, `--reps` times.

  .venv/bin/python -m benchmarks.dropout_rng_probe --out runs/bench/dropout_rng.json
"""
from __future__ import annotations

import argparse
import statistics
import time

from benchmarks import common


def variants():
  import tensorflow as tf
  generator = tf.random.Generator.from_seed(1)

  def generator_dropout(x):  # Keras's path with enable_tf_random_generator()
    return tf.nn.experimental.general_dropout(
        x, 0.5, uniform_sampler=lambda shape, dtype: generator.uniform(shape, dtype=dtype))

  def seeded_stateless_dropout(x):  # a fresh seed per call from the generator, stateless draw
    return tf.nn.experimental.stateless_dropout(x, 0.5, seed=generator.make_seeds(1)[:, 0])

  return {
      "tf.nn.dropout (Keras's default, legacy RandomUniform)":
          tf.function(lambda x: tf.nn.dropout(x, 0.5)),
      "general_dropout on tf.random.Generator (Keras's opt-in)": tf.function(generator_dropout),
      "stateless_dropout, seed drawn per call": tf.function(seeded_stateless_dropout),
      "RandomUniform alone": tf.function(lambda x: tf.random.uniform(tf.shape(x))),
      # The seed from the generator, as in a training step: with a constant seed grappler
      # folds the draw into a constant (0.15x here), which no training step could do.
      "StatelessRandomUniformV2 alone": tf.function(
          lambda x: tf.random.stateless_uniform(tf.shape(x), seed=generator.make_seeds(1)[:, 0])),
  }


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--rows", type=int, default=6000, help="nodes in the batch")
  parser.add_argument("--units", type=int, default=64)
  parser.add_argument("--calls", type=int, default=300)
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--out", default="runs/bench/dropout_rng.json")
  args = parser.parse_args(argv)
  import tfx_gnn  # noqa: F401  (the environment TensorFlow needs)
  import tensorflow as tf
  x = tf.random.normal([args.rows, args.units])
  fns = variants()
  ms = {name: [] for name in fns}
  for _ in range(args.reps):
    for name, fn in fns.items():
      fn(x)
      start = time.perf_counter()
      for _ in range(args.calls):
        fn(x)
      ms[name].append((time.perf_counter() - start) / args.calls * 1e3)
  base = statistics.median(ms[next(iter(fns))])
  print(common.table([("variant", "ms per call (median)", "ratio to Keras's default")] + [
      (name, f"{statistics.median(v):.3f}", common.fmt_ratio(statistics.median(v) / base))
      for name, v in ms.items()]))
  common.write_json({"machine": common.machine(), "params": vars(args), "ms_per_call": ms},
                    args.out)


if __name__ == "__main__":
  main()
