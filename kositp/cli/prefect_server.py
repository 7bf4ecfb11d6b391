"""Prefect's temporary server for ``kositp run``: started one run at a time, and never orphaned.

Without a configured ``PREFECT_API_URL``, Prefect starts a temporary server (uvicorn in a
subprocess) whose first start creates the SQLite database in ``PREFECT_HOME``. Two runs started
at once on a fresh machine both create it, and one fails (``index ... already exists``), then
times out after 20 s with a traceback; two runs whose servers share the database later write it
at once (``database is locked`` tracebacks, a 60 s stall). Here runs on one ``PREFECT_HOME``
take turns: a file lock there is held from before the server starts until the run's process
ends (after Prefect stopped the server), and a run that finds it held says so in one line and
waits. Prefect stops the server at exit, but a run killed with SIGKILL runs no exit handler:
a small watchdog process, started before the server, stops the server once the run's process is
gone (the server cannot be made to die with its parent itself: Prefect spawns it, with no hook to
set ``PR_SET_PDEATHSIG``). The watchdog finds the server afterwards, by a token the run puts in
the environment the server inherits: a server spawned a moment before the kill is found too,
which polling the run's children while it lived missed.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

# The first start migrates the database, which on a busy two-core machine takes a while.
STARTUP_TIMEOUT_S = 120
LOCK_NAME = "kositp-run.lock"

OWNER_VARIABLE = "KOSITP_PREFECT_SERVER_OWNER"

# Waits until the run is gone (it is then re-parented), then stops every process of Prefect's
# server that inherited the run's token. It writes one byte when it is watching.
_WATCHDOG = """
import os, signal, sys, time
parent, token = int(sys.argv[1]), sys.argv[2].encode()
mark = b"prefect.server.api.server:create_app"
def read(pid, name):
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except OSError:
        return b""
def alive(pids):
    return [p for p in pids if mark in read(p, "cmdline")]
def signal_all(pids, sig):
    for pid in pids:
        try:
            os.kill(int(pid), sig)
        except ProcessLookupError:
            pass
os.write(1, b"w")
os.close(1)
while os.getppid() == parent:
    time.sleep(0.1)
servers = [p for p in os.listdir("/proc")
           if p.isdigit() and mark in read(p, "cmdline") and token in read(p, "environ").split(b"\\0")]
signal_all(servers, signal.SIGTERM)
for _ in range(50):
    if not alive(servers):
        break
    time.sleep(0.1)
signal_all(alive(servers), signal.SIGKILL)
"""


class ServerStartError(RuntimeError):
    """Prefect's temporary server did not come up; the message says why in one line."""


def start_temporary_server(say=print) -> None:
    """Start Prefect's temporary server now, unless an API URL is configured.

    Prefect's client then finds it running (it is the same singleton) and starts no other.
    ``say`` tells the user when another run on this ``PREFECT_HOME`` makes this one wait.
    """
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_HOME,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    )

    if PREFECT_API_URL.value():
        return
    from prefect.server.api.server import SubprocessASGIServer  # the server's whole app: seconds to import
    home = Path(PREFECT_HOME.value()).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    timeout = max(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value(), STARTUP_TIMEOUT_S)
    lock = FileLock(home / LOCK_NAME)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        say(f"waiting for another kositp run to finish: runs on one PREFECT_HOME take turns ({home / LOCK_NAME})")
        lock.acquire()
    # Exit handlers run last-registered first: Prefect's, registered as the server starts, stops it before this one.
    atexit.register(lock.release)
    # Offline machines are the norm for this pipeline: the server's telemetry would fail on every
    # run (`kositp server` turns it off too). A value the user set is kept.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    try:
        with watched():
            try:
                SubprocessASGIServer().start(timeout=timeout)
            except RuntimeError as exc:
                first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ServerStartError(f"Prefect's temporary server did not start: {first_line}") from exc
    except BaseException:
        atexit.unregister(lock.release)
        lock.release()
        raise


@contextmanager
def watched() -> Iterator[None]:
    """Start the watchdog, then mark what this block spawns as the run's, for the watchdog to stop.

    The token is in the environment only while the block runs (Prefect copies the environment
    into the server's), so the run's later processes do not carry it.
    """
    owner = uuid.uuid4().hex
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), f"{OWNER_VARIABLE}={owner}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    watchdog.stdout.read(1)
    watchdog.stdout.close()
    os.environ[OWNER_VARIABLE] = owner
    try:
        yield
    finally:
        del os.environ[OWNER_VARIABLE]
