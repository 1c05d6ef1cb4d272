"""A throwaway PostgreSQL (+ PostGIS) server for the test suite.

Not a test module: ``tests/conftest.py`` and ``tests/test_pgserver.py`` import it as
``import pgserver`` (pytest puts ``tests/`` on ``sys.path`` because the folder has no
``__init__.py``).

``start()`` makes a fresh cluster in a temporary folder, listening on a free TCP port on
127.0.0.1 (and on a Unix socket inside that folder), tuned for speed rather than safety
(``fsync=off``...), and returns a :class:`PgServer`.  ``PgServer.stop()`` kills it and
removes the folder; servers still running when the interpreter exits are stopped too.

PostgreSQL refuses to run as root; when we are root (CI, containers) every server
program runs as the ``postgres`` OS user that the Debian package creates.

The binaries come from ``/usr/lib/postgresql/<version>/bin`` (newest version that has the
PostGIS extension files), or from ``$GRIDMAP_PG_BINDIR`` when set.  If they are missing
this raises ``RuntimeError`` -- it never skips: run ``bash scripts/system-deps.sh``.

Run ``python tests/pgserver.py`` to start a server by hand; it prints its URL.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PgServer", "find_bindir", "start"]

INSTALL_HINT = "run `bash scripts/system-deps.sh` (as root) to install PostgreSQL 15 and PostGIS"

#: Settings for a disposable server: no durability, nothing we do not need.
FAST_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "huge_pages": "off",
    "max_connections": "100",
    "log_min_messages": "warning",
    "timezone": "UTC",
}

_RUNNING: set[PgServer] = set()


def find_bindir() -> Path:
    """Folder holding initdb/pg_ctl/postgres; prefers versions that have PostGIS installed."""
    override = os.environ.get("GRIDMAP_PG_BINDIR")
    if override:
        bindir = Path(override)
        if not (bindir / "initdb").is_file():
            raise RuntimeError(f"GRIDMAP_PG_BINDIR={override} has no initdb")
        return bindir

    def version(bindir: str) -> tuple[int, ...]:
        match = re.search(r"/postgresql/([\d.]+)/bin$", bindir)
        return tuple(int(p) for p in match.group(1).split(".")) if match else (0,)

    candidates = sorted(
        (
            d
            for d in glob.glob("/usr/lib/postgresql/*/bin")
            if all(os.access(f"{d}/{p}", os.X_OK) for p in ("initdb", "pg_ctl", "postgres"))
        ),
        key=version,
        reverse=True,
    )
    if not candidates:
        raise RuntimeError(f"PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin; {INSTALL_HINT}")
    with_postgis = [d for d in candidates if _postgis_control(d).is_file()]
    if not with_postgis:
        raise RuntimeError(
            "PostGIS extension files not found (looked for "
            f"{', '.join(str(_postgis_control(d)) for d in candidates)}); {INSTALL_HINT}"
        )
    return Path(with_postgis[0])


def _postgis_control(bindir: str | Path) -> Path:
    """Debian layout: /usr/lib/postgresql/15/bin -> /usr/share/postgresql/15/extension/postgis.control."""
    major = Path(bindir).parent.name
    return Path(f"/usr/share/postgresql/{major}/extension/postgis.control")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env() -> dict[str, str]:
    """Our environment minus PG* variables (a developer's PGPORT/PGDATA must not leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C.UTF-8"
    return env


class PgServer:
    """A running throwaway cluster.  Use ``start()`` to make one; usable as a context manager."""

    host = "127.0.0.1"
    user = "postgres"

    def __init__(self, bindir: Path, basedir: Path, port: int, dbname: str, as_user: str | None) -> None:
        self.bindir = bindir
        self.basedir = basedir
        self.datadir = basedir / "data"
        self.logfile = basedir / "server.log"
        self.port = port
        self.dbname = dbname
        self._as_user = as_user
        self._stopped = False

    # -- URLs and connections -------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the default database, e.g. postgresql+psycopg://postgres@127.0.0.1:54321/gridmap."""
        return self.url_for(self.dbname)

    def url_for(self, dbname: str) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def dsn(self, dbname: str | None = None) -> str:
        """libpq connection string (for psycopg.connect)."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname or self.dbname} connect_timeout=10"

    def connect(self, dbname: str | None = None, *, autocommit: bool = True):
        """A psycopg connection (autocommit by default); close it, or use it in a ``with``."""
        import psycopg

        return psycopg.connect(self.dsn(dbname), autocommit=autocommit)

    # -- databases ------------------------------------------------------------------------

    def create_database(self, name: str, *, template: str | None = None, extensions: tuple[str, ...] = ()) -> str:
        """CREATE DATABASE ``name`` (optionally from ``template``), create ``extensions`` in it; return its URL."""
        from psycopg import sql

        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
        with self.connect("postgres") as conn:
            conn.execute(query)
        if extensions:
            with self.connect(name) as conn:
                for ext in extensions:
                    conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(ext)))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE ``name``, disconnecting anyone still connected to it."""
        from psycopg import sql

        with self.connect("postgres") as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # -- life cycle -----------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the server at once (pg_ctl stop -m immediate) and delete its folder.  Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        _RUNNING.discard(self)
        try:
            if (self.datadir / "postmaster.pid").exists():
                result = self._run("pg_ctl", "stop", "-D", str(self.datadir), "-m", "immediate", "-w", "-t", "30",
                                   check=False)
                if result.returncode != 0:
                    self._kill_postmaster()
        finally:
            shutil.rmtree(self.basedir, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running"
        return f"<PgServer {self.url} {state} data={self.datadir}>"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    # -- internals ------------------------------------------------------------------------

    def _run(self, program: str, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / program), *args]
        if self._as_user:
            cmd = ["runuser", "-u", self._as_user, "--", *cmd]
        result = subprocess.run(
            cmd,
            cwd=self.basedir,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{program} failed (exit {result.returncode}): {' '.join(cmd)}\n{result.stdout}")
        return result

    def _kill_postmaster(self) -> None:
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGQUIT)
        except (OSError, ValueError, IndexError):
            pass

    def _initdb(self) -> None:
        base = ["-D", str(self.datadir), "-A", "trust", "-U", self.user, "--encoding=UTF8", "--no-instructions"]
        first = self._run("initdb", *base, "--locale=C.UTF-8", check=False)
        if first.returncode != 0:
            shutil.rmtree(self.datadir, ignore_errors=True)
            second = self._run("initdb", *base, "--locale=C", check=False)
            if second.returncode != 0:
                raise RuntimeError(f"initdb failed with --locale=C.UTF-8:\n{first.stdout}\nand with "
                                   f"--locale=C:\n{second.stdout}")
        settings = dict(FAST_SETTINGS, unix_socket_directories=str(self.basedir))
        with open(self.datadir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# gridmap test server\n")
            for key, value in settings.items():
                conf.write(f"{key} = '{value}'\n")

    def _start(self, timeout: float) -> None:
        self.logfile.touch()
        if self._as_user:
            shutil.chown(self.logfile, self._as_user, self._as_user)
        result = self._run(
            "pg_ctl", "start", "-D", str(self.datadir), "-l", str(self.logfile),
            "-o", f"-p {self.port}", "-w", "-t", str(int(timeout)),
            check=False, timeout=timeout + 30,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed (exit {result.returncode}) on port "
                               f"{self.port}:\n{result.stdout}\n--- server log ---\n{self.log_tail()}")
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.connect("postgres") as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL on port {self.port} not ready after {timeout:.0f}s: {exc}\n--- "
                                       f"server log ---\n{self.log_tail()}") from exc
                time.sleep(0.1)


def start(dbname: str = "gridmap", *, timeout: float = 60, check_postgis: bool = True) -> PgServer:
    """Start a throwaway server with an empty database ``dbname`` and return it.

    With ``check_postgis`` (the default) the PostGIS extension must be available to
    ``CREATE EXTENSION postgis`` (it is not created: that is the migrations' job).
    """
    bindir = find_bindir()
    as_user = None
    parent = None
    if os.geteuid() == 0:
        as_user = "postgres"
        try:
            pwd.getpwnam(as_user)
        except KeyError:
            raise RuntimeError(f"running as root but there is no '{as_user}' OS user to run PostgreSQL as; "
                               f"{INSTALL_HINT}") from None
        if shutil.which("runuser") is None:
            raise RuntimeError("running as root and `runuser` (util-linux) is missing; cannot drop privileges for "
                               "PostgreSQL")
        parent = "/tmp"  # the postgres user must be able to reach it; $TMPDIR may be private to root

    basedir = Path(tempfile.mkdtemp(prefix="gridmap-pg-", dir=parent))
    server = PgServer(bindir, basedir, _free_port(), dbname, as_user)
    try:
        if as_user:
            shutil.chown(basedir, as_user, as_user)
        server._initdb()
        _RUNNING.add(server)
        for attempt in range(3):
            try:
                server._start(timeout)
                break
            except RuntimeError as exc:
                # The free port can be taken between probing and binding: retry on a new one.
                if attempt == 2 or "Address already in use" not in str(exc):
                    raise
                server.port = _free_port()
        server.create_database(dbname)
        if check_postgis:
            _check_postgis(server)
    except BaseException:
        server.stop()
        raise
    return server


def _check_postgis(server: PgServer) -> None:
    """PostGIS must be creatable; try it in a scratch database so ``dbname`` stays empty."""
    scratch = "gridmap_postgis_check"
    try:
        server.create_database(scratch, extensions=("postgis",))
    except Exception as exc:
        raise RuntimeError(f"CREATE EXTENSION postgis failed ({exc}); {INSTALL_HINT}") from exc
    finally:
        server.drop_database(scratch)


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        server.stop()


if __name__ == "__main__":
    srv = start()
    print(srv.url, flush=True)
    print(f"data in {srv.datadir}; Ctrl-C stops it", flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
