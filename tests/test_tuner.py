"""GnnTuner: the `tuner` config section (strict search space), the search's plain functions,
and (slow) the tuner in the real pipeline on the tiny graph, whose best settings reach the
sampler and the trainer."""
import json
import os

import pytest
import yaml

import mlflow_template
from tfx_gnn.pipelines import config as config_lib


def model_config(**options):
  """A `model` section from its options (ModelConfig is a union on `template`)."""
  from tfx_gnn.components import config_base
  from tfx_gnn.components.gnn_trainer.config import ModelConfig
  return config_base.validate(ModelConfig, options)

HERE = os.path.dirname(__file__)
TINY = os.path.join(HERE, "configs", "tiny.yaml")


def tiny_raw(root="runs/tuner", tuner=None) -> dict:
  with open(TINY) as f:
    raw = yaml.safe_load(f)
  raw["pipeline"].update(root=str(root), name="tfx-gnn-tuner")
  if tuner is not None:
    raw["tuner"] = tuner
  return raw


def config_error(tuner: dict) -> str:
  with pytest.raises(config_lib.ConfigError) as e:
    config_lib.parse_config(tiny_raw(tuner=tuner), "tuned.yaml", HERE)
  return str(e.value)


# ------------------------------------------------------------------ config (fast)
def test_unknown_search_space_key_is_an_error_naming_it():
  message = config_error({"search_space": {"unitz": [8, 16]}})
  assert "tuner.search_space.unitz: unknown key" in message and "tuned.yaml" in message
  assert "tuner.trialz: unknown key" in config_error({"trialz": 3})


@pytest.mark.parametrize("space, words", [
    ({"learning_rate": {"low": 0.1, "high": 0.01}}, ["learning_rate", "low 0.1 is above high"]),
    ({"learning_rate": {"low": 0, "high": 0.01, "log": True}}, ["learning_rate", "log range"]),
    ({"state_dropout_rate": [0.2, 1.5]}, ["state_dropout_rate", "candidate 1.5"]),
    ({"hops": [2, 9]}, ["hops", "candidate 9"]),
    ({"units": {"low": 64, "high": 8}}, ["units", "above high"]),
    ({"units": []}, ["units", "no candidate values"]),
    ({"template": ["mt_albis", "gnc"]}, ["template.1", "mt_albis"]),
    ({"fanout_scale": [0.0]}, ["fanout_scale", "must be > 0"]),
    ({"batch_size": [0, 32]}, ["batch_size", "candidate 0"]),
    ({"last_round_activation": ["relu", "tanh"]}, ["last_round_activation", "'linear'"]),
])
def test_impossible_ranges_are_errors_naming_the_key(space, words):
  message = config_error({"search_space": space})
  assert "tuner.search_space" in message
  for word in words:
    assert word in message, message


@pytest.mark.parametrize("tuner, key", [
    ({"start_points": ["gcn_kipf_welling", "gcn_kipf"]}, "tuner.start_points.1"),
    ({"prune_after_epochs": -1}, "tuner.prune_after_epochs"),
    ({"rerun_top_k": -2}, "tuner.rerun_top_k"),
    ({"rerun_seeds": -1}, "tuner.rerun_seeds"),
])
def test_start_point_pruning_and_rerun_keys_are_checked_naming_the_key(tuner, key):
  assert key in config_error(tuner)


def test_budget_must_be_positive_and_tasks_must_be_root_node():
  assert "tuner.trials" in config_error({"trials": 0})
  assert "tuner.max_minutes" in config_error({"max_minutes": 0})
  raw = tiny_raw(tuner={"trials": 2})
  raw["task"] = {"type": "dgi"}
  with pytest.raises(config_lib.ConfigError, match="tuner: the GnnTuner tunes supervised"):
    config_lib.parse_config(raw, "tuned.yaml", HERE)


def test_a_valid_tuner_section_composes_and_defaults_follow_tfgnns_mt_albis_space():
  config = config_lib.parse_config(tiny_raw(tuner={"trials": 3, "max_minutes": 5}),
                                   "tuned.yaml", HERE)
  space = config.tuner.search_space.searched()
  assert config.tuner.trials == 3 and config.tuner.seed == 0
  assert space["simple_conv_reduce_type"] == ["mean", "mean|sum", "mean|max", "mean|sum|max"]
  assert space["next_state_type"] == ["dense", "residual"]
  assert config.tuner.search_space.learning_rate.log
  assert config_lib.parse_config(tiny_raw(), "plain.yaml", HERE).tuner is None


