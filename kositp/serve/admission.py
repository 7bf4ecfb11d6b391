"""Bounded concurrency with a bounded wait: a burst is answered or refused, never piled up.

A CPU (or one GPU) generates for a few requests at a time; more at once only makes every one
slower and grows memory without bound. So ``slots`` requests run, up to ``waiting`` more wait in
arrival order, and one beyond that is refused at once (the app answers 429 with Retry-After),
which a client can back off from, instead of a timeout or an out-of-memory crash.
"""

from __future__ import annotations

import asyncio


class QueueFull(Exception):
    """Every slot is busy and the wait queue is full."""


class Admission:
    def __init__(self, slots: int, waiting: int):
        self.slots, self.max_waiting = slots, waiting
        self._free = asyncio.Semaphore(slots)
        self.active = 0
        self.waiting = 0

    async def acquire(self) -> None:
        """A slot, after waiting if one is coming; :class:`QueueFull` when the queue is full too."""
        if self._free.locked() and self.waiting >= self.max_waiting:
            raise QueueFull(f"{self.active} requests running and {self.waiting} waiting; try again shortly")
        self.waiting += 1
        try:
            await self._free.acquire()
        finally:
            self.waiting -= 1
        self.active += 1

    def release(self) -> None:
        self.active -= 1
        self._free.release()

    def state(self) -> dict[str, int]:
        return {"active": self.active, "waiting": self.waiting, "slots": self.slots, "queue": self.max_waiting}
