"""Plain JSONL / CSV for anything else: one record per line/row, fields found through a column mapping."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from kositp.ingest.adapters.base import Missing, first
from kositp.ingest.guard import MAX_DEPTH, MAX_RECORD_BYTES, deeper_than
from kositp.ingest.quarantine import Reject

DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "text": ("text", "context", "passage", "document", "body", "input"),
    "title": ("title", "doc_title"),
    "doc_id": ("doc_id", "id"),
    "question": ("question", "query"),
    "answers": ("answers", "answer", "output"),
    "summary": ("summary", "abstractive"),
    "keywords": ("keywords",),
    "kind": ("kind",),
}


def _fields(row: Mapping[str, Any], columns: Mapping[str, str]) -> dict[str, Any] | Missing:
    fields: dict[str, Any] = {}
    for field, aliases in DEFAULT_COLUMNS.items():
        fields[field] = row.get(columns[field]) if field in columns else first(dict(row), *aliases)
    if fields["text"] is None:
        return Missing(columns.get("text", "text"))
    answers = fields["answers"]
    fields["answers"] = [] if answers in (None, "") else answers if isinstance(answers, list) else [answers]
    kind = fields.pop("kind")
    fields["kind"] = kind or ("mrc" if fields["question"] else "summary" if fields["summary"] else "text")
    if fields["kind"] == "mrc":
        fields["qa_type"] = "span"
    return fields


def iter_rows(stream: BinaryIO, suffix: str, columns: Mapping[str, str], max_depth: int = MAX_DEPTH,
              max_chars: int = MAX_RECORD_BYTES) -> Iterator[tuple[str, dict[str, Any] | Missing | Reject]]:
    """``(":line", fields)`` per line; a line that is not JSON is a ``malformed_json`` reject, one
    longer than ``max_chars`` (read no further than that) ``too_large``, one nesting deeper than
    ``max_depth`` ``too_deep``."""
    text = io.TextIOWrapper(stream, encoding="utf-8")
    if suffix == ".csv":
        for n, row in enumerate(csv.DictReader(text), start=2):
            yield f":{n}", _fields(row, columns)
        return
    n = 0
    while line := text.readline(max_chars + 1):
        n += 1
        if len(line) > max_chars and not line.endswith("\n"):
            while (rest := text.readline(1 << 20)) and not rest.endswith("\n"):
                pass
            yield f":{n}", Reject("", "too_large", f"a line longer than {max_chars} characters")
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            too_deep = line.count("[") + line.count("{") > max_depth and deeper_than(row, max_depth)
        except json.JSONDecodeError as exc:
            yield f":{n}", Reject("", "malformed_json", str(exc))
            continue
        except RecursionError:
            too_deep = True
        if too_deep:
            yield f":{n}", Reject("", "too_deep", f"nested deeper than {max_depth} levels")
            continue
        yield f":{n}", _fields(row, columns) if isinstance(row, dict) else Missing("object")