# ------------------------------------------------------------------ search logic (fast)
def test_suggest_is_seeded_and_conditional_on_the_template():
  import optuna
  from tfx_gnn.components.gnn_tuner import tuning
  from tfx_gnn.components.gnn_tuner.config import SearchSpace

  space = SearchSpace()

  def draws(seed):
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    out = []
    for _ in range(12):
      trial = study.ask()
      out.append(tuning.suggest(trial, space, "mt_albis"))
      study.tell(trial, 0.5)
    return out

  first = draws(7)
  assert first == draws(7)  # the seed fixes the trials
  for params in first:
    if params["template"] != "mt_albis":  # MtAlbis's options only on MtAlbis trials
      assert not {"attention_type", "next_state_type", "edge_dropout_rate"} & set(params)
    else:
      assert {"attention_type", "next_state_type", "simple_conv_reduce_type"} <= set(params)
      assert ("attention_num_heads" in params) == (params["attention_type"] != "none")
  assert {p["template"] for p in first} == {"mt_albis", "graph_sage", "gcn"}


def test_trial_configs_override_the_sections_and_drop_another_templates_options():
  from tfx_gnn.components.gnn_trainer.config import TrainerConfig
  from tfx_gnn.components.gnn_tuner import tuning
  from tfx_gnn.components.subgraph_sampler.config import SamplingConfig
  model = model_config(template="mt_albis", attention_type="gat_v2", units=16,
                      id_embeddings=False)
  trainer = TrainerConfig(epochs=50, validation_freq=5, early_stopping_patience=3)
  sampling = SamplingConfig(fanouts={"cites": 4, "writes": 2}, hops=2)
  configs = tuning.trial_configs(
      {"template": "graph_sage", "units": 32, "learning_rate": 0.02, "hops": 3,
       "fanout_scale": 1.5}, model, trainer, sampling, trial_epochs=3)
  assert configs.model.template == "graph_sage" and configs.model.units == 32
  assert not hasattr(configs.model, "attention_type")  # an MtAlbis option, dropped
  assert configs.model.id_embeddings is False  # the config's own setting, kept
  assert configs.trainer.learning_rate == 0.02 and configs.trainer.epochs == 3
  assert configs.trainer.validation_freq == 3 and configs.trainer.integrated_gradients is None
  assert configs.sampling.mode == "dynamic" and configs.sampling.hops == 3
  assert configs.sampling.fanouts == {"cites": 6, "writes": 3}
  assert configs.overrides == {
      "model": {"template": "graph_sage", "units": 32, "id_embeddings": False},
      "trainer": {"learning_rate": 0.02},
      "sampling": {"hops": 3, "fanouts": {"cites": 6, "writes": 3}}}


def test_gcns_options_are_searched_in_gcn_trials_only_and_reach_its_config():
  """The space reaches Kipf & Welling's GCN (cora.yaml's model): GCN's own options apply to
  gcn trials only; batch_size is the trainer's."""
  import optuna
  from tfx_gnn.components.gnn_trainer.config import TrainerConfig
  from tfx_gnn.components.gnn_tuner import tuning
  from tfx_gnn.components.gnn_tuner.config import SearchSpace
  from tfx_gnn.components.subgraph_sampler.config import SamplingConfig
  space = SearchSpace(template=["gcn", "graph_sage"], input_projection=[False],
                      last_round_transform=[False], last_round_activation=["linear"],
                      batch_size=[140], num_rounds=None, id_embeddings=None)
  study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
  drawn = [tuning.suggest(study.ask(), space, "gcn") for _ in range(8)]
  for params in drawn:
    gcn_only = {"last_round_transform", "last_round_activation"} & set(params)
    assert bool(gcn_only) == (params["template"] == "gcn"), params
    assert params["batch_size"] == 140 and params["input_projection"] is False
  gcn = next(p for p in drawn if p["template"] == "gcn")
  configs = tuning.trial_configs(gcn, model_config(template="gcn", degree_feature="degree"),
                                 TrainerConfig(), SamplingConfig(fanouts={"cites": 200}))
  assert (configs.model.last_round_transform, configs.model.last_round_activation,
          configs.model.input_projection, configs.model.degree_feature) == (
              False, "linear", False, "degree")
  assert configs.trainer.batch_size == 140


