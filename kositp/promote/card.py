"""The promoted model's card: the export's card plus the scores that got it promoted.

An export is immutable and is built before it is evaluated, so its card cannot hold the
evaluation. The promote stage writes a new card into its own artifact: the export's metadata
and text, Hub ``model-index`` evaluation results, and a table of the scores and the decision.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard

from kositp.promote.record import Promotion
from kositp.reporting import markdown_table

# The Hub's dataset ids and names of the four zero-shot sets (docs/evaluate.md).
HUB_DATASETS = {
    "kornli": ("kakaobrain/kor_nli", "KorNLI"),
    "question_pair": ("songys/Question_pair", "Korean question pair"),
    "hate_speech": ("kocohub/korean-hate-speech", "Korean hate speech"),
    "nsmc": ("e9t/nsmc", "NSMC"),
}


def promoted_card(export_card: Path, promotion: Promotion, decision: str, rows: list[dict[str, str]]) -> str:
    card = ModelCard(export_card.read_text(encoding="utf-8"))
    card.data.eval_results = [
        EvalResult(
            task_type="text-classification",
            task_name=f"zero-shot {name}",
            dataset_type=HUB_DATASETS.get(name, (name, name))[0],
            dataset_name=HUB_DATASETS.get(name, (name, name))[1],
            metric_type="f1",
            metric_name="macro F1 (invalid answers counted wrong)",
            metric_value=round(score, 4),
        )
        for name, score in promotion.scores.items()
    ]
    card.data.model_name = card.data.model_name or "KOSITP Korean instruction-tuned model"
    evaluation = (
        f"\n## Evaluation (promote: {decision})\n\n"
        f"Zero-shot macro F1 from `evaluate/{promotion.evaluate_version}`; {promotion.reason}.\n\n"
        f"{markdown_table(rows)}\n"
    )
    card.text = card.text.rstrip() + "\n" + evaluation
    return str(card)
