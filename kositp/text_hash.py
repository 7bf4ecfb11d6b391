"""64-bit hashes of every ``n``-character window of many texts at once.

Deduplication (5-character shingles of every record) and decontamination (13-character
windows of every training instance) both hash hundreds of millions of windows; a Python loop
per window was most of their cost. Here a batch of texts becomes one array of code points and
each window's polynomial hash comes from prefix sums (``(S[i+n] - S[i]) * Q^-i`` mod 2^64), a
handful of numpy operations per window whatever ``n`` is, then a splitmix64 finalizer spreads
the bits so that any slice of the hash (a partition, a filter) is evenly used.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_Q = 0x9E3779B97F4A7C15  # odd, so invertible mod 2^64
_Q_INVERSE = pow(_Q, -1, 1 << 64)
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)
_MIX3 = np.uint64(0x94D049BB133111EB)
_powers = np.ones(1, dtype=np.uint64)
_inverse_powers = np.ones(1, dtype=np.uint64)


def finalize(h: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: every input bit reaches every output bit (in place, and returned)."""
    h ^= h >> np.uint64(30)
    h *= _MIX2
    h ^= h >> np.uint64(27)
    h *= _MIX3
    h ^= h >> np.uint64(31)
    return h


def _power_tables(size: int) -> tuple[np.ndarray, np.ndarray]:
    """``Q^m`` and ``Q^-m`` for ``m < size``, grown on demand and kept (they depend on nothing else)."""
    global _powers, _inverse_powers
    if _powers.size < size:
        grown = max(size, 2 * _powers.size)
        _powers = np.cumprod(np.full(grown, _Q, dtype=np.uint64)) * np.uint64(_Q_INVERSE)
        _inverse_powers = np.cumprod(np.full(grown, _Q_INVERSE, dtype=np.uint64)) * np.uint64(_Q)
    return _powers[:size], _inverse_powers[:size]


def window_hashes(texts: Sequence[str], n: int, skip: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The hashes of each text's windows, flat, and row offsets (text ``i`` owns ``flat[off[i]:off[i+1]]``).

    ``skip`` is a boolean table by code point (its last entry False; larger code points are kept):
    those characters are removed first, so windows run across them, as decontamination's
    whitespace-free comparison wants, without a Python pass over every text. A text shorter than
    ``n`` has no window. Equal windows hash equal in any text and batch.
    """
    ends = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))
    points = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
    if skip is not None:
        kept = np.take(~skip, points, mode="clip")  # one pass; code points past the table clip to its last entry
        ends = ends - np.searchsorted(np.flatnonzero(~kept), ends)
        points = points[kept]
    lengths = np.diff(ends, prepend=0)
    powers, inverse = _power_tables(points.size + 1)
    prefix = np.zeros(points.size + 1, dtype=np.uint64)
    np.cumsum(np.multiply(points, powers[: points.size], dtype=np.uint64), out=prefix[1:])
    windows = max(points.size - n + 1, 0)
    hashes = prefix[n : n + windows] - prefix[:windows]
    hashes *= inverse[:windows]
    inside = np.ones(windows, dtype=bool)
    crossing = (ends[:, None] - np.arange(1, n)[None, :]).ravel()
    inside[crossing[(crossing >= 0) & (crossing < windows)]] = False
    counts = np.maximum(lengths - n + 1, 0)
    return finalize(hashes[inside]), np.concatenate(([0], np.cumsum(counts))).astype(np.uint64)
