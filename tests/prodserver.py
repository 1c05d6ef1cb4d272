"""The production server for tests: `gridmap serve` (waitress) as a subprocess on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

#: `gridmap serve` through the installed entry point's function, with this test run's interpreter.
GRIDMAP = [sys.executable, "-c", "import sys; from gridmap.cli import main; sys.exit(main())"]
START_TIMEOUT_S = 60


def run_cli(env: Mapping[str, str], *args: str, stdin: str | None = None) -> str:
    """Run a `gridmap` command with ``env`` added to the environment; its stdout (raises on failure)."""
    result = subprocess.run([*GRIDMAP, *args], env={**os.environ, **env}, input=stdin, capture_output=True,
                            text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"gridmap {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def production_server(env: Mapping[str, str], log: Path, *, threads: int | None = None,
                      command: Sequence[str] = GRIDMAP, cwd: Path | None = None,
                      inherit_environment: bool = True) -> Iterator[str]:
    """Run `gridmap serve` with ``env`` (GRIDMAP_* settings); yield its base URL; stop it afterwards.

    ``command`` is the `gridmap` to run (another venv's, say); ``env`` is added to this process's
    environment unless ``inherit_environment`` is false, when it is the whole environment.  Its
    output goes to ``log``, which the failure message quotes when it does not start.
    """
    port = free_port()
    args = [*command, "serve", "--host", "127.0.0.1", "--port", str(port)]
    if threads is not None:
        args += ["--threads", str(threads)]
    environment = {**os.environ, **env} if inherit_environment else dict(env)
    with open(log, "wb") as out:
        process = subprocess.Popen(args, env=environment, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError("gridmap serve exited with "
                                   f"{process.returncode}:\n{log.read_text(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gridmap serve did not listen within {START_TIMEOUT_S} s:\n"
                                       f"{log.read_text(errors='replace')}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
