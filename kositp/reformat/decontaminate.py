"""Character n-gram overlap with the zero-shot evaluation sets.

Korean has no reliable word boundaries for this purpose (particles attach to words, spacing in
the corpora is inconsistent), so we compare *characters*: text is NFC-normalized, whitespace is
removed, and any shared run of ``n`` characters (13 by default, the GPT-3 paper's 13-gram made
character-level; 13 Hangul syllables is about four to five words) marks a text as contaminated.
N-grams are kept as a sorted array of 64-bit hashes (:mod:`kositp.text_hash`), and texts are
checked in batches: hashing, whitespace removal and lookup are numpy operations, not a Python
loop per window.

Task instances are checked through the *record* they are built from: every text an instance
carries (besides its instruction, checked once per bank, and fixed labels such as ``보기 :``) is
one of its record's fields, a record feeds up to eight tasks, and an MRC passage repeats in every
question's record, so one check per distinct field replaces one per instance. A window that would
span two fields is not checked.
"""

from __future__ import annotations

import csv
import itertools
import json
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kositp.reformat.eval_sources import eval_files
from kositp.text_hash import window_hashes

# What ``str.isspace`` (and ``re``'s ``\s``) calls whitespace; U+3000 is the highest such code point.
_WHITESPACE = np.array([chr(c).isspace() for c in range(0x3002)])
RECORD_TEXT_FIELDS = (
    "title",
    "text",
    "question",
    "answers",
    "options",
    "clue",
    "summary",
    "keywords",
    "table_html",
)
_CHECK_CHARS = 1_000_000  # per hashing call: about 40 bytes of numpy arrays per character
# The filter has about 32 slots per eval n-gram (a few percent of windows pass to the search),
# at most 2^24; a small eval set gets a small table, which stays in the CPU cache.
_FILTER_SLOTS_PER_NGRAM = 32
_FILTER_BITS = (10, 24)


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def eval_texts(path: Path) -> Iterator[str]:
    """Every string field of an eval file (labels are too short to matter at n >= 8)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        for batch in pq.ParquetFile(path).iter_batches():
            for row in batch.to_pylist():
                yield from _strings(row)
    elif suffix in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.reader(fh, delimiter="\t" if suffix == ".tsv" else ","):
                yield from row
    elif suffix == ".txt":
        yield from path.read_text(encoding="utf-8").splitlines()
    else:
        with path.open(encoding="utf-8") as fh:
            if suffix == ".json":
                yield from _strings(json.load(fh))
                return
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield from _strings(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{path}:{lineno}: not valid JSON ({exc})") from exc


class EvalIndex:
    """The n-grams of every eval file under a folder, and checks for training texts."""

    def __init__(self, eval_dir: Path, n: int):
        self.eval_dir, self.n = eval_dir, n
        self.files = eval_files(eval_dir)
        parts = [
            hashes
            for path in self.files
            for hashes, _ in self._hashed([unicodedata.normalize("NFC", t) for t in eval_texts(path)])
        ]
        self.ngrams = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.uint64)
        # A flag per value of a hash's top bits: most windows are rejected by one lookup before the search.
        bits = min(max((self.ngrams.size * _FILTER_SLOTS_PER_NGRAM).bit_length(), _FILTER_BITS[0]), _FILTER_BITS[1])
        self._shift = np.uint64(64 - bits)
        self._maybe = np.zeros(1 << bits, dtype=bool)
        self._maybe[(self.ngrams >> self._shift).astype(np.intp)] = True

    def _hashed(self, texts: Sequence[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Window hashes and offsets of consecutive runs of ``texts`` of about ``_CHECK_CHARS``
        (a run ends with the text that takes it past a multiple of ``_CHECK_CHARS``)."""
        chars = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))
        crossing = np.searchsorted(chars, np.arange(_CHECK_CHARS, chars[-1] if chars.size else 0, _CHECK_CHARS)) + 1
        bounds = np.unique(np.concatenate(([0], crossing, [len(texts)]))).tolist()
        for start, end in itertools.pairwise(bounds):
            yield window_hashes(texts[start:end], self.n, _WHITESPACE)

    def _overlaps(self, texts: Sequence[str]) -> np.ndarray:
        result = np.zeros(len(texts), dtype=bool)
        done = 0
        for flat, offsets in self._hashed(texts):
            candidates = np.flatnonzero(self._maybe[(flat >> self._shift).astype(np.intp)])
            position = np.searchsorted(self.ngrams, flat[candidates]).clip(max=max(self.ngrams.size - 1, 0))
            matched = candidates[self.ngrams[position] == flat[candidates]]
            hits = np.zeros(flat.size + 1, dtype=np.int64)
            hits[matched + 1] = 1
            hits = np.cumsum(hits)
            count = offsets.size - 1
            result[done : done + count] = (
                hits[offsets[1:].astype(np.intp)] > hits[offsets[:-1].astype(np.intp)]
            )
            done += count
        return result

    def overlaps_many(self, texts: Sequence[str]) -> np.ndarray:
        """For each text, whether it shares an n-gram with the eval sets."""
        return self._overlaps([unicodedata.normalize("NFC", t) for t in texts])

    def records_overlap(self, batch: pa.RecordBatch) -> np.ndarray:
        """For each record of a batch, whether any of its text fields shares an n-gram with the eval sets.

        Records come from ingest, NFC already. Equal field values in the batch are hashed once.
        """
        values, owners = [], []
        for name in RECORD_TEXT_FIELDS:
            if name not in batch.schema.names:
                continue
            column = batch.column(name)
            if pa.types.is_list(column.type):
                # ``flatten`` skips what a null list slot may still span; so do these lengths.
                lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy()
                values.append(column.flatten())
                owners.append(np.repeat(np.arange(batch.num_rows), lengths))
            else:
                values.append(column)
                owners.append(np.arange(batch.num_rows))
        result = np.zeros(batch.num_rows, dtype=bool)
        if not values:
            return result
        texts = pa.concat_arrays([v.cast(pa.string()) for v in values])
        owner = np.concatenate(owners)
        # At least n bytes (a character is one to four): a cheap bound that drops nulls and labels.
        present = pc.fill_null(pc.greater_equal(pc.binary_length(texts), self.n), False)
        texts, owner = texts.filter(present), owner[present.to_numpy(zero_copy_only=False)]
        distinct = pc.unique(texts)
        contaminated = self._overlaps(distinct.to_pylist())
        result[owner[contaminated[pc.index_in(texts, value_set=distinct).to_numpy()]]] = True
        return result

    def flag_row_group(self, records: pq.ParquetFile, group: int) -> np.ndarray:
        """:meth:`records_overlap` for one row group of ``records.parquet``, reading its text columns only."""
        names = [c for c in RECORD_TEXT_FIELDS if c in records.schema_arrow.names]
        table = records.read_row_group(group, columns=names, use_threads=False)
        return np.concatenate([np.zeros(0, dtype=bool), *map(self.records_overlap, table.to_batches())])
