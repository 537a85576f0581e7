"""The docs: the site builds with `mkdocs build --strict` (a broken link or anchor, or a page
left out of the nav, fails), the configuration reference is what the config models generate,
and the README stays an overview."""
import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tfx_gnn.pipelines import config_reference

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MKDOCS = os.path.join(os.path.dirname(sys.executable), "mkdocs")


def test_configuration_reference_is_generated_from_the_config_models():
  with open(os.path.join(REPO, "docs", "configuration.md"), encoding="utf-8") as f:
    committed = f.read()
  assert committed == config_reference.render(), (
      "docs/configuration.md is out of date with the config models: run `make config-reference`")


def test_descriptions_come_from_field_descriptions_or_the_comments_around_a_field(
    tmp_path, monkeypatch):
  (tmp_path / "example_config.py").write_text(textwrap.dedent('''
      import pydantic

      class Section(pydantic.BaseModel):
        """A section."""
        # -- a heading over several fields: not a description
        # Above the field,
        # on two lines.
        first: int = 1
        second: str = "x"  # beside it
        third: float = pydantic.Field(0.5, gt=0, description="its Field description")
        fourth: bool = False

        # Not above `fifth` (a blank line between).

        fifth: list[str] = []
      '''))
  spec = importlib.util.spec_from_file_location("example_config", tmp_path / "example_config.py")
  module = importlib.util.module_from_spec(spec)
  monkeypatch.setitem(sys.modules, "example_config", module)  # inspect finds sources there
  spec.loader.exec_module(module)
  section = module.Section
  found = {name: config_reference.description(section, name, field)
           for name, field in section.model_fields.items()}
  assert found == {"first": "Above the field, on two lines.", "second": "beside it",
                   "third": "its Field description", "fourth": "", "fifth": ""}
  rows = "\n".join(config_reference.section("example", section, 2, set()))
  assert "| `third` | number (&gt; 0) | `0.5` | its Field description |" in rows
  assert "| `fifth` | list of string | `[]` |  |" in rows


def test_the_readme_is_an_overview():
  with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
    readme = f.read()
  assert len(readme) < 12_000, "the guides belong in docs/, the figures in benchmarks/README.md"
  for command in ("make demo", "make test", "make test-fast", "make lint"):
    assert command in readme


def _build(root, site):
  # Not --quiet: it hides the warnings that --strict counts (mkdocs would then pass anything).
  return subprocess.run([MKDOCS, "build", "--strict", "-d", str(site)], cwd=root,
                        capture_output=True, text=True, timeout=300,
                        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


@pytest.mark.slow
def test_the_site_builds_strict_and_a_broken_link_fails_it(tmp_path):
  proc = _build(REPO, tmp_path / "site")
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert (tmp_path / "site" / "configuration" / "index.html").exists()
  benchmarks = (tmp_path / "site" / "benchmarks" / "index.html").read_text()
  assert "OGBN-MAG scale on one machine" in benchmarks  # benchmarks/README.md, included
  # The same site with one broken link: strict refuses it.
  copy = tmp_path / "copy"
  shutil.copytree(os.path.join(REPO, "docs"), copy / "docs")
  for name in ("mkdocs.yml", "CHANGELOG.md"):
    shutil.copy(os.path.join(REPO, name), copy / name)
  (copy / "benchmarks").mkdir()
  shutil.copy(os.path.join(REPO, "benchmarks", "README.md"), copy / "benchmarks" / "README.md")
  with open(copy / "docs" / "tuning.md", "a", encoding="utf-8") as f:
    f.write("\nSee [the tuner](no-such-page.md).\n")
  proc = _build(copy, tmp_path / "broken")
  assert proc.returncode != 0 and "no-such-page.md" in proc.stdout + proc.stderr
