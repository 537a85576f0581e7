"""Crash and resume, with real processes: `tfx-gnn run` is SIGKILLed in the middle of the
sampler (seen RUNNING in ML Metadata), `tfx-gnn verify` reports it and `tfx-gnn gc` marks it
FAILED and removes its partial output; rerun and SIGKILLed in the middle of training (its first
epoch backup on disk), then rerun to the end (collecting the killed trainer first). The last run
reuses what finished (CACHED), training resumes from its backup, nothing incomplete is LIVE or
left on disk and exactly one model is pushed.

The runs track to a real MLflow server (`tfx-gnn mlflow-ui`, loopback) through a URI with a
password and a token in the environment: neither may appear in logs, ML Metadata or MLflow.
"""
import contextlib
import glob
import io
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

import reliability_support as support
from tfx_gnn.components import housekeeping, lineage
from tfx_gnn.pipelines import cli

pytestmark = pytest.mark.slow  # runs pipelines, trains models or starts servers

PASSWORD = "pa55-w0rd-xyz"
TOKEN = "tok-0123456789abcdef"
EPOCHS = 12
NAME = "crash"


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
  """`tfx-gnn mlflow-ui CONFIG` with its defaults (loopback), on the crash test's root."""
  root = tmp_path_factory.mktemp("crash")
  config = support.write_config(str(root / "server.yaml"),
                                pipeline={"name": NAME, "root": str(root)})
  port = _free_port()
  log = open(root / "mlflow-server.log", "w")
  proc = subprocess.Popen(
      [sys.executable, "-m", "tfx_gnn.pipelines.cli", "mlflow-ui", config, "--port", str(port)],
      cwd=support.REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
  try:
    deadline = time.time() + 180
    while True:
      try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
        break
      except OSError:
        assert proc.poll() is None and time.time() < deadline, (
            "the MLflow server did not start:\n" + (root / "mlflow-server.log").read_text())
        time.sleep(0.5)
    yield root, port, proc
  finally:
    # SIGTERM: the CLI stops the server and its workers (in a session of their own).
    proc.terminate()
    try:
      proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
      proc.kill()
      proc.wait()
    log.close()


def _cli(*args: str) -> tuple[int, str]:
  """`tfx-gnn ARGS` in this process (the inspection commands need no pipeline imports)."""
  out = io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
    code = cli.main(list(args))
  return code, out.getvalue()


def _incomplete(pipeline_dir) -> list[str]:
  return glob.glob(str(pipeline_dir / "*" / "*" / ".*.incomplete"))


@pytest.fixture(scope="module")
def crash_runs(mlflow_server):
  root, port, _ = mlflow_server
  config = support.write_config(
      str(root / "config.yaml"), pipeline={"name": NAME, "root": str(root)},
      trainer={"epochs": EPOCHS, "batch_size": 8},
      mlflow={"tracking_uri": f"http://alice:{PASSWORD}@127.0.0.1:{port}"},
      # Nothing here reads attributions, bulk predictions or the run report (their own tests
      # do): off, they save the integrated-gradients export and three steps in the run to the
      # end.
      attribution={"enabled": False}, bulk_inference={"enabled": False},
      report={"enabled": False},
      # One round of message passing: a cheaper model to trace in the second and third runs
      # (an in-process tiny run 8.5 against 11.4 CPU s); at 12 epochs of batch 8 it came to
      # eval 0.63-0.67 against the gate's 0.355 (two rounds: 0.73).
      model={"num_rounds": 1})
  metadata = str(root / "metadata.sqlite")
  pipeline_dir = root / "pipeline"
  env = {"MLFLOW_TRACKING_TOKEN": TOKEN}
  runs = []

  first = support.Run(config, str(root / "run1.log"), env=env)
  runs.append(first)
  collectable_while_live = []

  def sampler_writing() -> bool:
    # Its output's staging directory exists from the start of the executor's Do: the fast
    # engine on this tiny graph writes its shard files within a fraction of a second, too
    # briefly to catch them reliably.
    if not (glob.glob(str(pipeline_dir / "SubgraphSampler/examples/.*.incomplete"))
            and support.execution_state(metadata, NAME, "SubgraphSampler") == "RUNNING"):
      return False
    # The run is alive: housekeeping must leave its RUNNING executions alone.
    collectable_while_live.extend(housekeeping.collect(
        lineage.open_store(metadata), metadata, NAME, str(pipeline_dir), dry_run=True))
    return True

  first.kill_when(sampler_writing, "the sampler writing its examples")
  incomplete_after_kill = _incomplete(pipeline_dir)
  gc = {"verify before": _cli("verify", config), "gc": _cli("gc", config),
        "verify after": _cli("verify", config), "incomplete after kill": incomplete_after_kill,
        "incomplete after gc": _incomplete(pipeline_dir),
        "collectable while live": collectable_while_live}

  second = support.Run(config, str(root / "run2.log"), env=env)
  runs.append(second)
  second.kill_when(
      lambda: support.files_under(str(pipeline_dir / "GnnTrainer/.backup/**/checkpoint")),
      "the trainer's first epoch backup")

  third = support.Run(config, str(root / "run3.log"), env=env)
  runs.append(third)
  rc = third.wait()
  assert rc == 0, third.output()[-5000:]
  store = lineage.open_store(metadata)
  states = support.run_states(store, NAME)
  print("\nML Metadata executions of the three runs:")
  for i, run in enumerate(states, 1):
    print(f"  run {i}: " + ", ".join(f"{c}={s}" for c, s in run.items()))
  return root, port, store, states, runs, gc


def test_first_run_was_killed_in_the_sampler_and_collected(crash_runs):
  states = crash_runs[3]
  assert len(states) == 3
  assert states[0] == {"GraphIngest": "COMPLETE", "GraphValidator": "COMPLETE",
                       "SubgraphSampler": "FAILED"}  # marked by `tfx-gnn gc`


def test_gc_cleans_up_after_the_killed_run_and_verify_is_clean(crash_runs):
  gc = crash_runs[5]
  assert gc["collectable while live"] == []  # a live run's executions are left alone
  code, out = gc["verify before"]
  assert code == 1 and "(SubgraphSampler)" in out and "its process is gone" in out, out
  assert len(gc["incomplete after kill"]) == 1, gc["incomplete after kill"]  # .<id>.incomplete
  assert os.path.basename(gc["incomplete after kill"][0]) in out  # verify names it
  code, out = gc["gc"]
  assert code == 0 and "1 execution(s) of killed runs marked FAILED" in out, out
  assert "(SubgraphSampler)" in out and gc["incomplete after kill"][0] in out
  assert gc["incomplete after gc"] == []
  code, out = gc["verify after"]
  assert code == 0 and "0 problem(s)" in out, out


def test_second_run_reused_ingest_and_was_killed_in_training(crash_runs):
  second = crash_runs[3][1]
  assert second["GraphIngest"] == second["GraphValidator"] == "CACHED"
  assert second["SubgraphSampler"] == "COMPLETE"  # the killed sampling was not reused
  assert second["GnnTrainer"] == "FAILED"  # killed, then collected by the third run
  assert "Pusher" not in second


def test_the_next_run_collects_the_killed_trainer_at_its_start(crash_runs):
  runs = crash_runs[4]
  # `tfx-gnn gc` had already collected the first run: nothing left for the second.
  assert "by a process that is gone" not in runs[1].output()
  lines = [line for line in runs[2].output().splitlines() if "by a process that is gone" in line]
  assert len(lines) == 1 and "(GnnTrainer)" in lines[0] and "marked FAILED" in lines[0], lines


def test_rerun_completes_reusing_finished_components(crash_runs):
  third = crash_runs[3][2]
  for component in ("GraphIngest", "GraphValidator", "SubgraphSampler"):
    assert third[component] == "CACHED", third
  for component in ("GnnTrainer", "GnnEvaluator", "Pusher"):
    assert third[component] == "COMPLETE", third


def test_no_live_artifact_is_incomplete(crash_runs):
  root, _, store, _, _, _ = crash_runs
  assert lineage.check_live_artifacts(store) == []
  # The killed executions are FAILED (none left RUNNING) and their outputs are not LIVE: no
  # reader can pick them up; no partial output is left on disk.
  records = [r for run_id in lineage.run_ids(store, NAME)
             for r in lineage.executions(store, run_id)]
  assert not [r for r in records if r.state == "RUNNING"]
  killed = [r for r in records if r.state == "FAILED"]
  assert len(killed) == 2
  assert _incomplete(root / "pipeline") == []
  live_uris = {a.uri for a in store.get_artifacts() if a.state == a.LIVE}
  for record in killed:
    assert not {ref.uri for ref in record.outputs} & live_uris
  # `tfx-gnn verify` says the same.
  code, out = _cli("verify", str(root / "config.yaml"))
  assert code == 0 and "0 problem(s)" in out, out


def test_exactly_one_model_is_pushed(crash_runs):
  from mlflow.tracking import MlflowClient
  root, port = crash_runs[:2]
  versions = support.serving_versions(str(root / "serving"))
  assert len(versions) == 1, versions
  assert os.path.exists(root / "serving" / versions[0] / "saved_model.pb")
  assert not [n for n in os.listdir(root / "serving") if n.startswith(".")]
  client = MlflowClient(f"http://127.0.0.1:{port}")
  assert len(client.search_model_versions(f"name='{NAME}'")) == 1


def test_training_resumed_from_its_last_checkpoint(crash_runs):
  from mlflow.tracking import MlflowClient
  root, port, _, _, runs, _ = crash_runs
  client = MlflowClient(f"http://127.0.0.1:{port}")
  experiment = client.get_experiment_by_name(NAME)
  trainer_runs = sorted(
      client.search_runs([experiment.experiment_id], "tags.`tfx.component` = 'GnnTrainer'"),
      key=lambda r: r.info.start_time)
  assert [r.info.status for r in trainer_runs] == ["RUNNING", "FINISHED"]  # killed, resumed

  def epochs(run):
    return sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss"))

  killed, resumed = epochs(trainer_runs[0]), epochs(trainer_runs[1])
  assert killed and killed[0] == 0
  # The resumed run starts where the killed one's last backup left it, not at epoch 0, and
  # ends at the last epoch.
  assert 1 <= resumed[0] <= killed[-1] + 1, (killed, resumed)
  assert resumed == list(range(resumed[0], EPOCHS))
  assert "resuming from the backup" in runs[2].output()
  assert trainer_runs[1].data.tags["resumed_at_epoch"] == str(resumed[0])
  # Exported: the backup is gone.
  assert not support.files_under(str(root / "pipeline/GnnTrainer/.backup/**/*"))


def test_secrets_are_never_shown(crash_runs):
  from mlflow.tracking import MlflowClient
  root, port, _, _, runs, _ = crash_runs
  for run in runs:
    text = run.output()
    assert PASSWORD not in text and TOKEN not in text, run.log
  # The CLI's summary names the server, without its credentials.
  assert f"at http://127.0.0.1:{port} " in runs[2].output()
  with open(root / "metadata.sqlite", "rb") as f:
    database = f.read()
  assert PASSWORD.encode() not in database and TOKEN.encode() not in database
  client = MlflowClient(f"http://127.0.0.1:{port}")
  experiment = client.get_experiment_by_name(NAME)
  for run in client.search_runs([experiment.experiment_id]):
    values = " ".join(list(run.data.params.values()) + list(run.data.tags.values()))
    assert PASSWORD not in values and TOKEN not in values


def test_mlflow_server_listens_on_loopback_only(mlflow_server):
  _, port, _ = mlflow_server
  listening = set()
  for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    if not os.path.exists(table):
      continue
    with open(table) as f:
      for line in f.readlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port_hex = local.rsplit(":", 1)
        if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
          listening.add(address)
  assert listening == {"0100007F"}, listening  # 127.0.0.1 only
