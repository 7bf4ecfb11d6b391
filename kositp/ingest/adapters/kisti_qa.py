"""KISTI Korean paper QA: one JSON per paper, the full text as ``context`` and ``qas`` of
``question`` + ``answer: {answer_text, answer_start}`` + ``keyword``.

The record schema has no place for ``level`` (question difficulty), so it is not kept. A full
paper is often longer than ``max_chars`` (20,000 characters by default) and is then quarantined
as ``too_long``: raise ``max_chars`` to keep such papers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from kositp.ingest.adapters.base import Missing, as_id, first, ko
from kositp.ingest.normalize import normalize_list

NAME = "kisti_qa"
# A paper's text can be longer than the detection head, hiding ``qas``: the file then shows only
# how it starts, an object whose first keys are ``doc_id`` (optional) and ``context``.
_STARTS_LIKE_A_PAPER = re.compile(r'^\s*\[?\s*\{\s*(?:"doc_id"\s*:\s*(?:"[^"]*"|-?\d+)\s*,\s*)?"context"\s*:')


def detect(head: str) -> bool:
    if '"paragraphs"' in head or '"context_info"' in head:
        return False
    return ('"qas"' in head and '"answer_text"' in head) or bool(_STARTS_LIKE_A_PAPER.match(head))


def prefix(head: str) -> str:
    return "item" if head.lstrip().startswith("[") else ""


def _keywords(value: Any) -> list[str]:
    """``keyword`` as ``{"keyword_text": ...}``, a list of those, or plain strings."""
    items = value if isinstance(value, list) else [value]
    found: list[Any] = []
    for item in items:
        found.extend(normalize_list(ko(first(item, "keyword_text", "text")) if isinstance(item, dict) else item))
    return found


def parse(doc: Any, path: str) -> Iterator[tuple[str, dict[str, Any] | Missing]]:
    if not isinstance(doc, dict) or doc.get("context") is None:
        yield path, Missing("context")
        return
    if not isinstance(doc.get("qas"), list):
        yield path, Missing("qas")
        return
    common = {"kind": "mrc", "qa_type": "span", "doc_id": as_id(first(doc, "doc_id", "id")),
              "title": ko(doc.get("title")), "text": doc["context"]}
    for k, qa in enumerate(doc["qas"]):
        qa = qa if isinstance(qa, dict) else {}
        answer = qa.get("answer")
        text = first(answer, "answer_text", "text") if isinstance(answer, dict) else answer
        if qa.get("question") is None or text is None:
            yield f"{path}/qas/{k}", Missing("question" if qa.get("question") is None else "answer.answer_text")
            continue
        yield f"{path}/qas/{k}", {**common, "question": qa["question"], "answers": [str(text)],
                                  "answer_start": answer.get("answer_start") if isinstance(answer, dict) else None,
                                  "keywords": _keywords(qa.get("keyword"))}
