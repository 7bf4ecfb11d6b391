"""Rules every candidate instruction must pass before it enters the bank.

Each rule names its rejection reason, so a run can report *why* candidates were dropped. The
near-duplicate rule is the Self-Instruct/KoAlpaca one (ROUGE-L F > 0.7 against any accepted
instruction), computed on whitespace tokens here because rouge-score's default tokenizer drops
Hangul and would call every pair of Korean sentences identical (empty).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MIN_CHARS = 8
MAX_CHARS = 200
MIN_KOREAN_RATIO = 0.6
MAX_ROUGE_L = 0.7
UNANSWERABLE_REPLY = "참고 텍스트에 나와 있지 않아 답변할 수 없음"

_HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
_LETTER = re.compile(r"[^\W\d_]")
_NUMBERING = re.compile(r"^\s*(\(?\d+[.)\]:]|[-*•·▪●○]|[①-⑳]|[가-하][.)]\s)")
_LEFTOVER = re.compile(r"[{}<>\[\]#`]|instruction|지시문\s*:|예시\s*\d|\.\.\.|…|TODO|\$\w", re.IGNORECASE)
_QUOTES = "\"'“”‘’「」『』«»"

YES_NO_TASKS = frozenset({"task008_extractive_qa_yes_no", "task020_abstractive_qa_yes_no",
                          "task022_extractive_qa_yes_no_explanation"})
CHOICE_TASKS = frozenset({"task004_abstractive_qa_objective", "task007_extractive_qa_objective",
                          "task021_extractive_qa_objective_explanation"})
EXPLANATION_TASKS = frozenset({"task021_extractive_qa_objective_explanation",
                               "task022_extractive_qa_yes_no_explanation"})
ANSWERABILITY_TASK = "task001_answerability_classification"


@dataclass(frozen=True)
class Rejection:
    reason: str
    detail: str = ""


def korean_ratio(text: str) -> float:
    letters = _LETTER.findall(text)
    return sum(1 for ch in letters if _HANGUL.match(ch)) / len(letters) if letters else 0.0


def rouge_l(a: Sequence[str], b: Sequence[str]) -> float:
    """ROUGE-L F1 of two token sequences (LCS by dynamic programming, one row at a time)."""
    if not a or not b:
        return 0.0
    prev = [0] * (len(b) + 1)
    for x in a:
        row = [0]
        for j, y in enumerate(b):
            row.append(prev[j] + 1 if x == y else max(prev[j + 1], row[j]))
        prev = row
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


def tokens(text: str) -> list[str]:
    """Whitespace tokens without punctuation: Korean eojeol, the unit ROUGE-L compares.

    The answerability task's mandated reply sentence is left out: every instruction of that task
    must contain it, so it says nothing about whether two instructions are near copies.
    """
    text = text.replace(UNANSWERABLE_REPLY, " ")
    return [t for t in (w.strip(".,!?;:'\"") for w in text.split()) if t]


def task_fit(task_id: str, text: str) -> Rejection | None:
    """The task's own requirement: the instruction must tell the model what form the answer takes."""
    if task_id in YES_NO_TASKS and not ("예" in text and re.search("아니[오요]", text)):
        return Rejection("task_fit", "yes/no task must ask for 예/아니오")
    if task_id in CHOICE_TASKS and "보기" not in text:
        return Rejection("task_fit", "multiple-choice task must mention 보기")
    if task_id in EXPLANATION_TASKS and "근거" not in text:
        return Rejection("task_fit", "explanation task must ask for 근거")
    if task_id == ANSWERABILITY_TASK and UNANSWERABLE_REPLY not in text:
        return Rejection("task_fit", f"answerability task must say to answer {UNANSWERABLE_REPLY!r}")
    return None


def check_text(task_id: str, text: str) -> Rejection | None:
    """Every rule except near-duplication (which needs the accepted set)."""
    if "\n" in text or "\r" in text:
        return Rejection("multiline")
    if len(text) < MIN_CHARS:
        return Rejection("too_short", f"{len(text)} < {MIN_CHARS} chars")
    if len(text) > MAX_CHARS:
        return Rejection("too_long", f"{len(text)} > {MAX_CHARS} chars")
    if _NUMBERING.match(text):
        return Rejection("numbering")
    if text[0] in _QUOTES or text[-1] in _QUOTES:
        return Rejection("quoted")
    if _LEFTOVER.search(text):
        return Rejection("template_leftover", _LEFTOVER.search(text).group(0))
    if korean_ratio(text) < MIN_KOREAN_RATIO:
        return Rejection("not_korean", f"Korean ratio {korean_ratio(text):.2f} < {MIN_KOREAN_RATIO}")
    return task_fit(task_id, text)


def normalize(text: str) -> str:
    return " ".join(text.split())


@dataclass
class TaskBank:
    """The accepted instructions of one task, with rejection counts by reason."""

    task_id: str
    accepted: list[str] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    _tokens: list[list[str]] = field(default_factory=list)

    def check(self, text: str) -> Rejection | None:
        text = normalize(text)
        found = check_text(self.task_id, text)
        if found:
            return found
        candidate = tokens(text)
        for other, other_tokens in zip(self.accepted, self._tokens):
            score = rouge_l(candidate, other_tokens)
            if score > MAX_ROUGE_L:
                return Rejection("near_duplicate", f"ROUGE-L {score:.2f} with {other!r}")
        return None

    def offer(self, text: str) -> bool:
        """Accept ``text`` if it passes every rule; otherwise count the reason."""
        text = normalize(text)
        found = self.check(text)
        if found:
            self.rejected[found.reason] += 1
            return False
        self.add(text)
        return True

    def add(self, text: str) -> None:
        """Record an instruction accepted earlier (resume) without re-checking it."""
        self.accepted.append(normalize(text))
        self._tokens.append(tokens(text))

    def extend(self, texts: Iterable[str]) -> int:
        return sum(self.offer(t) for t in texts)
