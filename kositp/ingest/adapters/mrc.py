"""SQuAD-like machine reading comprehension: ``data`` -> ``paragraphs`` -> ``context`` + ``qas``.

Covers AIHub 569 (administrative documents; ``answers`` a dict with ``clue_text`` and
``options``), 577 (news; ``answers`` a dict or a list), 89 (SQuAD v1 list of answers) and
singular ``answer``. ``qa_type`` codes: 1 span, 2 long span, 3 table, 5 yes/no, 6 multiple
choice, 7 unanswerable. Paragraphs without questions (no ``qas``, as in the ``TS_`` source-text
files, or ``"qas": []``) become ``text`` records.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kositp.ingest.adapters.base import Missing, as_id, first, ko, passages, top_list_prefix
from kositp.ingest.normalize import extract_table

NAME = "mrc"
QA_TYPE_CODES = {1: "span", 2: "long", 3: "table", 5: "yes_no", 6: "multiple_choice", 7: "unanswerable"}
YES_NO = {"yes": "예", "no": "아니요", "예": "예", "네": "예", "아니오": "아니요", "아니요": "아니요"}


def detect(head: str) -> bool:
    return '"paragraphs"' in head and ('"qas"' in head or '"context"' in head)


def prefix(head: str) -> str:
    return top_list_prefix(head, "data")


def parse(doc: Any, path: str, force_table: bool = False) -> Iterator[tuple[str, dict[str, Any] | Missing]]:
    if not isinstance(doc, dict) or not isinstance(doc.get("paragraphs"), list) or not doc["paragraphs"]:
        yield path, Missing("paragraphs")
        return
    title = ko(first(doc, "doc_title", "title"))
    doc_id = as_id(first(doc, "doc_id", "id"))
    for ppath, paragraph, context in passages(doc["paragraphs"], f"{path}/paragraphs"):
        if isinstance(context, Missing):
            yield ppath, context
            continue
        qas = paragraph.get("qas")
        table_title = paragraph.get("table_title")
        if qas is None or qas == []:
            yield ppath, {"kind": "text", "title": title, "doc_id": doc_id, "text": context}
            continue
        if not isinstance(qas, list):
            yield ppath, Missing("qas")
            continue
        for k, qa in enumerate(qas):
            qpath = f"{ppath}/qas/{k}"
            if not isinstance(qa, dict) or qa.get("question") is None:
                yield qpath, Missing("question")
                continue
            fields = qa_fields(qa, context, force_table or table_title is not None)
            fields.update(title=table_title or title, doc_id=doc_id)
            yield qpath, fields


def _answer_list(qa: dict[str, Any]) -> list[dict[str, Any]]:
    raw = first(qa, "answers", "answer")
    if raw is None:
        return []
    if isinstance(raw, dict):
        return [raw]
    if not isinstance(raw, list):  # one answer given bare: a string, or a number
        return [{"text": raw}]
    return [a if isinstance(a, dict) else {"text": a} for a in raw]


def _qa_type(code: Any, is_impossible: bool, options: Any, texts: list[str], table: bool) -> str:
    if is_impossible:
        return "unanswerable"
    number = _type_code(code)
    if number is not None and number in QA_TYPE_CODES:
        return QA_TYPE_CODES[number]
    if table:
        return "table"
    if options:
        return "multiple_choice"
    if texts and all(str(t).strip().lower() in YES_NO for t in texts):
        return "yes_no"
    return "span"


def _type_code(code: Any) -> int | None:
    """``qa_type`` as a number (AIHub gives ``1`` or ``"1"``); anything else is no code, and the type is inferred."""
    try:
        return int(code)
    except (TypeError, ValueError, OverflowError):
        return None


def qa_fields(qa: dict[str, Any], context: Any, table: bool = False) -> dict[str, Any]:
    """One question's fields; an unanswerable question keeps its plausible answer out of ``answers``."""
    answers = _answer_list(qa)
    head = answers[0] if answers else {}
    texts = [str(a["text"]) for a in answers if a.get("text") is not None]
    options = first(head, "options") or qa.get("options")
    is_impossible = bool(qa.get("is_impossible")) or qa.get("qa_type") == 7
    qa_type = _qa_type(qa.get("qa_type"), is_impossible, options, texts, table)
    if qa_type == "yes_no":
        texts = [YES_NO.get(t.strip().lower(), t) for t in texts]
    return {
        "kind": "table_qa" if qa_type == "table" else "mrc",
        "qa_type": qa_type,
        "text": context,
        "question": qa["question"],
        "answers": [] if is_impossible else texts,
        "answer_start": None if is_impossible else head.get("answer_start"),
        "options": options or [],
        "clue": first(head, "clue_text") or qa.get("clue_text"),
        "is_impossible": is_impossible,
        "table_html": extract_table(context) if qa_type == "table" else None,
    }
