"""A private PostgreSQL server for tests: Debian's `postgresql` binaries (`make test` installs
the package when they are missing), `initdb` on a fresh temporary directory, `pg_ctl` on a
free loopback port with password authentication (scram-sha-256), stopped and removed after.

PostgreSQL refuses to run as root: as root (the tests' usual user), initdb and the server run
as the `postgres` system user that the Debian package creates, on a directory it owns.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

USER = "tfxgnn"


def binaries_dir() -> str:
  """The newest installed PostgreSQL's bin directory (Debian: /usr/lib/postgresql/N/bin)."""
  found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                 key=lambda p: int(p.split("/")[-3]))
  if not found:
    raise RuntimeError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
                       "`make postgres` installs Debian's postgresql package")
  return os.path.dirname(found[-1])


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class Server:
  """`Server().start()`: a running server; `url(dbname)` for clients (no password in it: the
  password is `password`, given to clients through PGPASSWORD); `stop()` ends it and removes
  its files."""

  def __init__(self, password: str = "pg-s3cret-Pa55"):
    self.password = password
    self.bin = binaries_dir()
    self.port = free_port()
    self.dir = tempfile.mkdtemp(prefix="tfx-gnn-postgres-")
    self.data = os.path.join(self.dir, "data")
    self.log = os.path.join(self.dir, "server.log")
    self._as = []  # the command prefix that runs a binary as the server's owner
    if os.geteuid() == 0:
      owner = pwd.getpwnam("postgres")  # created by Debian's postgresql package
      os.chown(self.dir, owner.pw_uid, owner.pw_gid)
      self._as = ["runuser", "-u", "postgres", "--"]
    self.started = False

  def _run(self, *args: str) -> None:
    result = subprocess.run([*self._as, *args], capture_output=True, text=True, check=False,
                            cwd=self.dir)
    if result.returncode != 0:
      raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n"
                         f"{result.stdout}{result.stderr}")

  def start(self) -> "Server":
    pwfile = os.path.join(self.dir, "pwfile")
    with open(pwfile, "w") as f:
      f.write(self.password + "\n")
    if self._as:
      shutil.chown(pwfile, "postgres")
    try:
      self._run(os.path.join(self.bin, "initdb"), "-D", self.data, "-U", USER,
                "--pwfile", pwfile, "--auth", "scram-sha-256", "--encoding", "UTF8",
                "--no-instructions")
    finally:
      os.remove(pwfile)
    # Loopback TCP only; the Unix socket goes to the private directory, not /var/run.
    options = f"-p {self.port} -h 127.0.0.1 -k {self.dir} -c max_connections=200"
    self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-l", self.log, "-w",
              "-t", "60", "-o", options, "start")
    self.started = True
    return self

  def url(self, dbname: str) -> str:
    return f"postgresql://{USER}@127.0.0.1:{self.port}/{dbname}"

  def connect(self, dbname: str = "postgres"):
    import psycopg
    connection = psycopg.connect(host="127.0.0.1", port=self.port, user=USER,
                                 password=self.password, dbname=dbname, autocommit=True)
    return connection

  def create_database(self, dbname: str) -> str:
    """A new empty database; returns its URL."""
    connection = self.connect()
    try:
      with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{dbname}"')
    finally:
      connection.close()
    return self.url(dbname)

  def dump(self, dbname: str) -> str:
    """Every row of every table of `dbname`, as pg_dump writes it (to search for secrets)."""
    result = subprocess.run(
        [os.path.join(self.bin, "pg_dump"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER,
         "--data-only", dbname], capture_output=True, text=True, check=True,
        env={**os.environ, "PGPASSWORD": self.password})
    return result.stdout

  def stop(self) -> None:
    try:
      if self.started:
        self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", "fast", "-w",
                  "stop")
        self.started = False
    finally:
      shutil.rmtree(self.dir, ignore_errors=True)
