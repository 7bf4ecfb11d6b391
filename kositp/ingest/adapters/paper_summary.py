"""Paper and patent summarization (AIHub 90): ``summary_entire`` / ``summary_section`` pairs.

AIHub spells the source key ``orginal_text``; ``original_text`` is accepted too. The 2023
release wraps the file in a top-level list (``[{"data": [...]}]``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kositp.ingest.adapters.base import Missing, as_id, first, top_list_prefix

NAME = "paper_summary"
SECTIONS = ("summary_entire", "summary_section")


def detect(head: str) -> bool:
    return any(f'"{s}"' in head for s in SECTIONS)


def prefix(head: str) -> str:
    return top_list_prefix(head, "data")


def parse(doc: Any, path: str) -> Iterator[tuple[str, dict[str, Any] | Missing]]:
    if not isinstance(doc, dict) or not any(isinstance(doc.get(s), list) for s in SECTIONS):
        yield path, Missing("summary_entire|summary_section")
        return
    common = {"kind": "summary", "doc_id": as_id(first(doc, "doc_id", "id")), "title": doc.get("title")}
    for section in SECTIONS:
        for i, pair in enumerate(doc.get(section) or []):
            pair = pair if isinstance(pair, dict) else {}
            original = first(pair, "orginal_text", "original_text")
            summary = first(pair, "summary_text", "summary")
            if original is None or summary is None:
                yield f"{path}/{section}/{i}", Missing("orginal_text" if original is None else "summary_text")
                continue
            yield f"{path}/{section}/{i}", {**common, "text": original, "summary": summary}
