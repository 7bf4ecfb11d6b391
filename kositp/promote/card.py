"""The promoted model's card: the export's card plus the scores that got it promoted.

An export is immutable and is built before it is evaluated, so its card cannot hold the
evaluation. The promote stage writes a new card into its own artifact: the export's metadata
and text, Hub ``model-index`` evaluation results, and a table of the scores and the decision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard

from kositp.evaluate.sets import EVAL_SETS
from kositp.promote.record import Promotion
from kositp.reporting import markdown_table


def zero_shot_results(metrics: dict[str, Any]) -> list[EvalResult]:
    """Per set: raw macro F1, and where computed the batch-calibrated macro F1 and the AUC of the margin."""
    results = []
    for name, m in metrics.get("sets", {}).items():
        row = EVAL_SETS.get(name)
        dataset_id, dataset_name = (row.hub_id, row.title) if row else (name, name)
        figures = [("f1", "macro F1 (invalid answers counted wrong)", m["macro_f1"])]
        if "calibrated" in m:
            figures.append(("f1", "macro F1, batch-calibrated", m["calibrated"]["macro_f1"]))
        if m.get("auc") is not None:
            figures.append(("roc_auc", "AUC of the label-score margin", m["auc"]))
        results += [
            EvalResult(
                task_type="text-classification",
                task_name=f"zero-shot {name}",
                dataset_type=dataset_id,
                dataset_name=dataset_name,
                metric_type=metric_type,
                metric_name=metric_name,
                metric_value=round(value, 4),
            )
            for metric_type, metric_name, value in figures
        ]
    return results


HELD_IN_METRICS = {"label": "accuracy", "span": "f1", "free_text": "rougeL"}


def held_in_results(metrics: dict[str, Any]) -> list[EvalResult]:
    """Per held-in category, the tuned model's mean score on the trained tasks' validation split."""
    held = metrics.get("held_in")
    if not held:
        return []
    return [
        EvalResult(
            task_type="text-generation",
            task_name=f"held-in {kind} tasks",
            dataset_type="kositp-22-tasks-validation",
            dataset_name="KOSITP 22 tasks, validation split",
            metric_type=HELD_IN_METRICS[kind],
            metric_name=f"held-in {figures['metric']}",
            metric_value=round(figures["mean"], 4),
        )
        for kind, figures in held["models"]["tuned"]["categories"].items()
    ]


def promoted_card(
    export_card: Path, promotion: Promotion, decision: str, rows: list[dict[str, str]], metrics: dict[str, Any]
) -> str:
    """The export's card with the candidate's evaluation (``metrics``: its metrics.json) and the decision."""
    card = ModelCard(export_card.read_text(encoding="utf-8"))
    card.data.eval_results = zero_shot_results(metrics) + held_in_results(metrics)
    card.data.model_name = card.data.model_name or "KOSITP Korean instruction-tuned model"
    evaluation = (
        f"\n## Evaluation (promote: {decision})\n\n"
        f"Zero-shot macro F1 ({promotion.metric}) from `evaluate/{promotion.evaluate_version}`; {promotion.reason}.\n\n"
        f"{markdown_table(rows)}\n"
    )
    card.text = card.text.rstrip() + "\n" + evaluation
    return str(card)
