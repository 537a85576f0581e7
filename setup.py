"""Maps the repository's top-level components/ and pipelines/ folders to tfx_gnn.components and
tfx_gnn.pipelines, so that the wheel installs exactly one top-level package, `tfx_gnn`.

Everything else about the build is in pyproject.toml; this file only finds the packages, so
that a new component folder needs no entry here.
"""
import setuptools

MAPPED = {"tfx_gnn.components": "components", "tfx_gnn.pipelines": "pipelines"}


def _packages() -> list[str]:
  packages = ["tfx_gnn"]
  for name, folder in MAPPED.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in setuptools.find_packages(folder)]
  return packages


setuptools.setup(packages=_packages(), package_dir={"tfx_gnn": "tfx_gnn", **MAPPED})
