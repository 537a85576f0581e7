"""The `tfx-gnn` command as a user meets it, run in subprocesses: quick config errors, no
tracebacks for routine failures, `check` reading the data files, `compile`'s formats and its
pipeline-root check, progress on stderr and nothing of the libraries' unless --verbose.

Most of these start no pipeline; the last group shares one run of the tiny config."""
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
import yaml

from tfx_gnn.pipelines import console

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(REPO, "tests", "configs", "tiny.yaml")
DEMO = os.path.join(REPO, "pipelines", "configs", "demo.yaml")
TFX_GNN = os.path.join(os.path.dirname(sys.executable), "tfx-gnn")


def tfx_gnn(*args, cwd=REPO, timeout=300):
  return subprocess.run([TFX_GNN, *args], cwd=cwd, capture_output=True, text=True,
                        timeout=timeout)


# The command's main() in a child that then says which heavy libraries it imported.
IMPORTS_PROGRAM = """
import sys
from tfx_gnn.pipelines import cli
code = cli.main(sys.argv[1:], configure_output=True)
heavy = [m for m in ("tensorflow", "tfx.orchestration", "apache_beam", "tensorflow_gnn", "mlflow",
                       "ml_metadata")
         if m in sys.modules]
print("exit", code, "heavy", ",".join(heavy) or "none")
"""


def main_in_child(*args, cwd=REPO):
  proc = subprocess.run([sys.executable, "-c", IMPORTS_PROGRAM, *args], cwd=cwd,
                        capture_output=True, text=True, timeout=300)
  return proc, proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


# ------------------------------------------------------------------------ config errors
def test_set_typo_is_reported_before_tensorflow_is_imported():
  start = time.monotonic()
  proc = tfx_gnn("run", DEMO, "--set", "trainer.epochz=3")
  seconds = time.monotonic() - start
  assert proc.returncode == 2, proc.stderr
  assert "trainer.epochz: unknown key" in proc.stderr and "Traceback" not in proc.stderr
  assert seconds < 15, seconds  # about 0.5 s on a quiet machine; TensorFlow alone takes 10+
  proc, last = main_in_child("run", DEMO, "--set", "trainer.epochz=3")
  assert last == "exit 2 heavy none", (last, proc.stderr)


def test_bad_set_syntax_and_missing_config_are_config_errors(tmp_path):
  proc = tfx_gnn("run", DEMO, "--set", "trainer.epochs")
  assert proc.returncode == 2 and "expected KEY=VALUE" in proc.stderr
  proc = tfx_gnn("run", str(tmp_path / "nope.yaml"))
  assert proc.returncode == 2 and "config file not found" in proc.stderr
  assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------------ routine errors
@pytest.mark.parametrize("command", ["runs", "lineage", "summary", "verify"])
def test_no_runs_yet_or_wrong_directory_is_one_message(tmp_path, command):
  # A relative pipeline.root seen from another directory: no ML Metadata there.
  proc, last = main_in_child(command, TINY, cwd=str(tmp_path))
  assert last == "exit 1 heavy none", (last, proc.stderr)
  assert "no ML Metadata database at" in proc.stderr
  assert str(tmp_path) in proc.stderr and "relative to the directory" in proc.stderr
  assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------------ check
def _tables_config(tmp_path, **edge_columns):
  data = tmp_path / "data"
  data.mkdir()
  (data / "papers.csv").write_text("id,label,year\np1,0,2001\np2,1,2002\n")
  (data / "cites.csv").write_text("src,dst\np1,p2\n")
  (data / "split.csv").write_text("id,split\np1,train\np2,test\n")
  config = tmp_path / "graph.yaml"
  config.write_text(textwrap.dedent(f"""
      pipeline: {{name: check-test, root: {tmp_path / 'runs'}}}
      data:
        tables:
          directory: data
          node_sets:
            paper: {{file: papers.csv, label_column: label, features: [year]}}
          edge_sets:
            cites: {{file: cites.csv, source: paper, target: paper,
                     source_column: {edge_columns.get('source', 'src')}, target_column: dst}}
          splits: {{file: split.csv}}
      sampling: {{hops: 1, fanouts: {{cites: 2}}}}
      """))
  return config, data


def test_check_reads_the_data_files(tmp_path):
  config, data = _tables_config(tmp_path)
  proc = tfx_gnn("check", str(config))
  assert proc.returncode == 0, proc.stderr
  assert "check-test" in proc.stdout  # the config with its defaults
  for name in ("papers.csv", "cites.csv", "split.csv"):
    assert f"ok: {data / name}" in proc.stderr


