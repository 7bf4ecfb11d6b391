"""Classification metrics with scikit-learn: macro F1 is the headline, as in the seed's table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

INVALID = "invalid"


def macro_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    """sklearn's default macro F1 over the union of gold and predicted labels (``invalid`` included)."""
    if not len(gold):
        return 0.0
    return float(f1_score(list(gold), list(pred), average="macro", zero_division=0))


def bootstrap_ci(
    gold: Sequence[str], pred: Sequence[str], seed: int = 0, rounds: int = 1000
) -> tuple[float, float]:
    """95% percentile interval of macro F1 over resampled examples (seeded: reruns agree)."""
    if not len(gold):
        return (0.0, 0.0)
    gold_a, pred_a = np.asarray(gold), np.asarray(pred)
    rng = np.random.default_rng(seed)
    scores = [
        macro_f1(gold_a[idx], pred_a[idx])
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
    low, high = bootstrap_ci(gold, pred, seed)
    return {
        "n": len(gold),
        "macro_f1": macro_f1(gold, pred),
        "macro_f1_ci95": [low, high],
        "accuracy": float(accuracy_score(gold, pred)) if gold else 0.0,
        "coverage": len(valid) / len(pred) if pred else 0.0,
        "seed_macro_f1": macro_f1([gold[i] for i in valid], [pred[i] for i in valid]),
        "per_class": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support)
        },
        "confusion_matrix": {
            "labels": classes,
            "matrix": confusion_matrix(gold, pred, labels=classes).tolist() if gold else [],
        },
    }
