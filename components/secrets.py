"""Credentials never reach logs, ML Metadata, MLflow params or the CLI's output.

A tracking URI may carry credentials (`http://user:password@host`, `?token=...`). The pipeline
stores and shows only the URI without them (`strip_credentials`); the local runner hands them
to MLflow through its own environment variables (`MLFLOW_TRACKING_USERNAME`/`_PASSWORD`; for a
`postgresql://` database, ML Metadata's or MLflow's, libpq's `PGPASSWORD`), and every log line
and message goes through `redact`, which also masks the values of the secret environment
variables below.
"""
from __future__ import annotations

import logging
import os
import re
import urllib.parse

MASK = "***"
# Environment variables whose values are secrets wherever they appear.
SECRET_ENV_VARS = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD", "AWS_SECRET_ACCESS_KEY",
                   "AWS_SESSION_TOKEN", "DATABRICKS_TOKEN", "AZURE_STORAGE_ACCESS_KEY",
                   "GOOGLE_API_KEY", "PGPASSWORD")
_SECRET_QUERY_KEYS = ("token", "access_token", "password", "secret", "key", "api_key", "sig")
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/\s:@]*):[^/\s@]*@")
_QUERY = re.compile(r"(?P<key>[?&](?:%s)=)[^&\s#]*" % "|".join(_SECRET_QUERY_KEYS), re.I)


def redact(text: str) -> str:
  """`text` with URI passwords, secret query values and secret env values masked."""
  text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
  text = _QUERY.sub(lambda m: m["key"] + MASK, text)
  for name in SECRET_ENV_VARS:
    value = os.environ.get(name)
    if value and len(value) >= 4:
      text = text.replace(value, MASK)
  return text


class CredentialsError(ValueError):
  """Credentials that cannot be handed on as given."""


def _is_database(parts: urllib.parse.SplitResult) -> bool:
  return parts.scheme.split("+", 1)[0] == "postgresql"


def strip_credentials(uri: str) -> tuple[str, str | None, str | None]:
  """(the URI without user info or secret query values, user, password). A database URL
  (`postgresql://`) keeps its user name, which names the login rather than proving it."""
  if "://" not in uri:
    return uri, None, None
  parts = urllib.parse.urlsplit(uri)
  user, password = parts.username, parts.password
  netloc = parts.hostname or ""
  if _is_database(parts) and user:
    netloc = f"{urllib.parse.quote(urllib.parse.unquote(user), safe='')}@{netloc}"
  if parts.port:
    netloc += f":{parts.port}"
  query = urllib.parse.urlencode(
      [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
       if k.lower() not in _SECRET_QUERY_KEYS])
  if user is None and query == parts.query:
    return uri, None, None
  return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)), \
      user, password


def export_credentials(uri: str) -> None:
  """Hands a tracking URI's user and password to MLflow's client through its environment
  variables, which it sends as HTTP basic auth; the pipeline then only sees the bare URI.
  A `postgresql://` URL's password goes to `PGPASSWORD`, where libpq (ML Metadata's and
  MLflow's PostgreSQL client) reads it."""
  _, user, password = strip_credentials(uri)
  if "://" in uri and _is_database(urllib.parse.urlsplit(uri)):
    if password:
      password = urllib.parse.unquote(password)
      if os.environ.get("PGPASSWORD") not in (None, password):
        raise CredentialsError(
            f"{redact(uri)} carries a password, and PGPASSWORD holds another: libpq takes one; "
            "give the password in PGPASSWORD (or ~/.pgpass) only")
      os.environ["PGPASSWORD"] = password
    return
  if user:
    os.environ["MLFLOW_TRACKING_USERNAME"] = urllib.parse.unquote(user)
  if password:
    os.environ["MLFLOW_TRACKING_PASSWORD"] = urllib.parse.unquote(password)


def install_log_redaction() -> None:
  """Masks secrets in every Python log record this process creates, whatever its handler
  (absl's, the root's, a library's own): a log record factory runs `redact` on the message."""
  previous = logging.getLogRecordFactory()
  if getattr(previous, "redacts", False):
    return

  def factory(*args, **kwargs):
    record = previous(*args, **kwargs)
    try:
      message = record.getMessage()
    except Exception:
      return record  # a malformed record: let logging report it as usual
    clean = redact(message)
    if clean != message:
      record.msg, record.args = clean, None
    return record

  factory.redacts = True
  logging.setLogRecordFactory(factory)
