"""Character n-gram overlap with the zero-shot evaluation sets.

Korean has no reliable word boundaries for this purpose (particles attach to words, spacing in
the corpora is inconsistent), so we compare *characters*: text is NFC-normalized, whitespace is
removed, and any shared run of ``n`` characters (13 by default, the GPT-3 paper's 13-gram made
character-level; 13 Hangul syllables is about four to five words) marks a training instance as
contaminated. N-grams are kept as 64-bit hashes so the eval side fits in memory.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

EVAL_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".txt", ".parquet")
_SPACE = re.compile(r"\s+")


def squeeze(text: str) -> str:
    return _SPACE.sub("", unicodedata.normalize("NFC", text))


def ngram_hashes(text: str, n: int) -> set[int]:
    s = squeeze(text)
    return {hash(s[i : i + n]) for i in range(len(s) - n + 1)}


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
    """The n-grams of every eval file under a folder, and a check for one training text."""

    def __init__(self, eval_dir: Path, n: int):
        self.n = n
        self.files = eval_files(eval_dir)
        self.ngrams: set[int] = set()
        for path in self.files:
            for text in eval_texts(path):
                self.ngrams |= ngram_hashes(text, n)

    def overlaps(self, text: str) -> bool:
        s, n = squeeze(text), self.n
        return any(hash(s[i : i + n]) in self.ngrams for i in range(len(s) - n + 1))


def eval_fingerprint(eval_dir: Path | None) -> str:
    """Content hash of the eval folder: a changed eval set changes every task's sub-version."""
    if eval_dir is None:
        return "none"
    digest = hashlib.sha256()
    for path in eval_files(eval_dir):
        digest.update(str(path.relative_to(eval_dir)).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]
