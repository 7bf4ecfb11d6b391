"""Science and technology document MRC (AIHub 71533): one JSON per document.

``dataset.context_info`` holds passages, each with ``qas`` of ``question-1``, an optional
paraphrase ``question-2``, ``answer``, ``answer_start``, ``answer_type``, ``wrong_answer`` and
``clue`` spans. The paraphrase becomes a second record with the same passage, answer and
options (located at ``.../qas/<k>/question-2``): it is a real second wording of the question, and
the reformat split groups by ``doc_id``, so the two never land on different sides.
Multiple-choice options are the answer and the wrong answers sorted by text, so the answer's
position says nothing (the source always lists it apart, first).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kositp.ingest.adapters.base import Missing, as_id, first, ko, passages
from kositp.ingest.adapters.mrc import YES_NO

NAME = "tech_mrc"


def detect(head: str) -> bool:
    return '"context_info"' in head and ('"question-1"' in head or '"dataset"' in head)


def prefix(head: str) -> str:
    return "item" if head.lstrip().startswith("[") else ""


def _qa_type(answer_type: Any, wrong: list[str], answer: str) -> str:
    """``answer_type`` as published ("다지선다형", "Yes/No 단문형", "단답형", "서술형"); inferred when absent."""
    label = str(answer_type or "").lower()
    if "선다" in label or "객관" in label:
        return "multiple_choice"
    if "yes" in label or "예/아니" in label:
        return "yes_no"
    if "서술" in label or "장문" in label:
        return "long"
    if "단답" in label or label:
        return "span"
    if wrong:
        return "multiple_choice"
    return "yes_no" if answer.strip().lower() in YES_NO else "span"


def _texts(value: Any, key: str) -> list[str]:
    """A string, a ``{key: ...}`` object or a list of either, as a list of strings."""
    items = value if isinstance(value, list) else [value]
    found = [item.get(key) if isinstance(item, dict) else item for item in items]
    return [str(t) for t in found if t is not None and str(t).strip()]


def parse(doc: Any, path: str) -> Iterator[tuple[str, dict[str, Any] | Missing]]:
    dataset = doc.get("dataset") if isinstance(doc, dict) else None
    if not isinstance(dataset, dict) or not isinstance(dataset.get("context_info"), list):
        yield path, Missing("dataset.context_info")
        return
    info = doc.get("dataset_info") if isinstance(doc.get("dataset_info"), dict) else {}
    title = ko(first(dataset, "doc_title", "title"))
    doc_id = as_id(first(dataset, "doc_id", "id") or first(info, "doc_id", "id"))
    for ppath, passage, context in passages(dataset["context_info"], f"{path}/dataset/context_info"):
        if isinstance(context, Missing):
            yield ppath, context
            continue
        common = {"kind": "mrc", "title": title, "text": context,
                  "doc_id": doc_id or as_id(passage.get("context_id"))}
        qas = passage.get("qas")
        if not isinstance(qas, list) or not qas:
            yield ppath, Missing("qas")
            continue
        for k, qa in enumerate(qas):
            qpath = f"{ppath}/qas/{k}"
            qa = qa if isinstance(qa, dict) else {}
            question = first(qa, "question-1", "question")
            answers = _texts(qa.get("answer"), "text")
            if question is None or not answers:
                yield qpath, Missing("question-1" if question is None else "answer")
                continue
            wrong = _texts(qa.get("wrong_answer"), "text")
            qa_type = _qa_type(qa.get("answer_type"), wrong, answers[0])
            if qa_type == "multiple_choice" and not wrong:
                yield qpath, Missing("wrong_answer")
                continue
            if qa_type == "yes_no":
                answers = [YES_NO.get(a.strip().lower(), a) for a in answers]
            fields = {**common, "qa_type": qa_type, "question": question, "answers": answers[:1],
                      "answer_start": qa.get("answer_start"),
                      "options": sorted({*answers[:1], *wrong}) if qa_type == "multiple_choice" else [],
                      "clue": "\n".join(_texts(qa.get("clue"), "clue_text")) or None}
            yield qpath, fields
            if qa.get("question-2"):
                yield f"{qpath}/question-2", {**fields, "question": qa["question-2"]}
