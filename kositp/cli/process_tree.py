"""A long-running child (Prefect's server, the Chainlit page) that stops with the command that started it.

A child inherits no signal: ``kill PID`` (SIGTERM) or a closed terminal's SIGHUP to the command
would leave the child re-parented to PID 1, still holding its port. So the child runs in its own
process group, and SIGINT, SIGTERM or SIGHUP to the command stops that whole group: SIGTERM first,
SIGKILL if it has not ended after a grace period or on a second signal. Ctrl-C reaches only the
command (the terminal signals its foreground group), which passes it on once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_S = 10.0


class _Stop(Exception):
    """A stop signal arrived; the message is its name."""


def _raise_stop(signum: int, _frame: object) -> None:
    raise _Stop(signal.Signals(signum).name)


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def run_until_stopped(
    name: str, command: Sequence[str], env: Mapping[str, str], say: Callable[[str], None] = print
) -> int:
    """Run ``command`` (``name`` for the user) in its own process group until it exits or this process
    is told to stop. Returns its exit status as a shell shows it, or 0 after a requested stop.
    """
    previous = {sig: signal.signal(sig, _raise_stop) for sig in STOP_SIGNALS}
    child = None
    try:
        child = subprocess.Popen(list(command), env=dict(env), stdin=subprocess.DEVNULL, process_group=0)
        code = child.wait()
        return 128 - code if code < 0 else code
    except _Stop as stop:
        if child is None:  # stopped before anything was started
            return 0
        say(f"{stop}: stopping {name} (process group {child.pid})")
        group = child.pid
        for sig in STOP_SIGNALS:  # a second signal ends the group at once
            signal.signal(sig, lambda *_: signal_group(group, signal.SIGKILL))
        signal_group(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            signal_group(child.pid, signal.SIGKILL)
            child.wait()
        return 0
    finally:
        if child is not None:
            signal_group(child.pid, signal.SIGKILL)  # whatever the child left behind in its group
        for sig, handler in previous.items():
            signal.signal(sig, handler)