def test_default_epochs_follow_the_eval_split_and_early_stopping():
  """Default epochs: a bound that early stopping on the eval split ends, a fixed count
  without an eval split or early stopping; a given count is kept."""
  from tfx_gnn.components.gnn_trainer.config import (
      EPOCHS_WITHOUT_EARLY_STOPPING, MAX_EPOCHS, TrainerConfig)
  default = TrainerConfig()
  assert default.early_stopping_patience and default.validation_freq == 1
  assert default.epochs_to_train(has_eval=True) == MAX_EPOCHS
  assert default.epochs_to_train(has_eval=False) == EPOCHS_WITHOUT_EARLY_STOPPING
  assert TrainerConfig(early_stopping_patience=None).epochs_to_train(has_eval=True) == (
      EPOCHS_WITHOUT_EARLY_STOPPING)
  assert TrainerConfig(epochs=7).epochs_to_train(has_eval=False) == 7
  with pytest.raises(ValueError, match=f"validation_freq 400 > epochs {MAX_EPOCHS}"):
    TrainerConfig(validation_freq=400)


def test_objective_is_read_at_the_epoch_whose_weights_are_exported():
  from tfx_gnn.components.gnn_tuner import tuning
  history = {"val_loss": [0.9, 0.5, 0.7], "val_sparse_categorical_accuracy": [0.5, 0.7, 0.8],
             "loss": [1, 1, 1]}
  assert tuning.objective_value(history, "accuracy") == (0.7, "val_sparse_categorical_accuracy")
  assert tuning.objective_value(history, "loss") == (0.5, "val_loss")
  with pytest.raises(tuning.TunerError, match="validated no epoch"):
    tuning.objective_value({"loss": [1.0]}, "loss")


def test_hyperparameters_artifact_round_trip_and_bad_files(tmp_path):
  from tfx_gnn.components import hyperparameters
  from tfx_gnn.components.gnn_trainer.config import ModelConfig, TrainerConfig
  (tmp_path / "best_hyperparameters.txt").write_text(json.dumps(
      {"model": {"units": 24}, "trainer": {"learning_rate": 0.01}, "sampling": {}}))
  overrides = hyperparameters.read_overrides(str(tmp_path))
  assert hyperparameters.apply(model_config(units=8, template="gat_v2"), overrides,
                               "model", ModelConfig) == model_config(units=24)
  trainer = hyperparameters.apply(TrainerConfig(epochs=7), overrides, "trainer")
  assert (trainer.epochs, trainer.learning_rate) == (7, 0.01)
  (tmp_path / "best_hyperparameters.txt").write_text('{"modle": {}}')
  with pytest.raises(ValueError, match="best_hyperparameters.txt: expected sections"):
    hyperparameters.read_overrides(str(tmp_path))
  with pytest.raises(ValueError, match="not readable"):
    hyperparameters.read_overrides(str(tmp_path / "missing"))


def test_gcn_and_16_units_are_in_the_default_space_but_gcn_not_on_several_node_sets():
  from tfx_gnn.components.gnn_tuner import tuning
  from tfx_gnn.components.gnn_tuner.config import SearchSpace
  space = SearchSpace()
  assert "gcn" in space.template and 16 in space.units
  assert "gcn" in tuning.searched_space(space, num_node_sets=1)["template"]
  assert "gcn" not in tuning.searched_space(space, num_node_sets=3)["template"]
  with pytest.raises(tuning.TunerError, match="tuner.search_space.template"):
    tuning.searched_space(SearchSpace(template=["gcn"]), num_node_sets=2)


def test_graph_sage_start_point_trains_with_the_trainers_own_defaults():
  """No per-graph trainer values in code: the recipe's trainer settings are TrainerConfig's
  defaults, whatever they are."""
  from tfx_gnn.components.gnn_trainer.config import TrainerConfig
  from tfx_gnn.components.gnn_tuner import tuning
  defaults = TrainerConfig()
  params = tuning.start_point_params("graph_sage_mean_128", defaults, 60, None)
  trainer_keys = {k for k in params if tuning.SECTION_OF.get(k) == "trainer"}
  assert trainer_keys and all(params[k] == getattr(defaults, k) for k in trainer_keys), params
  assert (params["units"], params["reduce_type"], params["id_embeddings"]) == (128, "mean", False)


