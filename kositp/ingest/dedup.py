"""Exact (normalized text hash) and near-duplicate (MinHash LSH) detection across all sources.

Near-duplicate search runs on records without a question: MRC questions on one passage share
almost all their text, so only exact duplicates are looked for there.
"""

from __future__ import annotations

import hashlib
import zlib

from datasketch import MinHash, MinHashLSH

SHINGLE = 5


def content_key(record: dict) -> str:
    parts = (record.get("text") or "", record.get("question") or "", record.get("summary") or "")
    return "\x1f".join(parts)


class Deduplicator:
    """Remembers what it has kept; ``check`` returns ``None``, ``"duplicate"`` or ``"near_duplicate"``."""

    def __init__(self, near_threshold: float | None = 0.9, num_perm: int = 64):
        self._exact: set[bytes] = set()
        self._num_perm = num_perm
        self._lsh = MinHashLSH(threshold=near_threshold, num_perm=num_perm) if near_threshold else None

    def check(self, record: dict, record_id: str) -> tuple[str | None, str]:
        key = content_key(record)
        digest = hashlib.blake2b(key.encode("utf-8"), digest_size=12).digest()
        if digest in self._exact:
            return "duplicate", "same normalized text as an earlier record"
        self._exact.add(digest)
        if self._lsh is None or record.get("question"):
            return None, ""
        minhash = MinHash(num_perm=self._num_perm, hashfunc=zlib.crc32)
        text = key.replace(" ", "")
        shingles = {text[i : i + SHINGLE] for i in range(max(1, len(text) - SHINGLE + 1))}
        minhash.update_batch([s.encode("utf-8") for s in shingles])
        similar = self._lsh.query(minhash)
        if similar:
            return "near_duplicate", f"near-duplicate of {similar[0]}"
        self._lsh.insert(record_id, minhash)
        return None, ""
