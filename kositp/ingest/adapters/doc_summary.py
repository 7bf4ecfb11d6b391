"""Document summarization (AIHub 97: news, editorials, law): ``documents`` with sentence-split text.

``text`` is [paragraph][sentence] of ``{index, sentence}``; ``abstractive`` is a list or a
string; ``extractive`` holds global sentence indices (unsorted, sometimes null), kept in order as
the record's ``clue`` (the extractive summary sentences joined by newlines).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kositp.ingest.adapters.base import Missing, as_id, first

NAME = "doc_summary"


def detect(head: str) -> bool:
    return '"documents"' in head and ('"abstractive"' in head or '"extractive"' in head or '"sentence"' in head)


def prefix(head: str) -> str:
    return "documents.item"


def _sentences(text: Any) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for paragraph in text or []:
        for item in paragraph if isinstance(paragraph, list) else [paragraph]:
            if isinstance(item, dict) and item.get("sentence"):
                found.append((int(item.get("index", len(found))), str(item["sentence"])))
            elif isinstance(item, str):
                found.append((len(found), item))
    return sorted(found)


def parse(doc: Any, path: str) -> Iterator[tuple[str, dict[str, Any] | Missing]]:
    if not isinstance(doc, dict) or doc.get("text") is None:
        yield path, Missing("text")
        return
    if isinstance(doc["text"], str):
        indexed = [(0, doc["text"])]
    else:
        indexed = _sentences(doc["text"])
    by_index = dict(indexed)
    abstractive = doc.get("abstractive")
    if isinstance(abstractive, list):
        abstractive = " ".join(str(a) for a in abstractive if a)
    extractive = [by_index[i] for i in doc.get("extractive") or [] if i is not None and i in by_index]
    yield path, {
        "kind": "summary",
        "doc_id": as_id(first(doc, "id", "doc_id")),
        "title": doc.get("title"),
        "sentences": [s for _, s in indexed],
        "text": " ".join(s for _, s in indexed),
        "summary": abstractive or None,
        "clue": "\n".join(extractive) or None,
    }