def test_graph_sage_start_point_has_a_round_per_sampled_hop():
  """Where the relation paths sample 4 hops (an author's venue's other papers), the recipe
  runs 4 rounds so that the root hears them; 2 at least."""
  from tfx_gnn.components.gnn_trainer.config import TrainerConfig
  from tfx_gnn.components.gnn_tuner import tuning
  for hops, rounds in ((1, 2), (2, 2), (4, 4)):
    starts, _ = tuning.plan_start_points(None, num_node_sets=3, num_train=80,
                                         degree_feature=None, hops=hops)
    assert starts["graph_sage_mean_128"]["num_rounds"] == rounds
  assert tuning.start_point_params("graph_sage_mean_128", TrainerConfig(), 80,
                                   None)["num_rounds"] == 2


def test_start_points_apply_to_the_graphs_shape_only():
  from tfx_gnn.components.gnn_tuner import tuning
  starts, skipped = tuning.plan_start_points(None, num_node_sets=1, num_train=140,
                                             degree_feature="deg")
  assert list(starts) == ["config", "gcn_kipf_welling", "graph_sage_mean_128"]
  gcn = starts["gcn_kipf_welling"]
  assert gcn["degree_feature"] == "deg" and gcn["batch_size"] == 140 and not skipped
  assert gcn["weight_decay"] == 0.0 and gcn["learning_rate"] == 0.01
  starts, skipped = tuning.plan_start_points(None, num_node_sets=3, num_train=60,
                                             degree_feature=None)
  assert list(starts) == ["config", "graph_sage_mean_128"] and skipped == ["gcn_kipf_welling"]
  starts, _ = tuning.plan_start_points([], num_node_sets=1, num_train=60, degree_feature=None)
  assert list(starts) == ["config"]  # the config's own settings are always trial 0


def test_the_degree_feature_is_found_from_the_data_not_a_name():
  import numpy as np
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.gnn_tuner import tuning
  ids = np.array(["a", "b", "c", "d"])
  sources, targets = np.array(["a", "a", "b", "c"]), np.array(["b", "c", "a", "a"])
  nodes = graph_io.NodeSet(ids, {"feat": np.ones((4, 3), np.float32),
                                 "label": np.array([0, 1, 0, 1]),
                                 "how_many": np.array([2, 1, 1, 0], np.float32)})
  graph = graph_io.Graph({"v": nodes}, {"e": graph_io.EdgeSet("v", "v", sources, targets)})
  assert tuning.degree_feature_of(graph, "v") == "how_many"
  nodes.features["how_many"] = np.array([2, 1, 1, 1], np.float32)  # not the degrees
  assert tuning.degree_feature_of(graph, "v") is None


def test_a_start_points_values_are_told_to_the_sampler_where_the_space_has_them():
  import optuna
  from tfx_gnn.components.gnn_trainer.config import TrainerConfig
  from tfx_gnn.components.gnn_tuner import tuning
  from tfx_gnn.components.gnn_tuner.config import SearchSpace
  searched = tuning.searched_space(SearchSpace(), 1)
  params = tuning.start_point_params("gcn_kipf_welling", TrainerConfig(), 140, "degree")
  fixed = tuning.fixed_values(params, searched)
  assert fixed["template"] == "gcn" and fixed["units"] == 16 and fixed["learning_rate"] == 0.01
  assert "add_self_loops" not in fixed and "degree_feature" not in fixed  # not searched
  study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
  study.enqueue_trial(fixed)
  trial = study.ask()
  assert {k: tuning._suggest_one(trial, k, searched[k]) for k in fixed} == fixed


