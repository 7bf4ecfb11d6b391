"""Table QA (AIHub 71565): the MRC wrapper with ``table_title`` per paragraph and singular ``answer``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kositp.ingest.adapters import mrc
from kositp.ingest.adapters.base import Missing

NAME = "table_qa"
MORE_SPECIFIC_THAN = ("mrc",)  # its files carry MRC's paragraphs and qas too


def detect(head: str) -> bool:
    return '"table_title"' in head and '"qas"' in head


prefix = mrc.prefix


def parse(doc: Any, path: str) -> Iterator[tuple[str, dict[str, Any] | Missing]]:
    return mrc.parse(doc, path, force_table=True)
