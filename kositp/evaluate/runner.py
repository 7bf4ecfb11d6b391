"""Run one method over the loaded sets and collect predictions and metrics.

``choice`` picks the label word with the highest log-likelihood: deterministic, every example
gets a label. Label words differ in length (``중립`` against ``사회적 편견 없음``), and a summed
log-likelihood favours short ones; ``choice_scoring="per_byte"`` divides each label's score by its
UTF-8 length, as lm-eval's ``acc_norm`` does. ``generate`` follows the seed: sample, cut at ``$&%``; an answer that is not exactly
a label word is stored as ``invalid`` (so that ``prediction`` in predictions.parquet yields the
strict macro F1 directly), and the seed's metric (invalid dropped) is reported beside it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kositp.errors import PermanentError
from kositp.evaluate.backends import Backend, Sampling
from kositp.evaluate.calibration import argmax_labels, score_metrics
from kositp.evaluate.loaders import Example
from kositp.evaluate.metrics import INVALID, predicted_words, set_metrics
from kositp.evaluate.prompts import SetPrompt
from kositp.evaluate.sets import eval_set, load_set
from kositp.models.prompt_format import cut_at_stop
from kositp.reporting import ConsoleReporter, Reporter

METHODS = ("choice", "generate")
CHOICE_SCORING = ("sum", "per_byte")


def normalised_scores(scores: Sequence[float], labels: Sequence[str], scoring: str) -> list[float]:
    """Label scores as compared: summed log-likelihoods, or per UTF-8 byte of the label word."""
    if scoring == "sum":
        return list(scores)
    if scoring == "per_byte":
        return [score / len(label.encode("utf-8")) for score, label in zip(scores, labels)]
    raise ValueError(f"unknown choice scoring {scoring!r} ({', '.join(CHOICE_SCORING)})")


def parse_generation(raw: str, labels: Sequence[str]) -> str:
    """The label word the seed would accept from a raw generation, or ``invalid``."""
    answer, _ = cut_at_stop(raw)
    return answer if answer in labels else INVALID


def predict(
    examples: Sequence[Example],
    prompt: SetPrompt,
    backend: Backend,
    method: str,
    sampling: Sampling,
    reporter: Reporter,
    choice_scoring: str = "sum",
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Predictions for one set, and for ``choice`` the label scores (examples x labels) they came from."""
    labels = prompt.label_words
    prompts = [prompt.render(e.text) for e in examples]
    name = examples[0].set if examples else ""
    scores: np.ndarray | None = None
    with reporter.progress(f"{name} ({method}, {backend.name})", len(prompts)) as advance:
        if method == "choice":
            scores = np.array(
                [normalised_scores(r, labels, choice_scoring) for r in backend.choose(prompts, labels, advance)],
                dtype=float,
            ).reshape(len(prompts), len(labels))
            predictions = predicted_words(argmax_labels(scores), labels)
            raw = [p if p != INVALID else "" for p in predictions]
            extra = [json.dumps(dict(zip(labels, row)), ensure_ascii=False) for row in scores.tolist()]
        elif method == "generate":
            raw = backend.generate(prompts, sampling, advance)
            predictions = [parse_generation(r, labels) for r in raw]
            extra = [""] * len(raw)
        else:
            raise ValueError(f"unknown method {method!r} ({', '.join(METHODS)})")
    frame = pd.DataFrame(
        {
            "set": [e.set for e in examples],
            "id": [e.id for e in examples],
            "gold": [e.gold for e in examples],
            "raw_output": raw,
            "prediction": predictions,
            "label_scores": extra,
        }
    )
    return frame, scores


def with_calibrated(frame: pd.DataFrame, scores: np.ndarray, offsets: dict[str, float]) -> pd.DataFrame:
    """The set's predictions with the batch-calibrated scores and the predictions they give."""
    labels = list(offsets)
    calibrated = scores - np.array([offsets[label] for label in labels])
    return frame.assign(
        calibrated_prediction=predicted_words(argmax_labels(calibrated), labels),
        calibrated_scores=[json.dumps(dict(zip(labels, row)), ensure_ascii=False) for row in calibrated.tolist()],
    )


def evaluate_sets(
    data_dir: Path,
    sets: Sequence[str],
    prompts: dict[str, SetPrompt],
    backend: Backend,
    method: str,
    *,
    limit: int | None = None,
    seed_sample: bool = False,
    sampling: Sampling | None = None,
    seed: int = 0,
    reporter: Reporter | None = None,
    choice_scoring: str = "sum",
    calibration: str = "none",
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Predictions for every set (one frame) and per-set metrics, keyed by set name."""
    reporter = reporter or ConsoleReporter()
    sampling = sampling or Sampling()
    frames, metrics = [], {}
    for name in sets:
        check_prompt(name, prompts)
        labels = prompts[name].label_words
        examples = load_set(name, data_dir, prompts[name].labels, limit=limit, seed_sample=seed_sample, seed=seed)
        reporter.info(f"{name}: {len(examples)} examples from {data_dir}")
        frame, scores = predict(examples, prompts[name], backend, method, sampling, reporter, choice_scoring)
        gold = frame["gold"].tolist()
        if scores is None:
            figures = set_metrics(gold, frame["prediction"].tolist(), labels, seed)
        else:
            figures = score_metrics(gold, scores, labels, calibration == "batch", seed)
            if figures["calibration"]["method"] == "batch":
                frame = with_calibrated(frame, scores, figures["calibration"]["offsets"])
        frames.append(frame)
        metrics[name] = {
            "method": method,
            "backend": backend.name,
            **({"choice_scoring": choice_scoring} if method == "choice" else {}),
            **figures,
        }
        reporter.info(summary_line(name, metrics[name]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(), metrics


class PromptMismatch(PermanentError, KeyError):
    """A prompt set without a prompt for a set, or without a label word for one of its labels."""


def check_prompt(name: str, prompts: dict[str, SetPrompt]) -> None:
    if name not in prompts:
        raise PromptMismatch(f"no prompt for set {name!r} in the prompt set")
    missing = [raw for raw in eval_set(name).raw_labels if raw not in prompts[name].labels]
    if missing:
        raise PromptMismatch(f"the prompt for set {name!r} gives no label word for its label(s) {', '.join(missing)}")


def summary_line(name: str, m: dict[str, Any]) -> str:
    """One line per set: the raw figures, then the calibrated ones where there are."""
    line = f"{name}: macro F1 {m['macro_f1']:.4f}, coverage {m['coverage']:.1%}, seed metric {m['seed_macro_f1']:.4f}"
    if m.get("auc") is not None:
        line += f", AUC {m['auc']:.3f}"
    if "calibrated" in m:
        line += f"; calibrated macro F1 {m['calibrated']['macro_f1']:.4f}"
    return line
