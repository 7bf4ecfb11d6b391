"""Plain JSONL / CSV for anything else: one record per line/row, fields found through a column mapping."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO, TextIO

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
# Past a record's limit, its rest is skipped in pieces of this many characters.
_SKIP_CHARS = 1 << 20


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
    ``max_depth`` ``too_deep``. CSV: ``(":row", fields)`` per row, the header being row 1."""
    text = io.TextIOWrapper(stream, encoding="utf-8")
    if suffix == ".csv":
        yield from _csv_rows(text, columns, max_chars)
        return
    n = 0
    while line := text.readline(max_chars + 1):
        n += 1
        if len(line) > max_chars and not line.endswith("\n"):
            while (rest := text.readline(_SKIP_CHARS)) and not rest.endswith("\n"):
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


class RecordTooLarge(Exception):
    """The CSV record being read is longer than the limit (raised through ``csv.reader``)."""


class BoundedLines:
    """The lines of a CSV file for ``csv.reader``, no record (its lines together) longer than ``max_chars``.

    ``csv.reader`` asks for lines itself and would take a 3 GB line whole, so the limit is kept
    here: the line that crosses it is read no further, :class:`RecordTooLarge` goes up through the
    reader, and :meth:`skip_record` reads on to the record's end. A quoted field may span lines;
    an odd count of quote characters in the record so far means one is still open.
    """

    def __init__(self, text: TextIO, max_chars: int):
        self._text = text
        self._max_chars = max_chars
        self._chars = 0
        self._quotes = 0

    def __iter__(self) -> BoundedLines:
        return self

    def __next__(self) -> str:
        line = self._text.readline(self._max_chars + 1 - self._chars)
        if not line:
            raise StopIteration
        self._chars += len(line)
        self._quotes += line.count('"')
        if self._chars > self._max_chars:
            self.skip_record(line)
            raise RecordTooLarge
        return line

    def start_record(self) -> None:
        self._chars = self._quotes = 0

    def skip_record(self, line: str = "\n") -> None:
        """Read past the rest of the record whose last piece read was ``line``."""
        while line and (not line.endswith("\n") or self._quotes % 2):
            line = self._text.readline(_SKIP_CHARS)
            self._quotes += line.count('"')


def _csv_rows(text: TextIO, columns: Mapping[str, str], max_chars: int) -> Iterator[tuple[str, dict[str, Any] | Missing | Reject]]:
    """Rows under the header's names. A record longer than ``max_chars`` or with a field past the
    csv module's field limit is one ``too_large`` reject, and the rows after it are read."""
    lines = BoundedLines(text, max_chars)
    rows = csv.reader(lines)
    header: list[str] | None = None
    n = 1
    while True:
        lines.start_record()
        try:
            row = next(rows)
        except StopIteration:
            return
        except RecordTooLarge:
            row = Reject("", "too_large", f"a record longer than {max_chars} characters")
        except csv.Error as exc:
            if "field limit" not in str(exc):
                raise
            lines.skip_record()
            row = Reject("", "too_large", f"a field longer than {csv.field_size_limit()} characters")
        if row == []:
            continue
        if header is None:
            if isinstance(row, Reject):
                yield ":1", Reject("", row.reason, f"the header: {row.detail}; the rest of the file is not read")
                return
            header = row
            continue
        n += 1
        yield f":{n}", row if isinstance(row, Reject) else _fields(dict(itertools.zip_longest(header, row)), columns)
