"""The trainer's fit-speed seams (issue #21): batches cached after the first epoch
(training.CachingKerasTrainer / CachedBatches, trainer.cache_batches) and AdamW's lazy
embedding-row updates (training.LazyAdamW, trainer.lazy_embedding_updates), backups by time
(training.IntervalBackupAndRestore, trainer.backup_interval_s). No pipeline runs."""
import collections
import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_gnn import runner
from tensorflow_gnn.models import contrastive_losses

from tfx_gnn.components.gnn_trainer import tasks, training
from tfx_gnn.components.gnn_trainer.config import TrainerConfig

CONTEXT = tf.distribute.InputContext()


class _Batches(runner.DatasetProvider):
  """Batches of 4 ids with a random per-epoch order (as the runner's provider shuffles examples),
  counting the passes that actually read it."""

  def __init__(self, n: int = 40, shuffle: bool = True):
    self.n, self.shuffle, self.reads = n, shuffle, tf.Variable(0)

  def get_dataset(self, context):
    del context

    def count(x):
      self.reads.assign_add(1)
      return x
    ds = tf.data.Dataset.range(self.n)
    if self.shuffle:
      ds = ds.shuffle(self.n, reshuffle_each_iteration=True)
    return ds.batch(4).map(count)


def _epoch(ds) -> list[tuple]:
  return [tuple(b.numpy().tolist()) for b in ds]


def test_cached_batches_are_the_first_epochs_batches_in_a_fresh_order_each_epoch():
  tf.keras.utils.set_random_seed(0)
  delegate = _Batches()
  ds = training.CachedBatches(delegate, shuffle=True).get_dataset(CONTEXT)
  epochs = [_epoch(ds) for _ in range(4)]
  # Every epoch: the same batches (a multiset), covering each example once.
  for e in epochs:
    assert collections.Counter(e) == collections.Counter(epochs[0])
    assert sorted(i for b in e for i in b) == list(range(40))
  # Batch order reshuffled per epoch; the delegate read once (the first pass).
  assert len({tuple(e) for e in epochs}) == 4
  assert int(delegate.reads.numpy()) == 10
  # The uncached path: the same examples per epoch, re-read every epoch.
  plain = delegate.get_dataset(CONTEXT)
  assert sorted(i for b in _epoch(plain) for i in b) == list(range(40))
  assert int(delegate.reads.numpy()) == 20


def test_cached_batches_as_the_uncached_path_over_an_epoch():
  tf.keras.utils.set_random_seed(1)
  uncached = _epoch(_Batches(shuffle=False).get_dataset(CONTEXT))
  ds = training.CachedBatches(_Batches(shuffle=False), shuffle=True).get_dataset(CONTEXT)
  for _ in range(3):
    assert collections.Counter(_epoch(ds)) == collections.Counter(uncached)


def test_cached_validation_batches_keep_their_order():
  delegate = _Batches()
  ds = training.CachedBatches(delegate, shuffle=False).get_dataset(CONTEXT)
  first = _epoch(ds)
  assert _epoch(ds) == first == _epoch(ds)
  assert int(delegate.reads.numpy()) == 10


def test_batch_caching_within_budget_only(tmp_path):
  small, large = tmp_path / "small.tfrecord", tmp_path / "large.tfrecord"
  small.write_bytes(b"x" * 1000)
  large.write_bytes(b"x" * (2**20 + 1))
  cfg = TrainerConfig(cache_examples_mb=1)
  task = object()
  assert training.batch_caching(cfg, task, [str(small)], [str(small)]) == (True, True)
  # Over the budget (the split's files together): that split is read from its files.
  assert training.batch_caching(cfg, task, [str(large)], [str(small)]) == (False, True)
  assert training.batch_caching(cfg, task, [str(small)] * 2, [str(large)]) == (True, False)
  assert training.batch_caching(TrainerConfig(cache_examples_mb=0), task, [str(small)],
                                [str(small)]) == (False, False)
  assert training.batch_caching(cfg, task, [str(small)], []) == (True, False)
  # Off: by config, for dynamic subgraphs (train only), for a random preprocessing (DGI).
  assert training.batch_caching(TrainerConfig(cache_examples_mb=1, cache_batches=False), task,
                                [str(small)], [str(small)]) == (False, False)
  assert training.batch_caching(cfg, task, [], [str(small)], dynamic=True) == (False, True)
  dgi = contrastive_losses.DeepGraphInfomaxTask("paper")
  assert training.random_preprocessing(dgi)
  assert training.random_preprocessing({"a": task, "b": tasks.WeightedTask(dgi, 0.5)})
  assert not training.random_preprocessing({"a": task})
  assert training.batch_caching(cfg, {"c": task, "d": dgi}, [str(small)],
                                [str(small)]) == (False, False)


