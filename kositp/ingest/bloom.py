"""A fixed-size Bloom filter over 64-bit keys: may a key have been added before?

Ingest asks it of every record's duplicate keys while the records are written
(:class:`kositp.ingest.dedup.DuplicateIndex`). A Bloom filter never answers "no" for a key it
was given, so a record whose keys all get "no" cannot be a duplicate of an earlier one and goes
straight to ``records.parquet``; only the few that get "maybe" wait for the duplicate index.
Its size is fixed, so memory does not grow with the corpus; a larger corpus fills it and gets
more "maybe" answers, which cost time, never a wrong result.

The filter is blocked: a key sets ``BITS_PER_KEY`` bits in one 64-bit word (its top bits choose
the word, its low bits the bits), so asking about a batch is one gather of words and adding it
one scatter. The keys must be hashes already (uniform bits): ingest's are SHA-256 prefixes and
mixed band keys.
"""

from __future__ import annotations

import numpy as np

# 2**22 words of 64 bits: 32 MiB. With 4 bits per key, a record with 13 keys (exact and 12 LSH bands)
# is a false "maybe" about once in 10,000 records at 150,000 records, and 2-3% of them at 1.5M.
WORD_INDEX_BITS = 22
BITS_PER_KEY = 4
_ONE = np.uint64(1)
_LOW6 = np.uint64(63)


class BloomFilter:
    """Keys in, "maybe seen before" out; see the module docstring."""

    def __init__(self, word_index_bits: int = WORD_INDEX_BITS):
        self._words = np.zeros(1 << word_index_bits, dtype=np.uint64)
        self._shift = np.uint64(64 - word_index_bits)

    def seen_then_add(self, keys: np.ndarray) -> np.ndarray:
        """For each key: whether it may have been added before, by an earlier call or earlier in
        ``keys``; then all are added. Never False for a key added before."""
        word = keys >> self._shift
        mask = np.zeros(keys.size, dtype=np.uint64)
        for bit in range(BITS_PER_KEY):
            mask |= _ONE << ((keys >> np.uint64(6 * bit)) & _LOW6)
        seen = (self._words[word] & mask) == mask
        seen |= _repeated(keys)
        while word.size:  # keys sharing a word: one of their writes lands each round
            self._words[word] |= mask
            missing = (self._words[word] & mask) != mask
            word, mask = word[missing], mask[missing]
        return seen


def _repeated(keys: np.ndarray) -> np.ndarray:
    """Which keys repeat one earlier in ``keys``, compared on their low 32 bits: every repeated key
    but its first occurrence, and rarely (once in about 2**32 / len(keys)) a different key with the
    same low bits, which only answers a spare "maybe". The sort is of half the bytes, and the exact
    first occurrences are looked for only where a value repeats."""
    low = keys.astype(np.uint32)
    ordered = np.sort(low)
    twice = ordered[1:][ordered[1:] == ordered[:-1]]
    repeated = np.zeros(keys.size, dtype=bool)
    if twice.size:
        at = np.flatnonzero(np.isin(low, twice))
        _, first = np.unique(low[at], return_index=True)
        repeated[at] = True
        repeated[at[first]] = False
    return repeated
