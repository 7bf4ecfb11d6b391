"""Character n-gram overlap with the zero-shot evaluation sets.

Korean has no reliable word boundaries for this purpose (particles attach to words, spacing in
the corpora is inconsistent), so we compare *characters*: text is NFC-normalized, whitespace is
removed, and any shared run of ``n`` characters (13 by default, the GPT-3 paper's 13-gram made
character-level; 13 Hangul syllables is about four to five words) marks a training instance as
contaminated. N-grams are kept as a sorted array of 64-bit hashes (:mod:`kositp.text_hash`), and
training texts are checked in batches: hashing and lookup are numpy operations, not a Python
loop per window, which made this check most of the reformat stage's time.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from kositp.text_hash import window_hashes

EVAL_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".txt", ".parquet")
_SPACE = re.compile(r"\s+")
_FILTER_BITS = 24
_FILTER_MASK = np.uint64((1 << _FILTER_BITS) - 1)


def squeeze(text: str) -> str:
    return _SPACE.sub("", unicodedata.normalize("NFC", text))


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def eval_files(eval_dir: Path) -> list[Path]:
    if not eval_dir.is_dir():
        raise FileNotFoundError(f"decontaminate_against: {eval_dir} is not a folder")
    return sorted(p for p in eval_dir.rglob("*") if p.is_file() and p.suffix.lower() in EVAL_SUFFIXES)


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

    CHECK_BATCH = 2000

    def __init__(self, eval_dir: Path, n: int):
        self.n = n
        self.files = eval_files(eval_dir)
        parts = []
        for path in self.files:
            texts = [squeeze(t) for t in eval_texts(path)]
            for start in range(0, len(texts), self.CHECK_BATCH):
                parts.append(window_hashes(texts[start : start + self.CHECK_BATCH], n)[0])
        self.ngrams = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.uint64)
        # A bit per low-24-bit value: most windows are rejected by one lookup before the search.
        self._maybe = np.zeros(1 << _FILTER_BITS, dtype=bool)
        self._maybe[(self.ngrams & _FILTER_MASK).astype(np.intp)] = True

    def overlaps_many(self, texts: Sequence[str]) -> np.ndarray:
        """For each text, whether it shares an n-gram with the eval sets."""
        result = np.zeros(len(texts), dtype=bool)
        for start in range(0, len(texts), self.CHECK_BATCH):
            chunk = [squeeze(t) for t in texts[start : start + self.CHECK_BATCH]]
            flat, offsets = window_hashes(chunk, self.n)
            candidates = np.flatnonzero(self._maybe[(flat & _FILTER_MASK).astype(np.intp)])
            position = np.searchsorted(self.ngrams, flat[candidates]).clip(max=max(self.ngrams.size - 1, 0))
            matched = candidates[self.ngrams[position] == flat[candidates]]
            hits = np.zeros(flat.size + 1, dtype=np.int64)
            hits[matched + 1] = 1
            hits = np.cumsum(hits)
            result[start : start + len(chunk)] = hits[offsets[1:].astype(np.intp)] > hits[offsets[:-1].astype(np.intp)]
        return result


def eval_fingerprint(eval_dir: Path | None) -> str:
    """Content hash of the eval folder: a changed eval set changes every task's sub-version."""
    if eval_dir is None:
        return "none"
    digest = hashlib.sha256()
    for path in eval_files(eval_dir):
        digest.update(str(path.relative_to(eval_dir)).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]
