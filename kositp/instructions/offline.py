"""The shipped offline bank: ``prompts/offline_bank/<task_id>.txt``, one instruction per line."""

from __future__ import annotations

import hashlib
from pathlib import Path

from kositp.catalog import SUPERNI_TASKS
from kositp.config import REPO_ROOT

OFFLINE_DIR = REPO_ROOT / "prompts" / "offline_bank"


def bank_file(task_id: str, folder: Path = OFFLINE_DIR) -> Path:
    return folder / f"{task_id}.txt"


def load_offline(task_id: str, folder: Path = OFFLINE_DIR) -> list[str]:
    path = bank_file(task_id, folder)
    if not path.is_file():
        raise FileNotFoundError(f"offline instruction bank has no file for {task_id}: {path}")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def offline_digest(folder: Path = OFFLINE_DIR) -> str:
    """Content hash of the bank, so editing it changes the stage's version."""
    digest = hashlib.sha256()
    for task in SUPERNI_TASKS:
        path = bank_file(task.id, folder)
        digest.update(task.id.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"") + b"\0")
    return digest.hexdigest()[:16]
