"""A real PostgreSQL server for the archive's tests: Debian's binaries, in a temporary directory.

:class:`PostgresServer` runs ``initdb`` and ``pg_ctl`` from ``/usr/lib/postgresql/<version>/bin`` (or
wherever ``$PATH`` has them) as a user that is not root, since PostgreSQL refuses to run as root: as
``postgres`` through ``runuser`` when the tests run as root, else as the tests' own user. It listens
on a unix socket in its directory only (no TCP port to collide with another test process), with
durability off (``fsync``, ``synchronous_commit``, ``full_page_writes``): a test database that
loses its last second in a power cut loses nothing of value, and each commit costs no disk flush.

    server = PostgresServer.find()          # None, with find_problem() saying why, when it cannot run
    server.start(); server.dsn("archive_test"); server.stop()
"""

from __future__ import annotations

import glob
import os
import pathlib
import pwd
import shutil
import subprocess
import tempfile

SERVER_USER = "postgres"  # Debian's package creates it


def _bin_dir() -> pathlib.Path | None:
    on_path = shutil.which("pg_ctl")
    if on_path:
        return pathlib.Path(on_path).resolve().parent  # Debian links some of them into /usr/bin
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return pathlib.Path(found[-1]).parent if found else None


def find_problem() -> str | None:
    """Why no server can be started here; None when one can."""
    if _bin_dir() is None:
        return "PostgreSQL is not installed (apt-get install postgresql; .ci/run installs it)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root, and there is no {SERVER_USER!r} user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root without runuser (util-linux) to run PostgreSQL as another user"
    return None


class PostgresServer:
    def __init__(self, bin_dir: pathlib.Path) -> None:
        self.bin = bin_dir
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="atpg-"))  # short: a socket path has ~100 characters
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.port = 5432  # only names the socket file: no TCP listener
        self.log = self.root / "server.log"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            entry = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o755)

    @classmethod
    def find(cls) -> PostgresServer | None:
        if find_problem() is not None:
            return None
        bin_dir = _bin_dir()
        assert bin_dir is not None
        return cls(bin_dir)

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if self.as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, cwd=self.root)

    def start(self) -> None:
        if not self.data.exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--locale=C", "--no-sync")  # fmt: skip
        options = (
            f"-k {self.socket_dir} -p {self.port} -c listen_addresses='' -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
        )
        result = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start", check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start: {result.stderr}\n{self.log_text()}")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def log_text(self) -> str:
        try:
            return self.log.read_text()[-4000:]
        except OSError:
            return ""

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = self._run("psql", "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres", "-d", database,
                           "-v", "ON_ERROR_STOP=1", "-AtX", "-c", sql)  # fmt: skip
        return result.stdout

    def dsn(self, database: str) -> str:
        """The archive's DSN of ``database`` (SQLAlchemy's URL, the asyncpg driver, over the socket)."""
        return f"postgresql+asyncpg://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def create_database(self, name: str, template: str = "template0") -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.psql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
