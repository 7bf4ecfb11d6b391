"""``per_task_max`` as a uniform sample: each task keeps the instances with the smallest keys.

Keeping the first ``per_task_max`` instances in file order would sample whichever files ingest
read first (one corpus, one domain). Instead every instance has a key, a keyed hash of its
record id (seeded, and different for every task), and a task keeps the ``per_task_max`` smallest
keys among the instances it can build: a uniform sample of the whole corpus, the same whatever
the order of the records or how tasks are shared between processes. A record's id is hashed once
(:func:`record_hashes`); each task's keys are that hash mixed with the task's salt, for a whole
batch at a time.

While reading, a bounded heap holds the smallest keys so far. A record whose key is not below
the largest of them cannot enter the sample, so it is not built at all: of N candidates a task
builds about k(1 + ln(N/k)) rather than N. Rows written before a smaller key pushed them out
are removed when the pass ends (:func:`kositp.reformat.shards.build_shards` trims them).
"""

from __future__ import annotations

import hashlib
import heapq
from array import array
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from kositp.text_hash import finalize

NO_BOUND = 1 << 64


def record_hashes(record_ids: Sequence[str]) -> np.ndarray:
    """A 64-bit hash of each record id (ingest's ids are hex digests, but any string will do)."""
    return np.frombuffer(
        b"".join(hashlib.blake2b(r.encode(), digest_size=8).digest() for r in record_ids), dtype="<u8"
    ).copy()


class TaskCap:
    def __init__(self, task_id: str, seed: int, size: int):
        salt = hashlib.blake2b(f"{seed}\x1f{task_id}".encode(), digest_size=8).digest()
        self._salt = np.frombuffer(salt, dtype="<u8")[0]
        self.size = size
        self._heap: list[int] = []  # the sample's keys, negated: the largest on top
        self.written: defaultdict[str, array] = defaultdict(lambda: array("Q"))  # keys in row order, per split

    def keys(self, hashes: np.ndarray) -> list[int]:
        """This task's key for each record (from :func:`record_hashes`)."""
        return finalize(hashes ^ self._salt).tolist()

    @property
    def bound(self) -> int:
        """Keys at or above this cannot enter the sample any more."""
        return -self._heap[0] if len(self._heap) >= self.size else NO_BOUND

    @property
    def largest(self) -> int:
        """The largest key in the sample: written rows above it were pushed out."""
        return -self._heap[0] if self._heap else 0

    def admit(self, key: int, split: str) -> bool:
        """Take the instance into the sample (pushing out the largest key when full), or refuse it."""
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, -key)
        elif key < -self._heap[0]:
            heapq.heapreplace(self._heap, -key)
        else:
            return False
        self.written[split].append(key)
        return True