def test_the_best_is_picked_by_the_mean_of_its_runs():
  from tfx_gnn.components.gnn_tuner import tuning
  # Trial 4 had the best single run, trial 7 the best mean over its three seeds.
  runs = {4: [0.84, 0.78, 0.79], 7: [0.83, 0.82, 0.83], 2: [0.80]}
  assert tuning.pick_by_mean(runs, maximize=True) == 7
  assert tuning.pick_by_mean({4: [0.5, 0.9], 7: [0.6, 0.6]}, maximize=False) == 7
  assert tuning.pick_by_mean({4: [0.8], 7: [0.8]}, maximize=True) == 4  # tie: higher ranked
  assert tuning.pick_by_mean({4: [float("nan")], 7: [0.1]}, maximize=True) == 7


def test_the_search_leaves_time_for_reruns_but_not_before_the_start_points():
  from tfx_gnn.components.gnn_tuner import tuning
  # 6 reruns of 100 s trials: 600 s, and one more trial.
  assert tuning.rerun_reserve(1800, 6, [100, 90, 400], start_points_left=0) == 700
  # Slow trials: the reruns get at most half the budget (those that do not fit are skipped).
  assert tuning.rerun_reserve(1800, 6, [370, 400], start_points_left=0) == 900 + 370
  assert tuning.rerun_reserve(1800, 6, [100], start_points_left=1) is None
  assert tuning.rerun_reserve(1800, 0, [100], start_points_left=0) is None


def homogeneous_graph(tmp_path, num_nodes=120):
  """A tiny one-node-set graph as tables (undirected edges with a degree feature)."""
  import numpy as np
  from tfx_gnn.components.graph_ingest import ingest
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, num_nodes)
  feats = rng.normal(size=(num_nodes, 4)) + labels[:, None]
  with open(tmp_path / "nodes.csv", "w") as f:
    f.write("id,label,features\n")
    for i in range(num_nodes):
      f.write(f"{i},{labels[i]},{' '.join(f'{x:.3f}' for x in feats[i])}\n")
  with open(tmp_path / "edges.csv", "w") as f:
    f.write("src,dst\n")
    for i in range(num_nodes):  # a ring, and a same-label neighbour
      f.write(f"{i},{(i + 1) % num_nodes}\n")
      same = np.flatnonzero(labels == labels[i])
      f.write(f"{i},{rng.choice(same)}\n")
  splits = ["train"] * 40 + ["val"] * 40 + ["test"] * (num_nodes - 80)
  with open(tmp_path / "split.csv", "w") as f:
    f.write("id,split\n" + "".join(f"{i},{s}\n" for i, s in enumerate(splits)))
  graph_dir = str(tmp_path / "graph")
  ingest.ingest({"tables": {
      "directory": str(tmp_path),
      "node_sets": {"v": {"file": "nodes.csv", "id_column": "id", "label_column": "label"}},
      "edge_sets": {"e": {"file": "edges.csv", "source": "v", "target": "v",
                          "source_column": "src", "target_column": "dst",
                          "undirected": True, "degree_feature": "n_edges"}},
      "splits": {"file": "split.csv"}}}, graph_dir, str(tmp_path / "scratch"))
  return graph_dir


@pytest.mark.slow  # trains several trials
def test_start_points_pruning_and_reruns_on_a_tiny_graph(tmp_path):
  """Trial 0 the config's own, then the start points that apply (GCN with the data's degree
  feature, found without its name), then TPE with pruning; the top trials rerun with more
  seeds and the best mean wins. The test split is never read."""
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.gnn_trainer.config import RootNodeMulticlassOptions, TrainerConfig
  from tfx_gnn.components.gnn_tuner import tuning
  from tfx_gnn.components.gnn_tuner.config import TunerConfig
  from tfx_gnn.components.subgraph_sampler.config import SamplingConfig
  graph_dir = homogeneous_graph(tmp_path)
  os.remove(graph_io.seeds_file(graph_dir, "test"))  # a tuner that read it would fail
  result = tuning.tune(
      graph_dir, tuner=TunerConfig(
          trials=4, max_minutes=10, seed=1, trial_epochs=3, prune_after_epochs=0,
          rerun_top_k=2, rerun_seeds=1,
          search_space={"template": ["graph_sage", "gcn"], "units": [8],
                        "num_rounds": [1], "id_embeddings": None}),
      model=model_config(units=8, num_rounds=1), trainer=TrainerConfig(batch_size=16),
      task=RootNodeMulticlassOptions(), sampling=SamplingConfig(fanouts={"e": 3}, hops=2),
      workdir=str(tmp_path / "work"))
  trials = {t["number"]: t for t in result.trials}
  assert [trials[n].get("start_point") for n in (0, 1, 2)] == [
      "config", "gcn_kipf_welling", "graph_sage_mean_128"]
  assert trials[0]["params"] == {}  # the config's own settings
  assert trials[1]["params"]["degree_feature"] == "n_edges"
  assert all(trials[n]["state"] == "COMPLETE" for n in (0, 1, 2))  # never pruned
  assert {t["state"] for t in result.trials} <= {"COMPLETE", "PRUNED"}
  for t in result.trials:
    if t["state"] == "PRUNED":
      assert "start_point" not in t and "median" in t["error"]
  # Reruns: the top 2 completed, one more seed each; the best is the best mean.
  assert [len(r["values"]) for r in result.reruns] == [2, 2]
  assert all(r["seeds"] == [1] for r in result.reruns)
  means = {r["number"]: r["mean"] for r in result.reruns}
  assert result.best_trial == max(means, key=means.get)
  assert result.best_value == pytest.approx(means[result.best_trial])
  out = tmp_path / "out"
  out.mkdir()
  tuning.write_result(result, str(out))
  written = json.loads((out / "trials.json").read_text())
  assert written["reruns"] == result.reruns and written["best_trial"] == result.best_trial


