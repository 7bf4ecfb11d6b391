"""The server's log under a flood: one line per kind of message, then one per interval with a count."""

from __future__ import annotations

import logging

from kositp.serve import connections
from kositp.serve.connections import RepeatLimit


def test_a_message_repeated_thousands_of_times_a_second_is_logged_once_per_interval_with_a_count(monkeypatch, caplog):
    """asyncio logged each failed accept with a traceback: 513,367 lines in 40 s."""
    now = [1000.0]
    monkeypatch.setattr(connections.time, "monotonic", lambda: now[0])
    logger = logging.getLogger("asyncio")
    limit = RepeatLimit(interval=10)
    logger.addFilter(limit)
    try:
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            for _ in range(5000):
                logger.error("socket.accept() out of system resource\nsocket: <fd=6>")
                now[0] += 0.001
            logger.error("다른 오류: %s", "한 번")
            now[0] += 10
            logger.error("socket.accept() out of system resource\nsocket: <fd=6>")
    finally:
        logger.removeFilter(limit)
    assert [r.getMessage().splitlines()[-1] for r in caplog.records] == [
        "socket: <fd=6>", "다른 오류: 한 번", "socket: <fd=6> (4999 more like it in the last 15 s were not logged)"]
