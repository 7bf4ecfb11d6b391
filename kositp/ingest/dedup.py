"""Exact and near-duplicate detection across all sources, in memory that does not grow with input.

A set of every hash seen, or an in-memory LSH index, grows with the corpus (1.8x the peak memory
at 10x the input). Instead, every record contributes keys (one exact key: 64 bits of the SHA-256
of its normalized text, question and summary, which its id also covers; and one key per LSH band
of its MinHash signature) that are appended to partition files on disk. After the read, each
partition is sorted on its own: a record whose key an earlier record already had is a duplicate
of the earliest such record. Memory is one partition at a time plus 9 bytes per record for the
answer, and a fixed-size Bloom filter over the keys (:mod:`kositp.ingest.bloom`) that tells, as
records are added, which ones may be duplicates: the others are known not to be before the read ends.

MinHash signatures (128 slots) are one-permutation MinHash over 5-character shingles hashed in
bulk (:mod:`kositp.text_hash`): each shingle's 64-bit hash picks a slot with its top 7 bits and
competes for that slot's minimum with its low 32 bits, so a signature costs one pass over the
shingles instead of 128 (:func:`signatures`). LSH bands are sized for recall (a pair at the
threshold becomes a candidate with probability 0.99), and every candidate pair is verified on
its signatures, so chance band collisions are not reported as near-duplicates.
Near-duplicate search skips records with a question: MRC questions on one passage share almost
all their text, so only exact duplicates are looked for there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from kositp.ingest.bloom import BloomFilter
from kositp.records import CONTENT_DIGEST
from kositp.text_hash import finalize, window_hashes

SHINGLE = 5
NUM_PERM = 128
SLOT_BITS = 7  # NUM_PERM == 1 << SLOT_BITS
PARTITION_BITS = 6  # at most 8 (a partition number is kept in a byte)
BATCH = 2000
RESOLVE_THREADS = 2
RECORD_ID_BYTES = 24
RECORD_IDS = "record_ids.bin"
NONE = np.iinfo(np.uint32).max
# Signature slots are kept for verification in their low 16 bits: half the bytes on disk, and two
# different minima then look equal once in 65,536 slots, which moves an estimated similarity by at
# most 0.00002.
STORED_SLOT = np.dtype(np.uint16)
# ``sig`` is the row of the record's MinHash signature in signatures.bin, or NONE for an exact key.
ENTRY = np.dtype([("key", "<u8"), ("idx", "<u4"), ("sig", "<u4")])
_EMPTY = np.uint32(np.iinfo(np.uint32).max)
# Where an empty signature slot looks for a value: row j is slot j's own fixed order of all slots.
_PROBES = np.stack([np.random.default_rng([20240607, j]).permutation(NUM_PERM) for j in range(NUM_PERM)])
_MIX1 = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)


def lsh_bands(threshold: float, num_perm: int = NUM_PERM, recall: float = 0.99) -> tuple[int, int]:
    """``(bands, rows)``: the widest bands that still make a pair at ``threshold`` a candidate with
    probability ``recall``. Wide bands keep chance candidates few; every candidate is verified."""
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if 1.0 - (1.0 - threshold**rows) ** bands >= recall:
            return bands, rows
    return num_perm, 1


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per (record, band); equal bands give equal keys, different bands never meet."""
    banded = signatures[:, : bands * rows].astype(np.uint64).reshape(len(signatures), bands, rows)
    keys = np.zeros((len(signatures), bands), dtype=np.uint64)
    for j in range(rows):
        keys = keys * _MIX1 + banded[:, :, j]
    return finalize(keys ^ (np.arange(1, bands + 1, dtype=np.uint64) * _MIX2))