@pytest.mark.slow  # trains several trials
def test_the_median_pruner_stops_a_search_trial_and_records_it(tmp_path):
  """A search trial worse than the median of the start points at the same epoch is stopped
  from the trainer's epoch callback and recorded PRUNED; start points are not."""
  from tfx_gnn.components.gnn_trainer.config import RootNodeMulticlassOptions, TrainerConfig
  from tfx_gnn.components.gnn_tuner import tuning
  from tfx_gnn.components.gnn_tuner.config import TunerConfig
  from tfx_gnn.components.subgraph_sampler.config import SamplingConfig
  graph_dir = homogeneous_graph(tmp_path)
  # The search can only draw a learning rate too small to learn in 3 epochs, the start points
  # learn: the objective is the loss, so the search trials are above the median.
  result = tuning.tune(
      graph_dir, tuner=TunerConfig(
          trials=4, max_minutes=10, seed=0, trial_epochs=3, prune_after_epochs=1,
          objective="loss", rerun_top_k=0, start_points=["graph_sage_mean_128"],
          search_space={"template": ["graph_sage"], "units": [8], "num_rounds": [1],
                        "learning_rate": [1e-6], "id_embeddings": None,
                        "state_dropout_rate": None, "input_dropout_rate": None,
                        "feature_normalization": None, "weight_decay": None}),
      model=model_config(units=8, num_rounds=1),
      trainer=TrainerConfig(batch_size=16, learning_rate=0.05),
      task=RootNodeMulticlassOptions(), sampling=SamplingConfig(fanouts={"e": 3}, hops=1),
      workdir=str(tmp_path / "work"))
  states = [t["state"] for t in result.trials]
  assert states[:2] == ["COMPLETE", "COMPLETE"] and "PRUNED" in states[2:], result.trials
  pruned = next(t for t in result.trials if t["state"] == "PRUNED")
  assert pruned["epochs"] == 2 and pruned["value"] is not None  # stopped at epoch 2 of 3
  assert result.best_trial in (0, 1) and result.reruns == []


# ------------------------------------------------------------------ the pipeline (slow)
TUNER = {
    # 3 epochs a trial and for the trainer after them (tuned_run): the test checks what the
    # trials record and hand on, not how well they learn.
    # Trial 0 is the config's own settings, trial 1 the search's (no start points, no reruns).
    "trials": 2, "max_minutes": 10, "seed": 3, "trial_epochs": 3,
    "start_points": [], "rerun_top_k": 0,
    "search_space": {
        "template": ["mt_albis"], "units": [24, 40], "num_rounds": [2],
        "learning_rate": {"low": 0.001, "high": 0.02, "log": True}, "hops": [1, 2],
        "state_dropout_rate": [0.0, 0.2], "input_dropout_rate": None,
        "feature_normalization": None, "id_embeddings": None, "attention_type": None,
        "attention_num_heads": None, "simple_conv_reduce_type": None,
        "edge_dropout_rate": None, "next_state_type": ["dense", "residual"],
        "weight_decay": [0.0, 0.0001]},
}


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory):
  import time
  from tfx_gnn.components import lineage
  from tfx_gnn.pipelines import local_runner
  root = tmp_path_factory.mktemp("tuner")
  raw = tiny_raw(root, TUNER)
  raw["trainer"]["epochs"] = 3
  raw["attribution"] = {"enabled": False}
  raw["report"] = {"enabled": False}
  raw["bulk_inference"] = {"enabled": False}
  config = config_lib.parse_config(raw, "tuned", HERE)
  mlflow_template.copy_into(config)
  started = time.monotonic()
  summary = local_runner.run(config)
  wall = time.monotonic() - started
  store = lineage.open_store(config.metadata_path)
  records = {r.component: r for r in lineage.executions(store, summary["run_id"])}
  return config, summary, records, wall


