"""Prefect's temporary server for ``kositp run``: started one run at a time, and never orphaned.

Without a configured ``PREFECT_API_URL``, Prefect starts a temporary server (uvicorn in a
subprocess) whose first start creates the SQLite database in ``PREFECT_HOME``. Two runs started
at once on a fresh machine both create it, and one fails (``index ... already exists``), then
times out after 20 s with a traceback. Here the start is serialised by a file lock in
``PREFECT_HOME``, held until the server answers (so its database is set up), and waited for
longer. Prefect stops the server at exit, but a run killed with SIGKILL runs no exit handler:
a small watchdog process, watching before the server is spawned, stops the server when the
run's process is gone (the server cannot be made to die with its parent itself: Prefect spawns
it, with no hook to set ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from filelock import FileLock, Timeout

# The first start migrates the database: on a busy two-core machine that alone took 15 s.
STARTUP_TIMEOUT_S = 120
LOCK_NAME = "kositp-server-start.lock"

# Polls the run's children (Linux /proc) every 0.1 s and remembers Prefect's server among them;
# once the run is gone, stops it. It writes one byte when it is watching, before the server starts.
_WATCHDOG = """
import glob, os, signal, sys, time
parent = int(sys.argv[1])
mark = b"prefect.server.api.server:create_app"
def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""
servers = set()
os.write(1, b"w")
os.close(1)
while os.getppid() == parent:
    for path in glob.glob(f"/proc/{parent}/task/*/children"):
        try:
            with open(path) as f:
                servers.update(int(p) for p in f.read().split() if int(p) != os.getpid() and mark in cmdline(p))
        except OSError:
            pass
    time.sleep(0.1)
servers = {p for p in servers if mark in cmdline(p)}
for pid in servers:
    os.kill(pid, signal.SIGTERM)
for _ in range(50):
    if not any(mark in cmdline(p) for p in servers):
        break
    time.sleep(0.1)
for pid in servers:
    if mark in cmdline(pid):
        os.kill(pid, signal.SIGKILL)
"""


class ServerStartError(RuntimeError):
    """Prefect's temporary server did not come up; the message says why in one line."""


def start_temporary_server(say=print) -> None:
    """Start Prefect's temporary server now, unless an API URL is configured.

    Prefect's client then finds it running (it is the same singleton) and starts no other.
    ``say`` tells the user when another run holds the start-up lock.
    """
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_HOME,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    )

    if PREFECT_API_URL.value():
        return
    home = Path(PREFECT_HOME.value()).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    timeout = max(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value(), STARTUP_TIMEOUT_S)
    lock = FileLock(home / LOCK_NAME)
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            say(f"waiting for another kositp run to start its Prefect server (up to {timeout} s; {home / LOCK_NAME})")
            lock.acquire(timeout=timeout)
    except Timeout as exc:
        raise ServerStartError(f"another run held {home / LOCK_NAME} for {timeout} s; is one stuck?") from exc
    try:
        _watch()
        try:
            SubprocessASGIServer().start(timeout=timeout)
        except RuntimeError as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ServerStartError(f"Prefect's temporary server did not start: {first_line}") from exc
    finally:
        lock.release()


def _watch() -> None:
    """A process that outlives this one only long enough to stop the server; returns once it watches."""
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid())],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    watchdog.stdout.read(1)
    watchdog.stdout.close()
