"""Content hashes of input files, remembered by what a rewrite would change (as git's index does).

A stage's version covers the content of its external inputs (raw corpora, evaluation sets), so
planning hashes them, and the nightly no-op plans twice (the CLI, then the flow). AIHub corpora
are tens of GB: re-reading them every time costs minutes for nothing. A file's hash is stored
with its size, mtime and ctime (nanoseconds) and inode; while all four are unchanged the stored
hash is used and the file costs one ``stat``. Anything that rewrites, touches or replaces the
file changes at least one of them. As in git's "racily clean" rule, a file modified in the last
two seconds is hashed but not remembered, since a second write in the same clock tick could
leave its stat unchanged.

The table lives in ``$KOSITP_CACHE_DIR`` (default ``~/.cache/kositp``) as SQLite, so two
runs planning at once share it safely; a cache that cannot be opened only means hashing again.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Self

from kositp.input_files import files_under

_CHUNK = 1 << 20
_RACY_NS = 2_000_000_000
_SCHEMA = ("CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, "
           "ctime_ns INTEGER, inode INTEGER, sha256 TEXT)")


def cache_path() -> Path:
    root = os.environ.get("KOSITP_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kositp"
    return Path(root) / "file_hashes.sqlite"


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class FileHashes:
    """``sha256(path)`` for many files, each read only when its stat changed since last time."""

    def __init__(self, location: Path | None = None):
        self._db: sqlite3.Connection | None = None
        self._fresh: list[tuple] = []
        try:
            location = location or cache_path()
            location.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(location, timeout=30)
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error):
            self._db = None

    def sha256(self, path: Path) -> str:
        info = path.stat()
        key = str(path.resolve())
        stat = (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
        if self._db is not None:
            row = self._db.execute("SELECT size, mtime_ns, ctime_ns, inode, sha256 FROM hashes WHERE path = ?",
                                   (key,)).fetchone()
            if row is not None and tuple(row[:4]) == stat:
                return row[4]
        digest = _sha256(path)
        if time.time_ns() - max(info.st_mtime_ns, info.st_ctime_ns) > _RACY_NS:
            self._fresh.append((key, *stat, digest))
        return digest

    def close(self) -> None:
        """Store the hashes computed since opening (one transaction)."""
        if self._db is None:
            return
        try:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?, ?)", self._fresh)
        except sqlite3.Error:
            pass
        self._db.close()
        self._db = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tree_digest(roots: Iterable[Path]) -> tuple[int, str]:
    """How many files are under ``roots`` and one digest of their relative names and content."""
    digest = hashlib.blake2b(digest_size=16)
    count = 0
    with FileHashes() as hashes:
        for root in roots:
            for path in files_under(root) if root.exists() else []:
                count += 1
                name = path.relative_to(root) if root.is_dir() else path.name
                digest.update(f"{name}\x1f{hashes.sha256(path)}\x1e".encode())
    return count, digest.hexdigest()
