"""Where ML Metadata and MLflow keep their records: the embedded SQLite default, or PostgreSQL.

`pipeline.metadata` and `mlflow.tracking_uri` take `postgresql://USER@HOST[:PORT]/DBNAME`. The
password is never in the config, ML Metadata, MLflow or a log line: libpq (linked into ML
Metadata) and psycopg (MLflow's driver) both read it from `PGPASSWORD`, or from a `~/.pgpass`
file (`PGPASSFILE`). A password written into the URL is moved to `PGPASSWORD` when the run
starts (`secrets.export_credentials`) and masked wherever it would be shown.

ML Metadata creates its database when it is missing; MLflow's must exist (`createdb DBNAME`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import getpass
import hashlib
import os
import urllib.parse
from typing import Iterator, Optional

from tfx_gnn.components import secrets

DEFAULT_PORT = 5432
CONNECT_TIMEOUT_S = 10


class DatabaseError(RuntimeError):
  """A PostgreSQL database that cannot be used; the message names the URL (without its
  password), the config key and the server's reason."""


def is_postgres(url: Optional[str]) -> bool:
  """`postgresql://...` (also with SQLAlchemy's driver suffix, `postgresql+psycopg://`)."""
  return bool(url) and url.split("://", 1)[0].split("+", 1)[0] == "postgresql" and "://" in url


@dataclasses.dataclass(frozen=True)
class Postgres:
  host: str
  port: int
  user: str
  dbname: str


def parse(url: str, key: str = "") -> Postgres:
  """The server, user and database of a `postgresql://` URL; `key` names the config key in
  errors (config validation names it itself). The user defaults to libpq's: `PGUSER`, else
  the login name."""
  prefix = f"{key}: " if key else ""
  parts = urllib.parse.urlsplit(url)
  dbname = urllib.parse.unquote(parts.path.lstrip("/"))
  try:
    port = parts.port or DEFAULT_PORT
  except ValueError:
    raise ValueError(f"{prefix}{secrets.redact(url)} has an invalid port") from None
  if not parts.hostname or not dbname or "/" in dbname:
    raise ValueError(f"{prefix}{secrets.redact(url)} is not postgresql://USER@HOST[:PORT]/DBNAME "
                     "(it needs a host and a database name)")
  user = urllib.parse.unquote(parts.username or "") or os.environ.get("PGUSER") or \
      getpass.getuser()
  return Postgres(parts.hostname, port, user, dbname)


def _connect(db: Postgres):
  import psycopg  # only PostgreSQL users need it loaded
  # No password argument: libpq takes PGPASSWORD or the password file, as ML Metadata does.
  return psycopg.connect(host=db.host, port=db.port, user=db.user, dbname=db.dbname,
                         connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)


def probe(url: str, key: str, create_missing: bool = False) -> None:
  """Fails fast with a DatabaseError naming the URL, `key` and the server's reason (wrong
  password, no such database, server down) instead of ML Metadata's "connection pointer is
  NULL" or MLflow's minutes of retries. `create_missing`: a missing database is not an error
  (ML Metadata creates its own)."""
  import psycopg
  db = parse(url, key)
  try:
    _connect(db).close()
  except psycopg.OperationalError as e:
    reason = " ".join(str(e).split())
    if create_missing and "does not exist" in reason and db.dbname in reason:
      return
    hint = ""
    if "password" in reason:
      hint = " (the password comes from PGPASSWORD or ~/.pgpass, never from the config file)"
    elif "does not exist" in reason:
      hint = f" (create it first: createdb -h {db.host} -p {db.port} -U {db.user} {db.dbname})"
    raise DatabaseError(f"{key}: PostgreSQL at {secrets.strip_credentials(url)[0]} is not "
                        f"usable: {secrets.redact(reason)}{hint}") from None


def _lock_key(name: str) -> int:
  """A signed 64-bit key for PostgreSQL's advisory locks."""
  return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def advisory_lock(url: str, name: str) -> Iterator[None]:
  """Holds the server-wide advisory lock `name` while in the block (waits for it): e.g. so that
  two runs creating MLflow's tables on an empty database do not both run the migrations."""
  connection = _connect(parse(url))
  try:
    connection.execute("SELECT pg_advisory_lock(%s)", (_lock_key(name),))
    yield
  finally:
    connection.close()  # releases the lock


class Lease:
  """A lock held for as long as this object (and its process) lives: `acquire()` takes the
  advisory lock `name` on its own connection; the server releases it when the connection
  ends, also when the process is killed. `held_elsewhere(url, name)` asks whether some live
  session holds it."""

  def __init__(self, url: str, name: str):
    self._connection = _connect(parse(url))
    self._connection.execute("SELECT pg_advisory_lock(%s)", (_lock_key(name),))

  def release(self) -> None:
    self._connection.close()


def held_elsewhere(url: str, name: str) -> bool:
  """Whether another session holds the advisory lock `name` now."""
  connection = _connect(parse(url))
  try:
    key = _lock_key(name)
    if connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
      connection.execute("SELECT pg_advisory_unlock(%s)", (key,))
      return False
    return True
  finally:
    connection.close()
