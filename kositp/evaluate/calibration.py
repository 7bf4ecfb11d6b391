"""What label scores say beyond the argmax: batch calibration and the separation of the classes.

A small model scored by label log-likelihood leans on one label for nearly every input (Gemma 3
270M answers 긍정 for 196 of 200 NSMC reviews), so its macro F1 measures that prior more than the
task. Two measures look past it, both computed from ``choice``'s label scores alone:

- **Batch calibration** (Zhou et al. 2023, "Batch Calibration: Rethinking Calibration for
  In-Context Learning and Prompt Engineering"): subtract from each label's score its mean over the
  evaluated inputs, then take the argmax. No gold label is used; the offsets are the prior the
  prompt puts on each label word, estimated on the inputs themselves.
- **Separation**: the ROC AUC of the score margin (two labels: first label's score minus the
  second's; more labels: one-vs-rest macro AUC of the labels' softmax). It does not depend on a
  threshold, so a constant prior cannot move it for two labels: it rises only when the scores
  order the inputs by their class, which is what "learned the task" means.

The bootstrap intervals re-estimate the offsets inside every resample, so the calibrated scores'
interval includes the uncertainty of the calibration itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kositp.errors import PermanentError
from kositp.evaluate.metrics import (
    label_indices,
    predicted_words,
    prediction_metrics,
    set_metrics,
    strict_macro_f1,
)

BOOTSTRAP_ROUNDS = 1000


class CalibrationError(PermanentError, ValueError):
    """Scores that cannot be calibrated (an infinite score: a backend that ranks only its chosen label)."""


def batch_offsets(scores: np.ndarray) -> np.ndarray:
    """Per label, its mean score over the inputs: the prior batch calibration removes."""
    if not np.isfinite(scores).all():
        raise CalibrationError(
            "batch calibration needs a finite score for every label; this backend gives -inf to the labels it "
            "did not choose (the openai backend's choice): use calibration: none"
        )
    return scores.mean(axis=0)


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """Mann-Whitney AUC with ties counted half; None when one class is absent."""
    from scipy.stats import rankdata

    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def separation_auc(gold: np.ndarray, scores: np.ndarray) -> float | None:
    """Two labels: AUC of the margin (label 0 minus label 1) for label 0. More: one-vs-rest macro AUC
    of the softmax over labels (a class absent from ``gold`` is left out). None when undefined."""
    if scores.shape[1] == 2:
        return _binary_auc(gold == 0, scores[:, 0] - scores[:, 1])
    shifted = scores - scores.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    aucs = [_binary_auc(gold == c, probs[:, c]) for c in range(scores.shape[1])]
    present = [a for a in aucs if a is not None]
    return float(np.mean(present)) if len(present) >= 2 else None


def argmax_labels(scores: np.ndarray) -> np.ndarray:
    """Index of the best label per row; -1 where no label has a finite score."""
    best = scores.argmax(axis=1)
    return np.where(np.isfinite(scores.max(axis=1)), best, -1)


@dataclass(frozen=True)
class ScoreView:
    """One way of reading the scores (raw or calibrated): its predictions and figures."""

    predictions: np.ndarray
    macro_f1: float
    accuracy: float
    auc: float | None


def view(gold: np.ndarray, scores: np.ndarray) -> ScoreView:
    pred = argmax_labels(scores)
    return ScoreView(
        pred,
        strict_macro_f1(gold, pred, scores.shape[1]),
        float((pred == gold).mean()) if len(gold) else 0.0,
        separation_auc(gold, scores) if len(gold) else None,
    )


def _interval(values: Sequence[float]) -> list[float] | None:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if not finite:
        return None
    low, high = np.percentile(finite, [2.5, 97.5])
    return [float(low), float(high)]


def bootstrap_intervals(
    gold: np.ndarray, scores: np.ndarray, calibrate: bool, seed: int = 0, rounds: int = BOOTSTRAP_ROUNDS
) -> dict[str, list[float] | None]:
    """95% percentile intervals of macro F1 and AUC, raw and (with ``calibrate``) calibrated, over the
    same resamples; the calibration offsets are re-estimated from each resample."""
    rng = np.random.default_rng(seed)
    collected: dict[str, list[Any]] = {key: [] for key in ("macro_f1", "auc", "calibrated_macro_f1", "calibrated_auc")}
    if not len(gold):
        return {key: None for key in collected}
    for _ in range(rounds):
        idx = rng.integers(0, len(gold), len(gold))
        sample_gold, sample_scores = gold[idx], scores[idx]
        raw = view(sample_gold, sample_scores)
        collected["macro_f1"].append(raw.macro_f1)
        collected["auc"].append(raw.auc)
        if calibrate:
            calibrated = view(sample_gold, sample_scores - batch_offsets(sample_scores))
            collected["calibrated_macro_f1"].append(calibrated.macro_f1)
            collected["calibrated_auc"].append(calibrated.auc)
    return {key: _interval(values) for key, values in collected.items()}


def score_metrics(
    gold: Sequence[str], scores: np.ndarray, labels: Sequence[str], calibrate: bool, seed: int = 0
) -> dict[str, Any]:
    """``choice``'s metrics from its label scores: :func:`set_metrics` of the argmax, the AUC of the
    score margin with its interval and, with ``calibrate``, the same of the batch-calibrated scores
    (their offsets stored under ``calibration``; above)."""
    labels = list(labels)
    gold_index = label_indices(gold, labels)
    raw = view(gold_index, scores)
    intervals = bootstrap_intervals(gold_index, scores, calibrate, seed)
    metrics = set_metrics(gold, predicted_words(raw.predictions, labels), labels, seed)
    metrics.update(auc=raw.auc, auc_ci95=intervals["auc"], calibration={"method": "none"})
    if calibrate:
        offsets = batch_offsets(scores)
        calibrated = view(gold_index, scores - offsets)
        metrics["calibration"] = {"method": "batch", "offsets": dict(zip(labels, map(float, offsets)))}
        metrics["calibrated"] = {
            **prediction_metrics(gold, predicted_words(calibrated.predictions, labels), labels),
            "macro_f1_ci95": intervals["calibrated_macro_f1"],
            "auc": calibrated.auc,
            "auc_ci95": intervals["calibrated_auc"],
        }
    return metrics
