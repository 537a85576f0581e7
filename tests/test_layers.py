"""The codebase's layers: components never point up at pipelines/, never into another
component's executor or private names, and the wheel installs one top-level package."""
import ast
import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
COMPONENTS = ROOT / "components"
PREFIX = "tfx_gnn.components."


def _imports(path: pathlib.Path):
  """(module, imported name or None, line) for every import in a file, at any depth."""
  tree = ast.parse(path.read_text(), str(path))
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield alias.name, None, node.lineno
    elif isinstance(node, ast.ImportFrom) and node.module:
      for alias in node.names:
        yield node.module, alias.name, node.lineno


def _component_of(path: pathlib.Path):
  """The component package a file belongs to (None for code shared at components/ level)."""
  parts = path.relative_to(COMPONENTS).parts
  return parts[0] if len(parts) > 1 else None


def _sources():
  return sorted(p for p in COMPONENTS.rglob("*.py") if "__pycache__" not in p.parts)


def test_components_never_import_pipelines():
  offenders = [f"{p.relative_to(ROOT)}:{line}: {module}"
               for p in _sources() for module, name, line in _imports(p)
               if module.startswith(("tfx_gnn.pipelines", "pipelines"))
               or (module == "tfx_gnn" and name == "pipelines")]
  assert not offenders, "components/ must not import pipelines/:\n" + "\n".join(offenders)


def test_components_never_import_another_components_executor_or_private_names():
  offenders = []
  for path in _sources():
    own = _component_of(path)
    for module, name, line in _imports(path):
      if not module.startswith(PREFIX):
        continue
      target = [*module[len(PREFIX):].split("."), *([name] if name else [])]
      other = target[0] if len(target) > 1 and (COMPONENTS / target[0]).is_dir() else None
      if other is None or other == own:
        continue
      where = f"{path.relative_to(ROOT)}:{line}: {module}" + (f".{name}" if name else "")
      if "executor" in target or "kubeflow_executor" in target:
        offenders.append(where + " (another component's executor)")
      if any(part.startswith("_") for part in target):
        offenders.append(where + " (a private name)")
  assert not offenders, "\n".join(offenders)


def test_no_private_names_of_other_modules_are_used():
  """`module._name` across modules (the fast sampler's encoder was once used that way)."""
  offenders = []
  for path in _sources():
    tree = ast.parse(path.read_text())
    aliases = {a.asname or a.name.rsplit(".", 1)[-1]
               for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
               and n.module and n.module.startswith("tfx_gnn") for a in n.names}
    for node in ast.walk(tree):
      if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
          and node.value.id in aliases and node.attr.startswith("_")
          and not node.attr.startswith("__")):
        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.id}.{node.attr}")
  assert not offenders, "\n".join(offenders)


def test_every_component_has_its_config_beside_it():
  for folder in sorted(p for p in COMPONENTS.iterdir() if (p / "component.py").exists()):
    assert (folder / "config.py").exists(), f"{folder.name}: its config section belongs beside it"


@pytest.mark.slow
def test_the_wheel_has_one_top_level_package(tmp_path):
  # No build isolation: the venv has setuptools and wheel, so this needs no network.
  out = tmp_path / "dist"
  script = ("import setuptools.build_meta as b, sys; "
            "print(b.build_wheel(sys.argv[1]))")
  build_dir = tmp_path / "src"
  # Build from a copy of the tracked sources, so build/ and egg-info never land in the repo.
  files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
  for name in files:
    source = ROOT / name
    if source.is_file():
      target = build_dir / name
      target.parent.mkdir(parents=True, exist_ok=True)
      target.write_bytes(source.read_bytes())
  result = subprocess.run([sys.executable, "-c", script, str(out)], cwd=build_dir,
                          capture_output=True, text=True, env={**os.environ})
  assert result.returncode == 0, result.stderr[-3000:]
  wheel = out / result.stdout.strip().splitlines()[-1]
  with zipfile.ZipFile(wheel) as zf:
    names = zf.namelist()
  top = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
  assert top == {"tfx_gnn"}, sorted(top)
  for expected in ("tfx_gnn/components/graph_ingest/component.py",
                   "tfx_gnn/components/graph_ingest/config.py",
                   "tfx_gnn/pipelines/cli.py", "tfx_gnn/pipelines/configs/demo.yaml"):
    assert expected in names, expected
  entry_points = next(n for n in names if n.endswith("entry_points.txt"))
  with zipfile.ZipFile(wheel) as zf:
    assert "tfx_gnn.pipelines.cli:entry_point" in zf.read(entry_points).decode()
