"""Connections that cost the server nothing they did not earn: a deadline for a request's headers,
a cap on open connections, and a log that does not grow with an attack.

uvicorn times out an idle keep-alive connection, but not one that never finishes its request
headers: about 21,000 such connections on loopback used up the open-file limit, ``/health``
stopped answering and asyncio logged ``Too many open files`` with a traceback for each failed
``accept`` (513,367 lines, 227 MB in 40 s). Here a connection waiting for its headers is closed
after ``header_timeout`` seconds, from its start and again after each response (a keep-alive
client that starts a request and stalls). Past ``max_connections`` the connection that has
waited longest for its headers is closed to make room (a client sending its request at once is
never the one waiting), else the newcomer is. uvicorn's ``limit_concurrency`` is not the tool:
it answers 503 but still accepts and holds every connection, and the app's admission (slots and
a queue, 429 beyond) already bounds the work.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("kositp")
# asyncio accepts up to the listen backlog's number of connections at each wake-up, and the cap
# sees them a loop turn or two later (uvicorn's 2048 would need thousands of spare descriptors).
ACCEPT_BACKLOG = 128
# File descriptors the server needs besides its clients' connections: its own (the model's files
# while it loads, the log, the vLLM server's pipes and pooled connections) and three backlogs'
# worth of connections accepted before the cap closes the ones over it.
RESERVED_FDS = 64 + 3 * ACCEPT_BACKLOG
# Headers larger than this are refused by h11 (431): its default, named here to be kept.
MAX_HEADER_BYTES = 16 * 1024


class OpenFileLimit(ValueError):
    """The open-file limit leaves too little room for the requested connections."""


def connection_cap(requested: int) -> int:
    """``requested``, or fewer when the soft open-file limit would run out first."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = requested if soft == resource.RLIM_INFINITY else min(requested, soft - RESERVED_FDS)
    if room < 1:
        raise OpenFileLimit(f"the open-file limit ({soft}) leaves no room for connections beside the "
                            f"{RESERVED_FDS} the server keeps; raise it (ulimit -n)")
    if room < requested:
        log.warning("at most %d connections, not %d: the open-file limit is %d (ulimit -n)", room, requested, soft)
    return room


def guarded_protocol(header_timeout: float, max_connections: int) -> type[H11Protocol]:
    """uvicorn's h11 protocol with the header deadline and the connection cap."""
    waiting: dict[GuardedH11Protocol, None] = {}  # connections awaiting headers, longest waiting first

    class GuardedH11Protocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._await_headers()
            if len(self.connections) > max_connections:
                next(iter(waiting)).shed()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._headers_arrived()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._await_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            self._headers_arrived()
            super().connection_lost(exc)

        def shed(self) -> None:
            """Closed, and at once out of the waiting line (its ``connection_lost`` comes a loop turn later)."""
            self._headers_arrived()
            self.transport.close()

        def _await_headers(self) -> None:
            self._headers_arrived()
            waiting[self] = None
            self._deadline = self.loop.call_later(header_timeout, self.shed)

        def _headers_arrived(self) -> None:
            waiting.pop(self, None)
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

    return GuardedH11Protocol


class RepeatLimit(logging.Filter):
    """The first record of a kind, then at most one per ``interval`` seconds saying how many were left out.

    A kind is the logger and the message template: asyncio logs each failed ``accept`` with a
    traceback, and one overloaded second can hold thousands of them.
    """

    def __init__(self, interval: float = 10.0, kinds: int = 1024):
        super().__init__()
        self.interval = interval
        self.kinds = kinds
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg).partition("\n")[0][:200])
        now = time.monotonic()
        if key not in self._seen and len(self._seen) >= self.kinds:  # messages with varying text: forget the old
            self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.interval}
        last, left_out = self._seen.get(key, (float("-inf"), 0))
        if now - last < self.interval:
            self._seen[key] = (last, left_out + 1)
            return False
        self._seen[key] = (now, 0)
        if left_out:
            record.msg = f"{record.msg} ({left_out} more like it in the last {now - last:.0f} s were not logged)"
        return True
