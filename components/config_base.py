"""What every component's config section shares: strict pydantic models."""
from __future__ import annotations

import os
from typing import Optional

import pydantic


class Strict(pydantic.BaseModel):
  """A config section: unknown keys are errors (a typo names the key instead of being
  silently ignored), and values are frozen once validated."""
  model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


def inside_root(path: Optional[str], what: str) -> Optional[str]:
  """A relative path must stay inside the pipeline root: `..` may not lead out of it (an
  absolute path is an explicit choice and is kept)."""
  if path is None or os.path.isabs(path) or "://" in path:
    return path
  normalized = os.path.normpath(path)
  if normalized == ".." or normalized.startswith(".." + os.sep):
    raise ValueError(f"{path!r} escapes {what}; give a path inside it (or an absolute path)")
  return path


def validate(section, value):
  """`value` as a validated `section` (a Strict class, or a union of them such as ModelConfig):
  an instance passes through; a dict or a JSON string is validated into one."""
  adapter = pydantic.TypeAdapter(section)
  if isinstance(value, (str, bytes)):
    return adapter.validate_json(value)
  return adapter.validate_python(value)


def to_json(section, value) -> str:
  """A component's config argument (see `validate`) as the JSON execution parameter its
  executor reads: the same text as the section's `model_dump_json()`."""
  return pydantic.TypeAdapter(section).dump_json(validate(section, value)).decode()
