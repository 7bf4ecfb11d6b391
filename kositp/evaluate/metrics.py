"""Classification metrics with scikit-learn: macro F1 is the headline, as in the seed's table.

The headline (``macro_f1``) is strict: the macro average over the set's gold label words only,
an answer that is not a label word (``invalid``) counting as wrong. sklearn's default would make
``invalid`` a class of its own, and one invalid answer among 1,000 correct binary answers would
then score 0.667 instead of about 0.999. The seed's protocol (invalid answers dropped, then
sklearn's default) is reported beside it as ``seed_macro_f1``, with ``coverage``: the seed
numbers are only comparable to that column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

INVALID = "invalid"


def macro_f1(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> float:
    """Strict macro F1: averaged over ``labels`` (the gold label words); anything else is wrong."""
    if not len(gold):
        return 0.0
    return float(f1_score(list(gold), list(pred), labels=list(labels), average="macro", zero_division=0))


def seed_macro_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    """The seed's protocol: invalid answers dropped, then sklearn's default macro F1."""
    kept = [(g, p) for g, p in zip(gold, pred) if p != INVALID]
    if not kept:
        return 0.0
    return float(f1_score(*map(list, zip(*kept)), average="macro", zero_division=0))


def label_indices(words: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Each word's index among ``labels``; -1 for anything else (``invalid``)."""
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index.get(word, -1) for word in words], dtype=int)


def strict_macro_f1(gold: np.ndarray, pred: np.ndarray, classes: int) -> float:
    """:func:`macro_f1` on label indices (gold in ``range(classes)``, -1 predicted for invalid).

    The same figure as sklearn's (tested), from one confusion count: bootstrap intervals call it
    thousands of times, and sklearn's checks cost about a millisecond a call.
    """
    if not len(gold):
        return 0.0
    valid = pred >= 0
    counts = np.bincount(gold[valid] * classes + pred[valid], minlength=classes * classes).reshape(classes, classes)
    true_pos = np.diag(counts).astype(float)
    denominator = np.bincount(gold, minlength=classes) + counts.sum(axis=0)
    return float(np.divide(2 * true_pos, denominator, out=np.zeros(classes), where=denominator > 0).mean())


def default_macro_f1(gold: np.ndarray, pred: np.ndarray, classes: int) -> float:
    """sklearn's default macro F1 on label indices, invalid (-1) dropped first: the average over the
    classes present in the gold or the predicted labels that remain (:func:`seed_macro_f1`'s protocol)."""
    kept = pred >= 0
    gold, pred = gold[kept], pred[kept]
    if not len(gold):
        return 0.0
    present = np.union1d(gold, pred)
    counts = np.bincount(gold * classes + pred, minlength=classes * classes).reshape(classes, classes)
    true_pos = np.diag(counts).astype(float)
    denominator = np.bincount(gold, minlength=classes) + counts.sum(axis=0)
    f1 = np.divide(2 * true_pos, denominator, out=np.zeros(classes), where=denominator > 0)
    return float(f1[present].mean())


def bootstrap_ci(
    gold: np.ndarray,
    pred: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float],
    seed: int = 0,
    rounds: int = 1000,
) -> tuple[float, float]:
    """95% percentile interval of ``metric`` over resampled examples (seeded: reruns agree)."""
    if not len(gold):
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    scores = [metric(gold[idx], pred[idx]) for idx in (rng.integers(0, len(gold), len(gold)) for _ in range(rounds))]
    low, high = np.percentile(scores, [2.5, 97.5])
    return float(low), float(high)


def prediction_metrics(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Strict macro F1, accuracy, coverage, the seed's metric, per-class figures, the confusion matrix and
    how often each label was predicted, without intervals."""
    gold, pred = list(gold), list(pred)
    valid = [i for i, p in enumerate(pred) if p != INVALID]
    classes = list(labels) + ([INVALID] if len(valid) < len(pred) else [])
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, pred, labels=list(labels), zero_division=0
    )
    return {
        "n": len(gold),
        "macro_f1": macro_f1(gold, pred, labels),
        "accuracy": float(accuracy_score(gold, pred)) if gold else 0.0,
        "coverage": len(valid) / len(pred) if pred else 0.0,
        "seed_macro_f1": seed_macro_f1(gold, pred),
        "predicted": {label: pred.count(label) for label in classes},
        "per_class": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support)
        },
        "confusion_matrix": {
            "labels": classes,
            "matrix": confusion_matrix(gold, pred, labels=classes).tolist() if gold else [],
        },
    }


def set_metrics(
    gold: Sequence[str], pred: Sequence[str], labels: Sequence[str], seed: int = 0
) -> dict[str, Any]:
    """:func:`prediction_metrics` with 95% bootstrap intervals of the strict and the seed's macro F1."""
    classes = len(labels)
    gold_index, pred_index = label_indices(gold, labels), label_indices(pred, labels)
    metrics = prediction_metrics(gold, pred, labels)
    metrics["macro_f1_ci95"] = list(
        bootstrap_ci(gold_index, pred_index, partial(strict_macro_f1, classes=classes), seed)
    )
    metrics["seed_macro_f1_ci95"] = list(
        bootstrap_ci(gold_index, pred_index, partial(default_macro_f1, classes=classes), seed)
    )
    return metrics


def predicted_words(indices: np.ndarray, labels: Sequence[str]) -> list[str]:
    """Label words for label indices; -1 (no label scored) is ``invalid``."""
    return [labels[i] if i >= 0 else INVALID for i in indices]
