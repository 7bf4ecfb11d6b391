"""A parsed unit made a record: checked where it is read, completed where it is written.

The checks read only the passage (text or table), the answers and the summary, so only those
are normalized before them. The remaining fields are normalized where the record is written,
a batch of columns at a time (:func:`complete`). Normalizing is about a third of the read loop,
and on two cores records are written by a second process (:mod:`kositp.ingest.candidates`),
so this part of it runs beside the reading instead of after it. A record is the same whichever
process completes it: both call the same normalization.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from kositp.ingest.normalize import normalize_list, normalize_text
from kositp.ingest.quarantine import Reject
from kositp.records import RECORD_FIELDS

if TYPE_CHECKING:  # the candidate worker imports this module and never opens a source
    from kositp.ingest.readers import Source

SPAN_TYPES = {"span", "long", "table"}
CHECKED_TEXT_FIELDS = ("text", "table_html", "summary")
LATER_TEXT_FIELDS = ("title", "question", "clue", "doc_id")
LATER_LIST_FIELDS = ("options", "keywords")
_EMPTY_RECORD = dict.fromkeys(RECORD_FIELDS)


def checked_record(fields: dict[str, Any], source: Source, fmt: str, location: str, max_chars: int) -> dict[str, Any] | Reject:
    """The record (``RECORD_FIELDS``, the later fields as the adapter gave them), or why it is rejected.

    Keys an adapter adds beyond ``RECORD_FIELDS`` ride along unread: records are taken apart
    field by field (:class:`kositp.ingest.candidates.Candidates`), and one merge is cheaper than
    filtering them out.
    """
    record: dict[str, Any] = _EMPTY_RECORD | fields
    for name in CHECKED_TEXT_FIELDS:
        if record[name] is not None:  # most records have one or two of these; None stays None
            record[name] = normalize_text(record[name]) or None
    answers = record["answers"] = normalize_list(record["answers"]) if record["answers"] is not None else []
    record["is_impossible"] = bool(record["is_impossible"])
    record.update(source_dataset=source.source_dataset, source_file=source.source_file, location=location, format=fmt)
    text = record["text"] or record["table_html"]
    if not text:
        return Reject(location, "empty_text", "no passage text after normalization")
    if len(text) > max_chars:
        return Reject(location, "too_long", f"{len(text)} characters > max_chars {max_chars}")
    record["answer_start"] = None
    if record["kind"] in ("mrc", "table_qa") and not record["is_impossible"]:
        if not answers:
            return Reject(location, "missing_field", "answers")
        if record["qa_type"] in SPAN_TYPES:
            start = text.find(answers[0])
            if start < 0:
                return Reject(location, "answer_not_in_context", f"answer {answers[0][:40]!r} not in context")
            given = fields.get("answer_start")
            record["answer_start"] = given if isinstance(given, int) and text.startswith(answers[0], given) else start
    if record["kind"] == "summary" and not record["summary"]:
        return Reject(location, "missing_field", "summary")
    return record


def complete(columns: MutableMapping[str, Sequence[Any]]) -> None:
    """Normalize the fields :func:`checked_record` left as given, for a batch of records held as columns
    (``text`` normalized already, as :func:`checked_record` leaves it)."""
    for name in LATER_TEXT_FIELDS:
        columns[name] = [None if value is None else normalize_text(value) or None for value in columns[name]]
    for name in LATER_LIST_FIELDS:
        columns[name] = [[] if value is None else normalize_list(value) for value in columns[name]]
    columns["sentences"] = [_sentences(value, text) for value, text in zip(columns["sentences"], columns["text"], strict=True)]


def _sentences(sentences: Any, text: str | None) -> list[str]:
    """The sentences of a record, normalized.

    A document's text is its sentences joined by spaces. When that normalized text is printable
    (no control or format characters, no whitespace but the plain space) and still equals the
    joined sentences, each sentence is normalized already: normalizing one could only strip a
    space at its ends, which the text would show doubled, or compose across its ends, which a
    space blocks. So one join and compare, instead of a normalization per sentence.
    """
    if sentences is None:
        return []
    if isinstance(sentences, list) and text is not None and text.isprintable():
        try:
            if " ".join(sentences) == text:
                return sentences
        except TypeError:  # a tabular source gave something other than strings
            pass
    return normalize_list(sentences)