def test_check_names_a_missing_file_and_a_missing_column(tmp_path):
  config, data = _tables_config(tmp_path, source="source_id")
  (data / "split.csv").unlink()
  proc = tfx_gnn("check", str(config))
  assert proc.returncode == 1
  assert f"{data / 'split.csv'}: file not found" in proc.stderr
  assert (f"{data / 'cites.csv'}: no column 'source_id' "
          "(data.tables.edge_sets.cites.source_column); the columns are: src, dst") in proc.stderr
  assert "Traceback" not in proc.stderr


def test_check_of_the_embedded_graph_needs_no_files():
  proc = tfx_gnn("check", DEMO)
  assert proc.returncode == 0 and "no files" in proc.stderr


# ------------------------------------------------------------------------ compile
def test_compile_refuses_a_local_pipeline_root_before_building_anything(tmp_path):
  proc, last = main_in_child("compile", TINY, "-o", str(tmp_path / "p.yaml"),
                             "--set", f"pipeline.root={tmp_path}")
  assert last == "exit 1 heavy none", (last, proc.stderr)
  assert "kubeflow.pipeline_root" in proc.stderr and "is a local path" in proc.stderr
  assert "gs://" in proc.stderr and not (tmp_path / "p.yaml").exists()


def test_compile_refuses_a_kfp_file_the_client_would_not_read(tmp_path):
  proc, last = main_in_child("compile", TINY, "-o", str(tmp_path / "p.json"),
                             "--set", "kubeflow.pipeline_root=gs://bucket/root")
  assert last == "exit 1 heavy none", (last, proc.stderr)
  assert ".yaml or .yml" in proc.stderr and "--format vertex" in proc.stderr


@pytest.mark.slow
def test_compile_writes_the_file_the_kfp_client_uploads(tmp_path):
  """The default format loads with KFP's own loaders as it is; --format vertex is the
  PipelineJob."""
  from kfp import components
  from kfp.client import client
  path = tmp_path / "pipeline.yaml"
  proc = tfx_gnn("compile", TINY, "-o", str(path), "--set", "kubeflow.pipeline_root=gs://b/r")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "KFP pipeline spec" in proc.stdout
  assert components.load_component_from_file(str(path)).name == "tfx-gnn-tiny"
  # What upload_pipeline / create_run_from_pipeline_package read from the file.
  doc = client._extract_pipeline_yaml(str(path))
  assert doc.pipeline_spec.default_pipeline_root == "gs://b/r/pipeline"
  assert "GnnTrainer" in doc.pipeline_spec.root.dag.tasks
  # ... with its Kubernetes platform spec: each step's pod gets the run's id (KFP_RUN_ID).
  executors = doc.platform_spec.platforms["kubernetes"].deployment_spec.executors
  containers = {label for label, e in doc.pipeline_spec.deployment_spec["executors"].items()
                if "container" in e}
  assert set(executors) == containers and len(containers) == 9
  assert all(e["fieldPathAsEnv"][0]["name"] == "KFP_RUN_ID" for e in executors.values())
  # The second format through the same main() in this process: the command's process, its
  # exit status and its output are checked above; another child would only import TFX again.
  from tfx_gnn.pipelines import cli
  vertex = tmp_path / "job.json"
  assert cli.main(["compile", TINY, "--format", "vertex", "-o", str(vertex),
                   "--set", "kubeflow.pipeline_root=gs://b/r"]) == 0
  job = json.loads(vertex.read_text())
  assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://b/r/pipeline"
  assert set(job["pipelineSpec"]["root"]["dag"]["tasks"]) == set(doc.pipeline_spec.root.dag.tasks)


# ------------------------------------------------------------------------ the stderr filter
@pytest.mark.parametrize("line", [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796314284.713973   11226 port.cc:153] oneDNN custom operations are on.",
    "I0000 00:00:1796314284.714709   11226 cudart_stub.cc:31] Could not find cuda drivers",
    "E0000 00:00:1796314298.231310   11226 cuda_platform.cc:52] failed call to cuInit: INTERNAL",
])
def test_noise_lines(line):
  assert console.is_noise(line + "\n")


@pytest.mark.parametrize("line", [
    "tfx-gnn: [5/9] GnnTrainer ...",
    "E0000 00:00:1796314298.231310   11226 some_op.cc:52] a real error",
    "F0000 00:00:1796314298.231310   11226 check.cc:1] Check failed: x",
    "Traceback (most recent call last):",
])
def test_lines_that_pass(line):
  assert not console.is_noise(line)


