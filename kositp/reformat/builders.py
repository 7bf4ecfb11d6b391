"""One builder per seed task: a normalized record in, zero or more (context, query, output) out.

The shapes follow the seed's real rows (``Sample_TaskDataset.jsonl``). A builder returns the
instance *without* its instruction: ``context`` is what the instruction is placed around and
``query`` is what follows it (a question, the 보기 line). :mod:`kositp.reformat.placement` puts the
instruction before the context or between context and query, as the seed row of that task shows.
A builder names the record kinds and qa_types it consumes so the stage can route records
without calling every builder on every record. Text completion reads MRC passages as ``text``
records (one per paragraph) rather than ``mrc`` records, which repeat the passage per question. Bump ``BUILDER_VERSION`` of a task whenever its
output for the same record changes: it is part of that task's sub-version (incremental rebuilds).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from kositp.catalog import SUPERNI_TASKS

UNANSWERABLE = "참고 텍스트에 나와 있지 않아 답변할 수 없음"
SIMPLIFICATION_MAX_CHARS = 50
COMPOSITION_MAX_SENTENCES = 4
Position = Literal["before", "after"]
Record = Mapping[str, Any]


class Built(NamedTuple):
    """One instance's texts. A tuple: a reformat makes one per instance, and a frozen dataclass
    takes twice as long to make."""

    context: str
    query: str
    output: str


@dataclass(frozen=True)
class Builder:
    """``fields``: the record fields ``build`` reads, so that only those columns are read and made
    Python values for its task (tested: the same instances as from whole records)."""

    task_id: str
    kinds: tuple[str, ...]
    qa_types: tuple[str | None, ...] | None  # None: any qa_type
    position: Position
    build: Callable[[Record], Built | None]
    fields: tuple[str, ...]

    def accepts(self, record: Record) -> bool:
        return record["kind"] in self.kinds and (self.qa_types is None or record["qa_type"] in self.qa_types)


def options_line(options: list[str]) -> str:
    """The seed's 보기 line: every option followed by a comma (``보기 : a, b, c,``)."""
    return "보기 : " + " ".join(f"{o}," for o in options)


def _text(record: Record) -> str:
    return (record.get("text") or "").strip()


def _first_answer(record: Record) -> str:
    answers = record.get("answers") or []
    return answers[0].strip() if answers and answers[0] else ""


def _sentences(record: Record) -> list[str]:
    given = [s.strip() for s in (record.get("sentences") or []) if s and s.strip()]
    if given:
        return given
    return [s.strip() for s in re.split(r"(?<=[.!?。])\s+", _text(record)) if s.strip()]


