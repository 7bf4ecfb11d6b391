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


def bootstrap_ci(
    gold: Sequence[str],
    pred: Sequence[str],
    metric: Callable[[Sequence[str], Sequence[str]], float],
    seed: int = 0,
    rounds: int = 1000,
) -> tuple[float, float]:
    """95% percentile interval of ``metric`` over resampled examples (seeded: reruns agree)."""
    if not len(gold):
        return (0.0, 0.0)
    gold_a, pred_a = np.asarray(gold), np.asarray(pred)
    rng = np.random.default_rng(seed)
    scores = [
        metric(gold_a[idx], pred_a[idx])
        for idx in (rng.integers(0, len(gold_a), len(gold_a)) for _ in range(rounds))
    ]
    low, high = np.percentile(scores, [2.5, 97.5])
    return float(low), float(high)


def set_metrics(
    gold: Sequence[str], pred: Sequence[str], labels: Sequence[str], seed: int = 0
) -> dict[str, Any]:
    """Strict metrics (invalid answers counted wrong), the seed's metric (invalid dropped), coverage."""
    gold, pred = list(gold), list(pred)
    valid = [i for i, p in enumerate(pred) if p != INVALID]
    classes = list(labels) + ([INVALID] if len(valid) < len(pred) else [])
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, pred, labels=list(labels), zero_division=0
    )
    strict = partial(macro_f1, labels=list(labels))
    return {
        "n": len(gold),
        "macro_f1": strict(gold, pred),
        "macro_f1_ci95": list(bootstrap_ci(gold, pred, strict, seed)),
        "accuracy": float(accuracy_score(gold, pred)) if gold else 0.0,
        "coverage": len(valid) / len(pred) if pred else 0.0,
        "seed_macro_f1": seed_macro_f1(gold, pred),
        "seed_macro_f1_ci95": list(bootstrap_ci(gold, pred, seed_macro_f1, seed)),
        "per_class": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support)
        },
        "confusion_matrix": {
            "labels": classes,
            "matrix": confusion_matrix(gold, pred, labels=classes).tolist() if gold else [],
        },
    }