FILTER_PROGRAM = """
import os, sys
from tfx_gnn.pipelines import cli, console
cli._restore_stderr = console.setup()
os.write(2, b"I0000 00:00:1796314284.713973   11226 port.cc:153] oneDNN custom operations\\n")
print("one of ours", file=sys.stderr)
os.system("echo from a child >&2")
if sys.argv[1] == "abort":
  sys.stderr.flush()
  os.abort()  # a crash: the filter, another process, still forwards what came before
cli.exit_without_teardown(0)
"""


@pytest.mark.parametrize("ending", ["exit", "abort"])
def test_the_filter_drops_noise_and_keeps_everything_else(ending):
  proc = subprocess.run([sys.executable, "-c", FILTER_PROGRAM, ending], capture_output=True,
                        text=True, timeout=60)
  assert proc.stderr.splitlines() == ["one of ours", "from a child"], proc.stderr


# ------------------------------------------------------------------------ a run
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  """One run of the tiny config through the command, then the same again, cached, with
  --quiet and with --verbose. Without attribution (its integrated-gradients export and its
  step: tests/test_attribution.py's); every other step of the DAG runs in the first run. The
  cached runs leave out bulk inference and the run report too (steps after the Pusher, which
  the first run's output shows): ingest to trainer stay cached, the evaluator and the Pusher
  run again."""
  root = tmp_path_factory.mktemp("cli") / "run"
  runs = {}
  for flag in ("", "--quiet", "--verbose"):
    after_pusher_off = ["--set", "bulk_inference.enabled=false",
                        "--set", "report.enabled=false"] if flag else []
    # One round of message passing: a cheaper model to trace, export and load (an in-process
    # tiny run 8.0 against 11.4 CPU s; eval 0.57-0.63 against the gate's 0.355, two rounds
    # 0.73).
    args = ["run", TINY, "--set", f"pipeline.root={root}", "--set", "model.num_rounds=1",
            "--set", "attribution.enabled=false"] + after_pusher_off + ([flag] if flag else [])
    runs[flag] = tfx_gnn(*args, timeout=900)
    assert runs[flag].returncode == 0, runs[flag].stderr[-3000:]
  return root, runs


@pytest.mark.slow
def test_a_run_shows_progress_and_only_its_own_lines(tiny_run):
  _, runs = tiny_run
  lines = runs[""].stderr.splitlines()
  assert lines, "no progress"
  assert all(line.startswith("tfx-gnn: ") for line in lines), "\n".join(
      line for line in lines if not line.startswith("tfx-gnn: "))
  text = runs[""].stderr
  # One start and one end line per node of the DAG (components and resolvers), numbered.
  nodes = len([line for line in lines if line.endswith(" ...") and "] " in line])
  assert nodes >= 9
  assert f"tfx-gnn: [1/{nodes}] GraphIngest ..." in text
  assert f"[{nodes}/{nodes}] RunReport done in" in text
  assert "SubgraphSampler: sampling 180 train, 60 eval, 60 test subgraphs" in text
  epochs = [line for line in lines if "GnnTrainer: epoch " in line]
  with open(TINY) as f:
    total = yaml.safe_load(f)["trainer"]["epochs"]
  assert [line.split("epoch ")[1].split(":")[0] for line in epochs] == [
      f"{i}/{total}" for i in range(1, total + 1)]
  assert "val_loss" in epochs[0] and "left)" in epochs[0]
  assert "blessed: True" in runs[""].stdout


@pytest.mark.slow
def test_quiet_silences_progress_and_verbose_shows_the_libraries(tiny_run):
  _, runs = tiny_run
  assert runs["--quiet"].stderr == ""
  assert "cached" not in runs["--quiet"].stderr and "blessed" in runs["--quiet"].stdout
  verbose = runs["--verbose"].stderr
  assert "cached" in verbose  # our lines too
  assert "WARNING:absl:" in verbose or "I0000" in verbose or "WARNING:tensorflow" in verbose


@pytest.mark.slow
def test_unknown_run_lists_the_runs(tiny_run):
  root, _ = tiny_run
  proc = tfx_gnn("lineage", TINY, "--set", f"pipeline.root={root}", "--run", "no-such-run")
  assert proc.returncode == 1
  assert "no run 'no-such-run' of pipeline 'tfx-gnn-tiny'" in proc.stderr
  assert "the latest runs are:" in proc.stderr and "Traceback" not in proc.stderr