def _step(optimizer, table: np.ndarray, ids, grads, dense=None):
  var = tf.Variable(table)
  other = tf.Variable(np.ones([3], np.float32))
  grad = tf.IndexedSlices(tf.constant(grads, tf.float32), tf.constant(ids, tf.int64),
                          tf.constant(table.shape, tf.int64))
  optimizer.apply_gradients([(grad, var), (tf.constant(dense, tf.float32), other)])
  return var.numpy(), other.numpy()


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_lazy_adamw_updates_only_the_rows_looked_up(weight_decay):
  table = np.arange(12, dtype=np.float32).reshape(6, 2) + 1
  ids, grads = [1, 4, 1], [[1.0, -2.0], [0.5, 0.5], [1.0, 0.0]]  # row 1 twice: summed
  dense = [0.3, -0.1, 0.0]
  kwargs = dict(learning_rate=0.01, weight_decay=weight_decay)
  lazy, lazy_dense = _step(training.LazyAdamW(**kwargs), table, ids, grads, dense)
  # The reference: AdamW on the summed gradient, densely.
  full = np.zeros_like(table)
  full[1], full[4] = [2.0, -2.0], [0.5, 0.5]
  ref, ref_dense = _step(tf.keras.optimizers.AdamW(**kwargs), table, [0, 1, 2, 3, 4, 5],
                         full.tolist(), dense)
  # First step (zero moments): the looked-up rows as AdamW's; the rest untouched (AdamW decays
  # them too); dense variables exactly as AdamW.
  np.testing.assert_allclose(lazy[[1, 4]], ref[[1, 4]], rtol=1e-6)
  np.testing.assert_array_equal(lazy[[0, 2, 3, 5]], table[[0, 2, 3, 5]])
  np.testing.assert_allclose(lazy_dense, ref_dense, rtol=1e-6)


def test_lazy_adamw_moments_of_untouched_rows_stay():
  opt = training.LazyAdamW(learning_rate=0.01, weight_decay=0.0)
  var = tf.Variable(np.ones([4, 2], np.float32))
  for ids in ([0], [1], [0]):
    opt.apply_gradients([(tf.IndexedSlices(tf.ones([1, 2]), tf.constant(ids, tf.int64),
                                           tf.constant([4, 2], tf.int64)), var)])
  m = opt._momentums[0].numpy()
  # Row 0 seen twice, row 1 once (its moment not decayed since), rows 2-3 never.
  np.testing.assert_allclose(m[0], 0.1 + 0.9 * 0.1, rtol=1e-6)
  np.testing.assert_allclose(m[1], 0.1, rtol=1e-6)
  np.testing.assert_array_equal(m[2:], 0.0)


def test_lazy_adamw_sparse_rows_outside_the_optimizers_xla_step():
  # On a GPU, tf_keras compiles each update step with XLA, which has no tf.unique.
  opt = training.LazyAdamW(learning_rate=0.01, weight_decay=0.0)
  opt.jit_compile = True
  var, dense = tf.Variable(np.ones([4, 2], np.float32)), tf.Variable(np.ones([2], np.float32))
  opt.apply_gradients([(tf.IndexedSlices(tf.ones([2, 2]), tf.constant([3, 3], tf.int64),
                                         tf.constant([4, 2], tf.int64)), var),
                       (tf.ones([2]), dense)])
  assert (var.numpy()[3] < 1).all() and (var.numpy()[:3] == 1).all()
  assert (dense.numpy() < 1).all()


