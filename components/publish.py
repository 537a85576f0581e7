"""Atomic publishing: everything is written under a temporary name and renamed into place, so a
reader (the next component, a model server polling the serving directory) sees a directory
whole or not at all, and a crash leaves only a `.*.incomplete` directory that nothing reads.

- `atomic_outputs`: a class decorator for TFX executors. Each local output artifact directory is
  swapped for a staging directory while `Do` runs and renamed into place only when it returns.
  (TFX itself marks an output artifact LIVE in ML Metadata only after `Do` succeeds — see
  `tfx/orchestration/portable/launcher.py` — so this protects readers that go by the path.)
- `publish_new_version`: a new numbered version under a base directory (the Pusher).

Renames are atomic on a local file system; on object stores (gs://) the staging is skipped and
atomicity rests on TFX publishing the artifact only after success.
"""
from __future__ import annotations

import errno
import functools
import hashlib
import os
import shutil
import time
import uuid
from typing import Callable, Optional

STAGING_SUFFIX = ".incomplete"


def is_local(path: str) -> bool:
  return "://" not in path


def staging_path(final: str, unique: bool = False) -> str:
  """A hidden sibling of `final`: `<parent>/.<name>[.<unique>].incomplete`."""
  parent, name = os.path.split(final.rstrip("/"))
  tag = f".{os.getpid()}-{uuid.uuid4().hex[:8]}" if unique else ""
  return os.path.join(parent, f".{name}{tag}{STAGING_SUFFIX}")


def final_path(path: str) -> str:
  """The published path of a staging path made by `staging_path(final)` (others unchanged)."""
  parent, name = os.path.split(path.rstrip("/"))
  if name.startswith(".") and name.endswith(STAGING_SUFFIX):
    return os.path.join(parent, name[1:-len(STAGING_SUFFIX)])
  return path


def _remove(path: str) -> None:
  shutil.rmtree(path, ignore_errors=True)


def replace_empty_dir(staging: str, final: str) -> None:
  """Renames `staging` to `final`, which may exist only as an empty directory (as TFX creates
  output directories before `Do`); a non-empty `final` is never overwritten."""
  try:
    os.rmdir(final)
  except FileNotFoundError:
    pass
  os.rename(staging, final)


def atomic_outputs(executor_cls):
  """Wraps `executor_cls.Do` so that its local output directories are written under staging
  names and published by rename when `Do` returns (removed when it raises)."""
  do = executor_cls.Do

  @functools.wraps(do)
  def Do(self, input_dict, output_dict, exec_properties):
    staged = []
    for artifacts in output_dict.values():
      for artifact in artifacts:
        final = artifact.uri
        if not final or not is_local(final) or not os.path.isdir(final):
          continue  # value artifacts (a file) and remote URIs are published by TFX alone
        staging = staging_path(final)
        _remove(staging)  # left by a killed attempt at this same execution
        os.makedirs(staging)
        artifact.uri = staging
        staged.append((artifact, final))
    try:
      result = do(self, input_dict, output_dict, exec_properties)
    except BaseException:
      for artifact, final in staged:
        _remove(artifact.uri)
        artifact.uri = final
      raise
    for artifact, final in staged:
      staging, artifact.uri = artifact.uri, final
      replace_empty_dir(staging, final)
    return result

  executor_cls.Do = Do
  return executor_cls


def publish_new_version(write: Callable[[str], None], base_directory: str,
                        first_version: Optional[int] = None) -> tuple[str, str]:
  """Writes a new version with `write(staging_dir)` and renames it to
  `<base_directory>/<version>`, the version being the Unix time (as TF Serving expects) or the
  next free number after it when taken, also by a concurrent publisher. Returns (path, version).
  """
  if not is_local(base_directory):
    return _publish_remote(write, base_directory, first_version)
  os.makedirs(base_directory, exist_ok=True)
  staging = staging_path(os.path.join(base_directory, "version"), unique=True)
  try:
    write(staging)
    version = first_version or int(time.time())
    while True:
      final = os.path.join(base_directory, str(version))
      if not os.path.exists(final):
        try:
          os.rename(staging, final)  # fails if another publisher just took this version
          return final, str(version)
        except OSError as e:
          if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
      version += 1
  finally:
    _remove(staging)


def _publish_remote(write, base_directory: str, first_version: Optional[int]):
  from tfx.dsl.io import fileio
  fileio.makedirs(base_directory)
  version = first_version or int(time.time())
  while fileio.exists(os.path.join(base_directory, str(version))):
    version += 1
  final = os.path.join(base_directory, str(version))
  staging = staging_path(final, unique=True)
  write(staging)
  fileio.rename(staging, final)
  return final, str(version)


def tree_digest(directory: str) -> str:
  """A SHA-256 over a directory's relative file paths and bytes (local or remote), so that two
  copies of one SavedModel compare equal whatever their timestamps."""
  from tfx.dsl.io import fileio
  digest = hashlib.sha256()
  files = []
  for root, _, names in fileio.walk(directory):
    files += [os.path.join(root, name) for name in names]
  for path in sorted(files):
    digest.update(os.path.relpath(path, directory).encode() + b"\0")
    with fileio.open(path, "rb") as f:
      for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
    digest.update(b"\0")
  return digest.hexdigest()


def latest_version(base_directory: str) -> Optional[str]:
  """The highest numbered version directory under `base_directory` (None when there is none);
  staging directories are hidden and never counted."""
  from tfx.dsl.io import fileio
  if not fileio.exists(base_directory):
    return None
  versions = [name.rstrip("/") for name in fileio.listdir(base_directory)]
  versions = [int(v) for v in versions if v.isdigit()]
  return str(max(versions)) if versions else None