@pytest.mark.slow
def test_tuner_runs_and_its_best_hyperparameters_reach_the_trainer(tuned_run):
  import tensorflow as tf
  import mlflow
  from tfx.utils import path_utils
  config, summary, records, wall = tuned_run
  assert set(summary["components"].values()) == {"COMPLETE"}, summary["components"]
  tuner = records["GnnTuner"]
  [best] = [a for a in tuner.outputs if a.type == "HyperParameters"]
  assert best.properties["trials"] == 2 and best.properties["objective"].startswith("val_")
  print(f"tuner {tuner.seconds:.0f} s, pipeline {wall:.0f} s")
  overrides = json.loads(open(os.path.join(best.uri, "best_hyperparameters.txt")).read())
  pinned = yaml.safe_load(open(os.path.join(best.uri, "best_hyperparameters.yaml")))
  assert pinned == {k: v for k, v in overrides.items() if v}  # the YAML to pin says the same
  # The config's own (tiny.yaml: 16 units, 2 hops) or the search's.
  units, hops = overrides["model"]["units"], overrides["sampling"].get("hops", 2)
  assert units in (16, 24, 40) and hops in (1, 2)
  trials = json.loads(open(os.path.join(best.uri, "trials.json")).read())["trials"]
  assert [t["state"] for t in trials] == ["COMPLETE", "COMPLETE"]

  # ML Metadata: the sampler and the trainer consumed this very artifact.
  for component in ("SubgraphSampler", "GnnTrainer"):
    assert best.id in [a.id for a in records[component].inputs
                       if a.type == "HyperParameters"], component
  [model] = [a for a in records["GnnTrainer"].outputs if a.type == "Model"]
  assert model.properties["hyperparameters_uri"] == best.uri
  [examples] = [a for a in records["SubgraphSampler"].outputs if a.type == "Examples"]
  # The tuned hops sampled eval and test (the depth of the recorded SamplingSpec).
  from google.protobuf import text_format
  from tensorflow_gnn import sampler as sampler_lib
  spec = text_format.Parse(examples.properties["sampling_spec"], sampler_lib.SamplingSpec())
  depth = {spec.seed_op.op_name: 0}
  for op in spec.sampling_ops:
    depth[op.op_name] = 1 + max(depth[i] for i in op.input_op_names)
  assert max(depth.values()) == hops

  # The exported model has the tuned width, not the other candidate's.
  variables = tf.train.list_variables(
      os.path.join(path_utils.serving_model_path(model.uri), "variables", "variables"))
  widths = {shape[-1] for _, shape in variables if len(shape) == 2}
  assert units in widths and ({24, 40} - {units}).isdisjoint(widths), widths
  # The trainer's MLflow run logged the tuned settings; every trial is a child run.
  client = mlflow.MlflowClient(config.tracking_uri)
  train_run = client.get_run(model.properties["mlflow_run_id"])
  assert train_run.data.params["model.units"] == str(units)
  assert train_run.data.params["trainer.learning_rate"] == str(
      overrides["trainer"].get("learning_rate", config.trainer.learning_rate))
  parent = best.properties["mlflow_run_id"]
  experiment = client.get_experiment_by_name(config.experiment).experiment_id
  children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent}'")
  assert sorted(r.info.run_name for r in children) == ["trial-0", "trial-1"]
  assert all(r.info.status == "FINISHED" and "objective" in r.data.metrics for r in children)


