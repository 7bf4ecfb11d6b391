"""Held-in scores: did the model learn the tasks it was taught?

The reformat stage keeps a validation split of every task (whole documents held out of training).
Each example is asked exactly as it was trained (:func:`kositp.models.prompt_format.format_prompt` of the
shard's ``prompt``, the tokenizer's special tokens) and scored by what its task's answer is
(``Task.output_kind``):

- ``label``: yes/no questions and multiple choice are scored by ``choice`` over the example's own
  options (예/아니요, or the 보기 line's options), accuracy and macro F1 (classes: the answer words,
  or for multiple choice the option's position, so a model that always picks the first option is
  seen). Answerability has no closed set of options (an answer span or
  "참고 텍스트에 나와 있지 않아 답변할 수 없음"): its greedy answer is read as a decision,
  answerable or not, and scored as that two-class label.
- ``span``: greedy answer, exact match and character F1 after normalisation (SQuAD's definition
  over characters, as KorQuAD; :mod:`kositp.evaluate.text_metrics`).
- ``free_text``: greedy answer, ROUGE-L F1 over characters.

Every example gets one headline score in [0, 1] (label: correct or not; span: character F1;
free text: ROUGE-L), so a category's mean is the mean over its examples and the base model and the
tuned model are compared example by example (a paired bootstrap of the difference).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kositp.catalog import SUPERNI_TASKS_BY_ID, Task
from kositp.errors import PermanentError
from kositp.evaluate.backends import Backend, Sampling
from kositp.evaluate.metrics import default_macro_f1
from kositp.evaluate.text_metrics import char_f1, exact_match, normalize_answer, rouge_l
from kositp.models.prompt_format import cut_at_stop, format_prompt
from kositp.reformat.builders import UNANSWERABLE
from kositp.reporting import Reporter

CATEGORIES = ("label", "span", "free_text")
HEADLINE = {"label": "accuracy", "span": "char_f1", "free_text": "rouge_l"}
YES_NO = ("예", "아니요")
OPTIONS_PREFIX = "보기 : "
BOOTSTRAP_ROUNDS = 1000


class HeldInError(PermanentError):
    """Validation shards that cannot be scored (a missing folder, a shard without its columns)."""


def options_from_prompt(prompt: str) -> list[str]:
    """The options of the prompt's last 보기 line (``보기 : a, b, c,``: each option followed by a comma and
    a space, as reformat writes it; a comma inside an option, as in 4,273천원, is not followed by one)."""
    lines = [line for line in prompt.splitlines() if line.startswith(OPTIONS_PREFIX)]
    if not lines:
        return []
    return [o.strip() for o in lines[-1][len(OPTIONS_PREFIX) :].rstrip().removesuffix(",").split(", ") if o.strip()]


def yes_no(prompt: str) -> list[str]:
    return list(YES_NO)


# Label tasks scored by choice, and where their options come from; any other label task is
# answerability-like (open answer or a refusal) and is read from its greedy answer.
CHOICE_OPTIONS: dict[str, Callable[[str], list[str]]] = {
    "task004_abstractive_qa_objective": options_from_prompt,
    "task007_extractive_qa_objective": options_from_prompt,
    "task008_extractive_qa_yes_no": yes_no,
    "task020_abstractive_qa_yes_no": yes_no,
}


@dataclass(frozen=True)
class Example:
    task: Task
    id: str
    prompt: str
    reference: str


def load_validation(reformat_dir: Path, limit: int, seed: int = 0) -> list[Example]:
    """Up to ``limit`` validation examples per catalog task (a seeded sample), in task order.

    Shards of other names (supplementary instruction data) are not among the 22 tasks and are left out.
    """
    shards = Path(reformat_dir) / "shards"
    if not shards.is_dir():
        raise HeldInError(f"{shards}: no shards folder (held-in scores need the reformat artifact)")
    examples: list[Example] = []
    for task_id, task in SUPERNI_TASKS_BY_ID.items():
        path = shards / task_id / "validation.parquet"
        if not path.is_file():
            continue
        try:
            frame = pd.read_parquet(path, columns=["id", "prompt", "output"])
        except (KeyError, ValueError, OSError) as exc:
            raise HeldInError(f"{path}: cannot read id, prompt and output ({exc})") from exc
        picked = sorted(random.Random(f"{seed}:{task_id}").sample(range(len(frame)), min(limit, len(frame))))
        examples += [
            Example(task, str(row.id), str(row.prompt), str(row.output))
            for row in frame.iloc[picked].itertuples(index=False)
        ]
    return examples


def _label_score(task_id: str, options: list[str], answer: str, reference: str) -> dict[str, Any]:
    if task_id in CHOICE_OPTIONS:
        gold_class, predicted_class = options.index(reference), options.index(answer)
    else:
        gold_class = int(normalize_answer(reference) == normalize_answer(UNANSWERABLE))
        predicted_class = int(normalize_answer(answer) == normalize_answer(UNANSWERABLE))
    return {"gold_class": gold_class, "predicted_class": predicted_class, "score": float(gold_class == predicted_class)}


def answer(
    examples: Sequence[Example],
    backend: Backend,
    max_new_tokens: int,
    reporter: Reporter,
    model_name: str,
) -> pd.DataFrame:
    """One row per example: the model's answer and its scores (``score`` is the headline)."""
    greedy = Sampling(temperature=0.0, top_k=0, max_new_tokens=max_new_tokens, seed=0)
    rows: list[dict[str, Any]] = []
    with reporter.progress(f"held-in ({model_name}, {backend.name})", len(examples)) as advance:
        generated = [e for e in examples if e.task.id not in CHOICE_OPTIONS]
        texts = backend.generate([format_prompt(e.prompt) for e in generated], greedy, advance)
        answers = {e.id: cut_at_stop(text)[0].strip() for e, text in zip(generated, texts)}
        for example in examples:
            kind = example.task.output_kind
            row: dict[str, Any] = {"task": example.task.id, "category": kind, "id": example.id, "model": model_name}
            options: list[str] = []
            if example.task.id in CHOICE_OPTIONS:
                options = CHOICE_OPTIONS[example.task.id](example.prompt)
                if example.reference not in options:  # a 보기 line that does not parse back: not scored, counted
                    advance(1)
                    rows.append({**row, "answer": "", "reference": example.reference, "score": np.nan})
                    continue
                scores = backend.choose([format_prompt(example.prompt)], options, advance)[0]
                row["answer"] = options[int(np.argmax(scores))]
            else:
                row["answer"] = answers[example.id]
            row["reference"] = example.reference
            if kind == "label":
                row.update(_label_score(example.task.id, options, row["answer"], example.reference))
            elif kind == "span":
                row.update(
                    exact_match=exact_match(row["answer"], example.reference),
                    char_f1=char_f1(row["answer"], example.reference),
                )
                row["score"] = row["char_f1"]
            else:
                row["rouge_l"] = rouge_l(row["answer"], example.reference)
                row["score"] = row["rouge_l"]
            rows.append(row)
    return pd.DataFrame(rows)


