"""KISTI papers: title, abstract and author keywords; ``{ko, en}`` variants and HTML abstracts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from kositp.ingest.adapters.base import Missing, as_id, first, ko
from kositp.ingest.normalize import html_to_text, normalize_list

NAME = "kisti_paper"
_HEADING = re.compile(r"^(?:요\s*약|초\s*록|abstract)\s*\n+", re.IGNORECASE)


def detect(head: str) -> bool:
    return '"abstract"' in head and '"keywords"' in head


def prefix(head: str) -> str:
    stripped = head.lstrip()
    if stripped.startswith("["):
        return "item"
    return "data.item" if stripped.startswith("{") and '"data"' in head[:200] else ""


def parse(doc: Any, path: str) -> Iterator[tuple[str, dict[str, Any] | Missing]]:
    if not isinstance(doc, dict) or ko(doc.get("abstract")) is None:
        yield path, Missing("abstract")
        return
    abstract = str(ko(doc["abstract"]))
    if "<" in abstract and ">" in abstract:
        abstract = _HEADING.sub("", html_to_text(abstract))
    yield path, {
        "kind": "paper",
        "doc_id": as_id(first(doc, "doc_id", "id")),
        "title": ko(doc.get("title")),
        "text": abstract,
        "keywords": normalize_list(ko(doc.get("keywords"))),
    }
