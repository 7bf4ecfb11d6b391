"""One JSON per passage: book summaries (AIHub 93: ``passage`` + ``summary``) and summary/report
generation (AIHub 582: ``Meta(Refine).passage`` + ``Annotation.summary1``, typos as published)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kositp.ingest.adapters.base import Missing, as_id, first

NAME = "passage_summary"


def detect(head: str) -> bool:
    return '"Meta(Refine)"' in head or ('"passage"' in head and '"summary"' in head)


def prefix(head: str) -> str:
    return "item" if head.lstrip().startswith("[") else ""


def parse(doc: Any, path: str) -> Iterator[tuple[str, dict[str, Any] | Missing]]:
    if not isinstance(doc, dict):
        yield path, Missing("passage")
        return
    if "Meta(Refine)" in doc:
        meta = doc.get("Meta(Acqusition)") or doc.get("Meta(Acquisition)") or {}
        passage = (doc.get("Meta(Refine)") or {}).get("passage")
        summary = first(doc.get("Annotation") or {}, "summary1", "summary2", "summary3")
    else:
        meta = doc.get("metadata") or {}
        passage, summary = doc.get("passage"), doc.get("summary")
    if passage is None or summary is None:
        yield path, Missing("passage" if passage is None else "summary")
        return
    yield path, {
        "kind": "summary",
        "doc_id": as_id(first(meta, "doc_id", "passage_id") or doc.get("passage_id")),
        "title": first(meta, "doc_name", "title"),
        "text": passage,
        "summary": summary,
    }