def test_trials_read_train_and_eval_only_never_test(tmp_path):
  import tensorflow as tf
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.graph_ingest import ingest
  from tfx_gnn.components.gnn_tuner import tuning
  from tfx_gnn.components.subgraph_sampler.config import SamplingConfig
  graph_dir = str(tmp_path / "graph")
  ingest.ingest({"synthetic": {"num_papers": 200, "num_classes": 4, "feature_dim": 8}},
                graph_dir, str(tmp_path / "scratch"))
  os.remove(graph_io.seeds_file(graph_dir, "test"))  # a tuner that read it would fail
  data = tuning.TrialData(graph_dir, str(tmp_path))
  sampler, eval_file = data.sampler(SamplingConfig(fanouts={"cites": 2, "cited_by": 2}))
  assert sum(1 for _ in tf.data.TFRecordDataset(eval_file)) == len(data.eval_seeds) > 0
  assert not set(data.eval_seeds) & set(data.train_seeds)
  # The eval subgraphs are those the SubgraphSampler writes for the eval split (salt "eval").
  first = next(iter(tf.data.TFRecordDataset(eval_file))).numpy()
  assert first == sampler.sample(data.eval_seeds[:1], salt="eval")[0]


def test_attention_over_empty_states_is_recognized():
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components import graph_io
  from tfx_gnn.components.gnn_tuner import tuning
  schema = tfgnn.GraphSchema()
  schema.node_sets["author"].features["label"].dtype = 9
  schema.node_sets["paper"].features["feat"].dtype = 1
  schema.node_sets["venue"].features[graph_io.ID].dtype = 7
  label = graph_io.Label("author", "label", 4)
  assert tuning.empty_state_node_sets(schema, label, id_embeddings=True) == ["author"]
  assert tuning.empty_state_node_sets(schema, label, id_embeddings=False) == ["author", "venue"]
  # The graph's schema (what the tuner reads) has no `#id`: the sampler adds it to node sets
  # without features, so id embeddings give those a state too.
  schema.node_sets["subject"].metadata.cardinality = 60
  assert tuning.empty_state_node_sets(schema, label, id_embeddings=True) == ["author"]
  assert tuning.empty_state_node_sets(schema, label, id_embeddings=False) == [
      "author", "subject", "venue"]
  assert tuning.attends(model_config(template="mt_albis", attention_type="multi_head"))
  assert tuning.attends(model_config(template="gat_v2"))
  assert not tuning.attends(model_config(template="graph_sage"))


@pytest.mark.slow
def test_the_budget_stops_the_running_trial_too(tmp_path):
  """`max_minutes` bounds the whole search: a trial of many epochs stops at its first
  validated epoch past the budget, is scored on what it trained, and no trial starts after."""
  from tfx_gnn.components.gnn_trainer.config import RootNodeMulticlassOptions, TrainerConfig
  from tfx_gnn.components.gnn_tuner import tuning
  from tfx_gnn.components.gnn_tuner.config import TunerConfig
  from tfx_gnn.components.graph_ingest import ingest
  from tfx_gnn.components.subgraph_sampler.config import SamplingConfig
  graph_dir = str(tmp_path / "graph")
  ingest.ingest({"synthetic": {"num_papers": 200, "num_classes": 4, "feature_dim": 8}},
                graph_dir, str(tmp_path / "scratch"))
  budget_s = 5
  result = tuning.tune(
      graph_dir, tuner=TunerConfig(trials=3, max_minutes=budget_s / 60, trial_epochs=10_000,
                                   start_points=[], rerun_top_k=0,
                                   search_space={**TUNER["search_space"], "hops": None}),
      model=model_config(units=8, num_rounds=1),
      trainer=TrainerConfig(batch_size=32, early_stopping_patience=None),
      task=RootNodeMulticlassOptions(),
      sampling=SamplingConfig(fanouts={"cites": 2, "cited_by": 2}),
      workdir=str(tmp_path / "work"))
  [trial] = result.trials
  print(f"budget {budget_s} s: search {result.wall_seconds:.1f} s, trial {trial}")
  assert trial["state"] == "COMPLETE" and trial["stopped_at_deadline"]
  assert 1 <= trial["epochs"] < 10_000
  assert result.best_trial == 0 and result.best_value == trial["value"]
