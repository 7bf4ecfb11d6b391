"""The per-task shard cache, ``<root>/_cache/reformat/<sub-version>/``, and its pruning.

Every code or instruction change makes new sub-versions, so without pruning the cache grows by
a full set of shards per change. An entry is kept while a published reformat artifact (or the
run in progress) names it; artifacts hold their own links or copies of the shards, so pruning
never touches a published artifact. Runs hold a shared lock on the cache while they read and
fill it; pruning takes it exclusively and skips its turn when another run holds it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kositp.artifacts import ArtifactError, ArtifactStore

LOCK_FILE = ".lock"
TMP_PREFIX = ".tmp-"


@contextmanager
def cache_in_use(cache: Path | None) -> Iterator[int | None]:
    """Hold a shared lock on ``cache`` (None: no cache, nothing to lock); yields the lock's fd."""
    if cache is None:
        yield None
        return
    cache.mkdir(parents=True, exist_ok=True)
    fd = os.open(cache / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield fd
    finally:
        os.close(fd)


def referenced_subversions(store_root: Path, versions: Iterable[str] | None = None) -> set[str]:
    """Sub-versions named by the given (default: every) published reformat artifact under ``store_root``."""
    store = ArtifactStore(store_root)
    named: set[str] = set()
    for version in store.versions("reformat") if versions is None else versions:
        try:
            named.update(store.open("reformat", version, verify=False).report.get("subversions", {}).values())
        except ArtifactError:
            continue  # an unreadable manifest names nothing; its shards are in its own folder anyway
    return named


def prune_cache(lock: int, cache: Path, keep: set[str]) -> list[str]:
    """Remove entries not in ``keep`` and abandoned builds; [] when another run uses the cache."""
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return []
    try:
        removed = sorted(
            entry.name
            for entry in cache.iterdir()
            if entry.is_dir() and (entry.name.startswith(TMP_PREFIX) or entry.name not in keep)
        )
        for name in removed:
            shutil.rmtree(cache / name)
        return removed
    finally:
        fcntl.flock(lock, fcntl.LOCK_SH)