def _interval(values: np.ndarray, seed: int) -> list[float] | None:
    if not len(values):
        return None
    rng = np.random.default_rng(seed)
    means = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(BOOTSTRAP_ROUNDS)]
    return [float(v) for v in np.percentile(means, [2.5, 97.5])]


def task_metrics(rows: pd.DataFrame, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per task: n, the category's metrics (label: accuracy and macro F1; span: exact match and
    character F1; free text: ROUGE-L), the headline ``score`` and its 95% bootstrap interval."""
    out: dict[str, dict[str, Any]] = {}
    for task_id, everything in rows.groupby("task", sort=False):
        group = everything[everything["score"].notna()]
        kind = str(everything["category"].iloc[0])
        scores = group["score"].to_numpy(float)
        metrics: dict[str, Any] = {
            "category": kind,
            "n": len(group),
            "unscored": len(everything) - len(group),
            "score": float(scores.mean()) if len(scores) else None,
        }
        if not len(group):
            out[str(task_id)] = metrics
            continue
        if kind == "label":
            gold, pred = group["gold_class"].to_numpy(int), group["predicted_class"].to_numpy(int)
            classes = int(max(gold.max(), pred.max()) + 1)
            metrics.update(accuracy=float(scores.mean()), macro_f1=default_macro_f1(gold, pred, classes))
        elif kind == "span":
            metrics.update(exact_match=float(group["exact_match"].mean()), char_f1=float(scores.mean()))
        else:
            metrics["rouge_l"] = float(scores.mean())
        metrics["score_ci95"] = _interval(scores, seed)
        out[str(task_id)] = metrics
    return out


def category_metrics(rows: pd.DataFrame, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per category: the mean headline score over its examples, with a 95% bootstrap interval."""
    out = {}
    for kind in CATEGORIES:
        scores = rows.loc[(rows["category"] == kind) & rows["score"].notna(), "score"].to_numpy(float)
        if len(scores):
            out[kind] = {"metric": HEADLINE[kind], "n": len(scores), "mean": float(scores.mean()), "ci95": _interval(scores, seed)}
    return out


def paired_difference(tuned: pd.DataFrame, base: pd.DataFrame, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per category, tuned minus base over the same examples, with a paired 95% bootstrap interval."""
    both = tuned.merge(base, on=["task", "id", "category"], suffixes=("_tuned", "_base")).dropna(
        subset=["score_tuned", "score_base"]
    )
    out = {}
    for kind in CATEGORIES:
        diff = (both.loc[both["category"] == kind, "score_tuned"] - both.loc[both["category"] == kind, "score_base"]).to_numpy(float)
        if len(diff):
            out[kind] = {"n": len(diff), "difference": float(diff.mean()), "ci95": _interval(diff, seed)}
    return out


def summarize(tuned: pd.DataFrame, base: pd.DataFrame | None, settings: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """The ``held_in`` block of metrics.json: per model its tasks and categories, and the difference."""
    models = {"tuned": tuned} if base is None else {"tuned": tuned, "base": base}
    summary: dict[str, Any] = {
        "settings": settings,
        "models": {name: {"tasks": task_metrics(rows, seed), "categories": category_metrics(rows, seed)} for name, rows in models.items()},
    }
    if base is not None:
        summary["difference"] = paired_difference(tuned, base, seed)
    return summary
