"""The promotion gate: is the new model at least as good as the one people are served?

Scores are comparable only when both models were evaluated on the same sets with the same
settings and data (:func:`comparable_settings`); the stage re-evaluates the promoted model when
they differ, so the gate itself only compares two score tables. The rule is the usual one of
model registries: the mean macro F1 (raw or batch-calibrated, ``promote.metric``) may not drop by
more than ``tolerance`` and no single set by more than ``per_set_tolerance``; with ``held_in`` the
mean held-in score (the tasks the model was trained on) may not drop by more than
``held_in_tolerance`` either. A model that passes is promoted, otherwise the old one stays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from statistics import fmean
from typing import Any

# Evaluate parameters that change how fast a score is computed, not the score.
RUNTIME_ONLY = frozenset({"backend", "batch_size", "vllm_python", "base_url", "served_model", "tensor_parallel_size"})


@dataclass(frozen=True)
class HeldInCheck:
    """The held-in mean of the candidate and of the promoted model (None: it has none to compare)."""

    candidate: float
    baseline: float | None
    tolerance: float


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str
    rows: list[dict[str, Any]]


def comparable_settings(evaluate_params: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """What two evaluations must share for their scores to be compared: settings and data."""
    return {
        "params": {k: v for k, v in sorted(evaluate_params.items()) if k not in RUNTIME_ONLY},
        "data": dict(data),
    }


def mean_score(scores: Mapping[str, float]) -> float:
    return fmean(scores.values()) if scores else 0.0


def judge(
    candidate: Mapping[str, float],
    baseline: Mapping[str, float] | None,
    tolerance: float,
    per_set_tolerance: float,
    held_in: HeldInCheck | None = None,
) -> Verdict:
    """Compare per-set macro F1 (and the held-in mean); ``baseline`` is ``None`` when nothing is promoted yet."""
    if baseline is None:
        rows = [{"set": s, "candidate": f"{v:.4f}", "promoted": "", "change": ""} for s, v in candidate.items()]
        return Verdict(True, "no model is promoted for this profile yet", rows)
    missing = sorted(set(candidate) ^ set(baseline))
    if missing:
        raise ValueError(f"scores cover different sets ({', '.join(missing)}); they are not comparable")
    rows, dropped = [], []
    for name, score in candidate.items():
        change = score - baseline[name]
        rows.append(
            {"set": name, "candidate": f"{score:.4f}", "promoted": f"{baseline[name]:.4f}", "change": f"{change:+.4f}"}
        )
        if -change > per_set_tolerance:
            dropped.append(f"{name} {change:+.4f}")
    new, old = mean_score(candidate), mean_score(baseline)
    rows.append({"set": "mean", "candidate": f"{new:.4f}", "promoted": f"{old:.4f}", "change": f"{new - old:+.4f}"})
    problems = []
    if old - new > tolerance:
        problems.append(
            f"mean macro F1 {new:.4f} is {old - new:.4f} below the promoted model's {old:.4f} "
            f"(tolerance {tolerance:.4f})"
        )
    if dropped:
        problems.append(f"{', '.join(dropped)} dropped by more than the per-set tolerance {per_set_tolerance:.4f}")
    if held_in is not None:
        problems += held_in_problems(held_in, rows)
    if problems:
        return Verdict(False, "; ".join(problems), rows)
    return Verdict(
        True,
        f"mean macro F1 {new:.4f} vs the promoted model's {old:.4f} ({new - old:+.4f}, tolerance "
        f"{tolerance:.4f}); no set dropped by more than {per_set_tolerance:.4f}",
        rows,
    )


def held_in_problems(check: HeldInCheck, rows: list[dict[str, Any]]) -> list[str]:
    """Adds the held-in row to ``rows``; a drop beyond the tolerance is a problem, a baseline without
    held-in scores is not (it is said in the row)."""
    if check.baseline is None:
        rows.append({"set": "held-in mean", "candidate": f"{check.candidate:.4f}", "promoted": "none", "change": ""})
        return []
    change = check.candidate - check.baseline
    rows.append(
        {"set": "held-in mean", "candidate": f"{check.candidate:.4f}", "promoted": f"{check.baseline:.4f}", "change": f"{change:+.4f}"}
    )
    if -change > check.tolerance:
        reason = (
            f"held-in mean {check.candidate:.4f} is {-change:.4f} below the promoted model's {check.baseline:.4f} "
            f"(held-in tolerance {check.tolerance:.4f})"
        )
        return [reason]
    return []
