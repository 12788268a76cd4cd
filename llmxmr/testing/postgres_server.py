"""A throw-away PostgreSQL server from the distribution's binaries (Debian's `postgresql` package), for tests
and benchmarks: `initdb` into a temporary folder, `pg_ctl start` on a free loopback port, trust
authentication, stopped and deleted on exit. PostgreSQL refuses to run as root, so as root the server runs
as the `postgres` user (`runuser`).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "postgres"


class NoPostgresError(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def server_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin with initdb and pg_ctl, or None."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found = [d for d in found if (d / "pg_ctl").is_file()]
    if not found:
        return None
    return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    port: int
    folder: Path
    bindir: Path
    as_user: str | None

    def url(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", self.as_user, "--"] if self.as_user else []
        return subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=timeout, check=False,
                              cwd=self.folder, env={**os.environ, "LC_ALL": "C.UTF-8"})

    def sql(self, statement: str, dbname: str = "postgres") -> None:
        """Run one statement as the superuser (CREATE DATABASE, roles and grants)."""
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            conn.execute(statement)

    def new_database(self, name: str) -> str:
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        res = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), "-o", opts,
                        "-l", str(self.folder / "server.log"), "-w", "-t", "60", "start")
        if res.returncode != 0:
            log = (self.folder / "server.log").read_text(errors="replace")[-2000:] if (self.folder / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {res.stdout}{res.stderr}{log}")


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    bindir = server_bindir()
    if bindir is None:
        raise NoPostgresError("PostgreSQL's server binaries are not installed (apt-get install -y postgresql)")
    as_user = SERVER_USER if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="llmxmr-pg-"))
    try:
        if as_user:
            shutil.chown(folder, user=as_user)
        server = PostgresServer(free_port(), folder, bindir, as_user)
        res = server._run(str(bindir / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres",
                          "-E", "UTF8", "--no-sync")
        if res.returncode != 0:
            raise RuntimeError(f"initdb failed: {res.stdout}{res.stderr}")
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
