"""The evaluation files reformat decontaminates against, and their fingerprint.

Planning computes the fingerprint (it is part of every task's sub-version) before any stage runs,
so this module stays light: decontamination itself is :mod:`kositp.reformat.decontaminate`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from kositp.file_hashes import FileHashes

EVAL_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".txt", ".parquet")


def eval_files(eval_dir: Path) -> list[Path]:
    if not eval_dir.is_dir():
        raise FileNotFoundError(f"decontaminate_against: {eval_dir} is not a folder")
    return sorted(p for p in eval_dir.rglob("*") if p.is_file() and p.suffix.lower() in EVAL_SUFFIXES)


def eval_fingerprint(eval_dir: Path | None) -> str:
    """Content hash of the eval folder: a changed eval set changes every task's sub-version. File
    hashes come from the hash cache (a file unchanged since it was last hashed costs a stat)."""
    if eval_dir is None:
        return "none"
    digest = hashlib.sha256()
    with FileHashes() as hashes:
        for path in eval_files(eval_dir):
            digest.update(str(path.relative_to(eval_dir)).encode())
            digest.update(bytes.fromhex(hashes.sha256(path)))
    return digest.hexdigest()[:16]