def _stable_int(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")


def _choice_answer(record: Record) -> tuple[str, list[str]] | None:
    answer, options = (
        _first_answer(record),
        [o.strip() for o in record.get("options") or [] if o and o.strip()],
    )
    if not record.get("question") or not answer or answer not in options:
        return None
    return answer, options


def answerability(record: Record) -> Built | None:
    text, question = _text(record), record.get("question") or ""
    if not text or not question:
        return None
    unanswerable = bool(record.get("is_impossible")) or record.get("qa_type") == "unanswerable"
    answer = UNANSWERABLE if unanswerable else _first_answer(record)
    return Built(text, question, answer) if answer else None


def summarization(record: Record) -> Built | None:
    """The seed's table asks for a summary of at least a third of the text's length."""
    text, summary = _text(record), (record.get("summary") or "").strip()
    if not text or not summary or 3 * len(summary) < len(text):
        return None
    return Built(text, "", summary)


def title_generation(record: Record) -> Built | None:
    text, title = _text(record), (record.get("title") or "").strip()
    return Built(text, "", title) if text and title else None


def question_only(record: Record) -> Built | None:
    """Abstractive QA: the question alone, the model answers from what it knows."""
    question, answer = record.get("question") or "", _first_answer(record)
    return Built(question, "", answer) if question and answer else None


def abstractive_objective(record: Record) -> Built | None:
    choice = _choice_answer(record)
    if choice is None:
        return None
    answer, options = choice
    return Built(record["question"], options_line(options), answer)


def extractive(record: Record) -> Built | None:
    text, question, answer = _text(record), record.get("question") or "", _first_answer(record)
    return Built(text, question, answer) if text and question and answer else None


def extractive_objective(record: Record) -> Built | None:
    choice, text = _choice_answer(record), _text(record)
    if choice is None or not text:
        return None
    answer, options = choice
    return Built(text, f"{record['question']}\n\n{options_line(options)}", answer)


def _with_clue(built: Built | None, record: Record) -> Built | None:
    """Explanation tasks: the answer, a newline, then the supporting passage."""
    clue = (record.get("clue") or "").strip()
    if built is None or not clue:
        return None
    return Built(built.context, built.query, f"{built.output}\n{clue}")


def text_completion(record: Record) -> Built | None:
    """A prefix of whole sentences (about a third of the text) in, the rest out."""
    sentences = _sentences(record)
    if len(sentences) < 2:
        return None
    total, cut, running = sum(len(s) for s in sentences), 1, len(sentences[0])
    while cut < len(sentences) - 1 and running * 3 < total:
        running += len(sentences[cut])
        cut += 1
    return Built(" ".join(sentences[:cut]), "", " ".join(sentences[cut:]))


def title_to_contents(record: Record) -> Built | None:
    text, title = _text(record), (record.get("title") or "").strip()
    return Built(title, "", text) if text and title else None


def simplification(record: Record) -> Built | None:
    text, summary = _text(record), (record.get("summary") or "").strip()
    if not text or not summary or len(summary) > SIMPLIFICATION_MAX_CHARS or len(summary) >= len(text):
        return None
    return Built(text, "", summary)


def keyword_tagging(record: Record) -> Built | None:
    text = _text(record)
    keywords = [k.strip() for k in record.get("keywords") or [] if k and k.strip()]
    return Built(text, "", ", ".join(keywords)) if text and keywords else None


def text_composition(record: Record) -> Built | None:
    """Up to four numbered sentences (``문장1 : ...``); one inner sentence is left blank to fill."""
    sentences = _sentences(record)[:COMPOSITION_MAX_SENTENCES]
    if len(sentences) < 3:
        return None
    blank = 1 + _stable_int(record["record_id"], "composition") % (len(sentences) - 2)
    lines = [f"문장{i + 1} : {s}" if i != blank else f"문장{i + 1} : " for i, s in enumerate(sentences)]
    return Built("\n".join(lines), "", f"문장{blank + 1} : {sentences[blank]}")


def summary_expansion(record: Record) -> Built | None:
    text, summary = _text(record), (record.get("summary") or "").strip()
    return Built(summary, "", text) if text and summary and len(summary) < len(text) else None


def table_context(record: Record) -> str:
    text, table = _text(record), (record.get("table_html") or "").strip()
    if table and table in text:
        return text
    return "\n".join(p for p in (text, table) if p)


def table_qa(record: Record) -> Built | None:
    context, question, answer = table_context(record), record.get("question") or "", _first_answer(record)
    if not record.get("table_html") or not question or not answer:
        return None
    return Built(context, question, answer)


def table_to_title(record: Record) -> Built | None:
    title = (record.get("title") or "").strip()
    return Built(table_context(record), "", title) if record.get("table_html") and title else None


def paraphrasing(record: Record) -> Built | None:
    """A summary nearly as long as its text restates it rather than shortening it."""
    text, summary = _text(record), (record.get("summary") or "").strip()
    if not text or not summary or 2 * len(summary) < len(text) or summary == text:
        return None
    return Built(text, "", summary)


def yes_no(record: Record) -> Built | None:
    built = extractive(record)
    return built if built and built.output in ("예", "아니요") else None


def extractive_objective_explanation(record: Record) -> Built | None:
    return _with_clue(extractive_objective(record), record)


def yes_no_explanation(record: Record) -> Built | None:
    return _with_clue(yes_no(record), record)


def abstractive_yes_no(record: Record) -> Built | None:
    built = question_only(record)
    return built if built and built.output in ("예", "아니요") else None


_MRC = ("mrc",)
_TEXT = ("text",)
_QA = ("question", "answers")
_CHOICE = ("question", "answers", "options")
_SUMMARY = ("text", "summary")
_TITLE = ("text", "title")
_SENTENCES = ("text", "sentences")
_TABLE = ("text", "table_html")
_BUILDERS = (
    Builder("task001_answerability_classification", _MRC, ("span", "unanswerable"), "after", answerability,
            (*_TEXT, *_QA, "is_impossible", "qa_type")),
    Builder("task002_summarization", ("summary",), None, "before", summarization, _SUMMARY),
    Builder("task003_title_generation", ("summary", "paper"), None, "before", title_generation, _TITLE),
    Builder("task004_abstractive_qa_objective", _MRC, ("multiple_choice",), "after", abstractive_objective, _CHOICE),
    Builder("task005_abstractive_qa_short_answer", _MRC, ("span",), "after", question_only, _QA),
    Builder("task006_abstractive_qa_long_answer", _MRC, ("long",), "after", question_only, _QA),
    Builder("task007_extractive_qa_objective", _MRC, ("multiple_choice",), "after", extractive_objective,
            (*_TEXT, *_CHOICE)),
    Builder("task008_extractive_qa_yes_no", _MRC, ("yes_no",), "before", yes_no, (*_TEXT, *_QA)),
    Builder("task009_extractive_qa_short_answer", _MRC, ("span",), "after", extractive, (*_TEXT, *_QA)),
    Builder("task010_extractive_qa_long_answer", _MRC, ("long",), "before", extractive, (*_TEXT, *_QA)),
    Builder("task011_text_completion", ("summary", "paper", "text"), None, "before", text_completion, _SENTENCES),
    Builder("task012_title_to_contents", ("summary",), None, "before", title_to_contents, _TITLE),
    Builder("task013_text_simplification", ("summary",), None, "before", simplification, _SUMMARY),
    Builder("task014_keyword_tagging", ("paper",), None, "after", keyword_tagging, ("text", "keywords")),
    Builder("task015_text_composition", ("summary",), None, "before", text_composition, (*_SENTENCES, "record_id")),
    Builder("task016_summary_expansion", ("summary",), None, "after", summary_expansion, _SUMMARY),
    Builder("task017_table_qa_short_answer", ("table_qa",), None, "before", table_qa, (*_TABLE, *_QA)),
    Builder("task018_paraphrasing", ("summary",), None, "after", paraphrasing, _SUMMARY),
    Builder("task019_table_to_title", ("table_qa",), None, "after", table_to_title, (*_TABLE, "title")),
    Builder("task020_abstractive_qa_yes_no", _MRC, ("yes_no",), "before", abstractive_yes_no, _QA),
    Builder("task021_extractive_qa_objective_explanation", _MRC, ("multiple_choice",), "before",
            extractive_objective_explanation, (*_TEXT, *_CHOICE, "clue")),
    Builder("task022_extractive_qa_yes_no_explanation", _MRC, ("yes_no",), "after", yes_no_explanation,
            (*_TEXT, *_QA, "clue")),
)
BUILDERS: dict[str, Builder] = {b.task_id: b for b in _BUILDERS}
assert tuple(BUILDERS) == tuple(t.id for t in SUPERNI_TASKS), "one builder per catalog task, in catalog order"