def signatures(flat: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """One 128-slot MinHash signature per row of shingle hashes (:func:`kositp.text_hash.window_hashes`).

    One-permutation hashing (Li, Owen and Zhang 2012): the top bits of a shingle's hash choose its
    slot and the low 32 bits compete for the slot's minimum, so each shingle is touched once; a
    Rust MinHash library that hashed every shingle 128 times, and handed its matrix back as
    Python lists, took four times as long. A short text leaves slots empty: each takes the value
    of the first filled slot in its own fixed random order of the slots (optimal densification,
    Shrivastava 2017), so the share of equal slots estimates the Jaccard similarity with about
    the variance of 128 independent hashes. Rows without shingles are all ``_EMPTY``.
    """
    rows = len(offsets) - 1
    counts = np.diff(offsets.astype(np.int64))
    slot = np.repeat(np.arange(rows, dtype=np.int64) * NUM_PERM, counts) + (flat >> np.uint64(64 - SLOT_BITS)).astype(np.int64)
    table = np.full(rows * NUM_PERM, _EMPTY, dtype=np.uint32)
    np.minimum.at(table, slot, (flat & np.uint64(0xFFFFFFFF)).astype(np.uint32))
    table = table.reshape(rows, NUM_PERM)
    empty = table == _EMPTY
    row, want = np.nonzero(empty & ~empty.all(axis=1, keepdims=True))
    # Filled in place: values are only read from slots that were filled to begin with.
    for probe in _PROBES.T:  # every slot's order holds all slots, so a row with one filled slot ends here
        if not row.size:
            break
        source = probe[want]
        found = ~empty[row, source]
        table[row[found], want[found]] = table[row[found], source[found]]
        row, want = row[~found], want[~found]
    return table


@dataclass
class Duplicates:
    """For record ``i`` (in read order): ``of[i]`` is the earlier record it duplicates, or ``NONE``."""

    of: np.ndarray
    exact: np.ndarray
    record_ids: np.ndarray

    def __len__(self) -> int:
        return int((self.of != NONE).sum())

    def reason(self, index: int) -> tuple[str, str]:
        """The quarantine reason and detail for duplicate ``index``."""
        original = self.record_ids[self.of[index]].decode()
        if self.exact[index]:
            return "duplicate", f"same normalized text as record {original}"
        return "near_duplicate", f"near-duplicate of record {original}"


def open_record_ids(work_dir: Path, count: int) -> np.ndarray:
    """The record ids in read order, mapped from disk: only the originals named in a detail are read."""
    if not count:
        return np.array([], dtype=f"S{RECORD_ID_BYTES}")
    return np.memmap(work_dir / RECORD_IDS, dtype=f"S{RECORD_ID_BYTES}", mode="r", shape=(count,))


class DuplicateIndex:
    """Collects keys for every kept candidate record (:meth:`add`), then answers :meth:`resolve`."""

    def __init__(self, work_dir: Path, near_threshold: float | None = 0.9):
        work_dir.mkdir(parents=True, exist_ok=True)
        self._dir = work_dir
        self._threshold = near_threshold
        self._bands = lsh_bands(near_threshold) if near_threshold else None
        with ExitStack() as files:
            self._parts = [files.enter_context(open(work_dir / f"keys_{p:02d}.bin", "wb")) for p in range(1 << PARTITION_BITS)]
            self._id_file = files.enter_context(open(work_dir / RECORD_IDS, "wb"))
            self._signatures = files.enter_context(open(work_dir / "signatures.bin", "wb"))
            self._files = files.pop_all()
        self._count = 0
        self._signed = 0
        self._seen = BloomFilter()

    def close(self) -> None:
        self._files.close()

    def add(self, columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
        """Keys for a batch of records held as columns (``record_id``, ``content_digest`` from
        :func:`kositp.records.content_digests`, ``text``, ``question``, ``summary``), ``BATCH`` records
        at a time: MinHash takes about 40 bytes of arrays per character.

        Returns which records may duplicate an earlier one (any of their keys may have been added
        before); :meth:`resolve` finds none among the others.
        """
        count = len(columns["record_id"])
        maybe = [self._add_part(columns["record_id"][part], columns[CONTENT_DIGEST][part], columns["text"][part],
                                columns["question"][part], columns["summary"][part])
                 for part in (slice(at, at + BATCH) for at in range(0, count, BATCH))]
        return np.concatenate(maybe) if maybe else np.zeros(0, dtype=bool)

    def _add_part(self, record_id: Sequence[str], digests: Sequence[bytes], text: Sequence[str | None],
                  question: Sequence[str | None], summary: Sequence[str | None]) -> np.ndarray:
        first, self._count = self._count, self._count + len(record_id)
        exact = np.zeros(len(record_id), dtype=ENTRY)
        exact["key"] = np.frombuffer(b"".join([digest[:8] for digest in digests]), dtype="<u8")
        exact["idx"] = np.arange(first, self._count, dtype=np.uint32)
        exact["sig"] = NONE
        entries = exact
        if self._bands:
            near = [(first + i, f"{t or ''}\x1f\x1f{s or ''}".replace(" ", ""))
                    for i, (t, q, s) in enumerate(zip(text, question, summary, strict=True)) if not q]
            entries = np.concatenate([exact, self._near_entries(near)]) if near else exact
        # A partition number fits a byte, which numpy sorts stably by radix: twenty times faster than as intp.
        partition = (entries["key"] >> np.uint64(64 - PARTITION_BITS)).astype(np.uint8)
        order = np.argsort(partition, kind="stable")
        bounds = np.concatenate(([0], np.cumsum(np.bincount(partition, minlength=1 << PARTITION_BITS))))
        for p, handle in enumerate(self._parts):
            if bounds[p] < bounds[p + 1]:
                handle.write(entries[order[bounds[p] : bounds[p + 1]]].data)
        ids = "".join(record_id).encode("ascii")
        if len(ids) != RECORD_ID_BYTES * len(record_id):
            raise ValueError(f"record ids must be {RECORD_ID_BYTES} ASCII characters (kositp.records.record_ids)")
        self._id_file.write(ids)
        maybe = np.zeros(len(record_id), dtype=bool)
        maybe[entries["idx"][self._seen.seen_then_add(entries["key"])] - first] = True
        return maybe

    def _near_entries(self, near: list[tuple[int, str]]) -> np.ndarray:
        """Band keys of the signatures of ``(index, text)`` pairs; the signatures go to disk for verification."""
        assert self._bands is not None
        bands, rows = self._bands
        flat, offsets = window_hashes([text for _, text in near], SHINGLE)
        has_shingles = np.diff(offsets.astype(np.int64)) > 0
        signed = signatures(flat, offsets)[has_shingles]
        self._signatures.write(signed.astype(STORED_SLOT).data)
        entries = np.zeros((len(signed), bands), dtype=ENTRY)
        entries["key"] = band_keys(signed, bands, rows)
        entries["idx"] = np.array([i for i, _ in near], dtype=np.uint32)[has_shingles, None]
        entries["sig"] = np.arange(self._signed, self._signed + len(signed), dtype=np.uint32)[:, None]
        self._signed += len(signed)
        return entries.ravel()

    def resolve(self) -> Duplicates:
        """Sort each partition: within a run of equal keys, every record after the first is a duplicate
        of the first (for band keys: once their signatures agree on ``threshold`` of the slots).

        Partitions are sorted two at a time on threads (numpy sorts without the GIL): on two cores
        the reader has nothing to do until this ends.
        """
        self._files.close()
        exact_of = np.full(self._count, NONE, dtype=np.uint32)
        near_of = np.full(self._count, NONE, dtype=np.uint32)
        with open(self._signatures.name, "rb") as signatures, ThreadPoolExecutor(RESOLVE_THREADS) as pool:
            for later, first, similar in pool.map(lambda handle: self._repeats(handle.name, signatures), self._parts):
                is_exact = later["sig"] == NONE
                exact_of[later["idx"][is_exact]] = first["idx"][is_exact]
                np.minimum.at(near_of, later["idx"][~is_exact][similar], first["idx"][~is_exact][similar])
        exact = exact_of != NONE
        return Duplicates(np.where(exact, exact_of, near_of), exact, open_record_ids(self._dir, self._count))

    def _repeats(self, path: str, signatures: BinaryIO) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(later, first, similar)`` of one partition: each entry whose key an earlier entry had, the
        first entry with that key, and which band-key pairs verify on their signatures.

        Entries are appended in record order (exact and band keys never share a run), so a stable
        sort on the key alone leaves each run in record order, its first entry the earliest record.
        """
        entries = np.fromfile(path, dtype=ENTRY)
        entries = entries[np.argsort(entries["key"], kind="stable")]
        repeat = np.zeros(entries.size, dtype=bool)
        repeat[1:] = entries["key"][1:] == entries["key"][:-1]
        first = entries[np.maximum.accumulate(np.where(repeat, 0, np.arange(entries.size)))[repeat]]
        later = entries[repeat]
        is_exact = later["sig"] == NONE
        return later, first, self._similar(signatures, later["sig"][~is_exact], first["sig"][~is_exact])

    def _similar(self, signatures: BinaryIO, rows: np.ndarray, originals: np.ndarray) -> np.ndarray:
        """Which candidate pairs agree on at least ``threshold`` of their signature slots.

        Signatures are read with ``pread`` rather than mapped, so only candidates cost memory.
        """
        if not rows.size:
            return np.zeros(0, dtype=bool)
        wanted = np.unique(np.concatenate([rows, originals]))
        width = NUM_PERM * STORED_SLOT.itemsize
        table = np.stack([np.frombuffer(os.pread(signatures.fileno(), width, int(r) * width), dtype=STORED_SLOT) for r in wanted])
        a, b = table[np.searchsorted(wanted, rows)], table[np.searchsorted(wanted, originals)]
        return (a == b).mean(axis=1) >= self._threshold