def test_tfgnn_and_our_graph_code_are_traced_without_autograph_and_user_code_with_it():
  """models.py keeps autograph from converting TF-GNN and our own layers (graph code already;
  converting them cost about a quarter of a fresh process's tiny run), and only those: a user
  module's model code is still converted, and so is a function that tf.function decorates (the
  IG export's loop over tf.range), wherever it lives."""
  import tensorflow as tf
  from tensorflow.python.autograph.impl import conversion
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components.gnn_trainer import models, trimming
  assert conversion.is_allowlisted(tfgnn.keras.layers.GraphUpdate.call)
  assert conversion.is_allowlisted(tfgnn.broadcast_node_to_edges)
  assert conversion.is_allowlisted(trimming.TrimToHop.call)
  user_model_fn = training.load_user_model_fn(
      os.path.join(os.path.dirname(__file__), "user_module", "user_gnn.py"))
  assert not conversion.is_allowlisted(user_model_fn)
  models.skip_autograph()  # idempotent: one rule per package, however often it runs
  from tensorflow.python.autograph.core import config as autograph_config
  for package in models.GRAPH_CODE_PACKAGES:
    assert sum(str(r) == f"DoNotConvert rule for {package}"
               for r in autograph_config.CONVERSION_RULES) == 1

  def count_up(n):
    total = tf.constant(0)
    for i in tf.range(n):  # a loop over a tensor: only autograph makes it a graph loop
      total += i
    return total

  count_up.__module__ = models.__name__  # as if written in our package
  assert int(tf.function(count_up)(tf.constant(4))) == 6


def test_the_time_left_leaves_out_the_first_epoch_and_says_at_most_under_early_stopping(
    caplog):
  """The first epoch also traces the model and fills the batch cache: it is not what the
  rest will take. Under early stopping the epoch count is a bound."""
  import logging
  for early_stopping, word in ((False, "about"), (True, "at most")):
    progress = training.EpochProgress(early_stopping)
    progress.set_params({"epochs": 12})
    progress.on_train_begin()
    progress._durations.extend([30.0, 2.0])  # epoch 1 slow, epoch 2 typical
    progress._start = training.time.monotonic() - 2.0  # epoch 3 took 2 s
    with caplog.at_level(logging.INFO, logger="absl"):
      caplog.clear()
      progress.on_epoch_end(2, {"loss": 1.0})
    [line] = [r.getMessage() for r in caplog.records if "epoch 3/12" in r.getMessage()]
    assert f"{word} 18 s left" in line, line  # 9 epochs x 2 s, not x 11.3 s


def test_interval_backup_backs_up_the_first_epoch_then_by_time_and_resumes_after_it(tmp_path):
  """trainer.backup_interval_s: the first epoch is always backed up; within the interval the
  later ones are not, so a crash resumes after the last backed-up epoch; with interval 0
  every epoch is, as Keras's BackupAndRestore does."""
  from tfx_gnn.components.gnn_trainer import dynamic

  class Crash(tf.keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
      if epoch == 3:
        raise RuntimeError("crash after epoch 3")

  for interval_s, resumed in ((3600.0, 1), (0.0, 4)):
    backup = str(tmp_path / f"backup-{interval_s}")
    model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    with pytest.raises(RuntimeError, match="crash"):
      model.fit(np.zeros((4, 2)), np.zeros(4), epochs=6, verbose=0, callbacks=[
          training.IntervalBackupAndRestore(backup, interval_s), Crash()])
    assert dynamic.resumed_epoch(backup) == resumed, interval_s
    # The rerun resumes there and trains the remaining epochs.
    seen = []
    model.fit(np.zeros((4, 2)), np.zeros(4), epochs=6, verbose=0, callbacks=[
        training.IntervalBackupAndRestore(backup, interval_s),
        tf.keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: seen.append(e))])
    assert seen == list(range(resumed, 6)), (interval_s, seen)
