"""metrics.json, report.md (against the previous model and the seed's published table) and f1.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kositp.evaluate.sets import EVAL_SETS, eval_set, published_models
from kositp.reporting import Reporter, markdown_table


def _interval(ci: list[float] | None) -> str:
    return "" if not ci else f"{ci[0]:.3f}–{ci[1]:.3f}"


def _score(value: float | None, ci: list[float] | None) -> str:
    return "" if value is None else f"{value:.3f} [{_interval(ci)}]"


def _distribution(predicted: dict[str, int]) -> str:
    return ", ".join(f"{label} {count}" for label, count in predicted.items())


def comparison_rows(
    metrics: dict[str, dict[str, Any]], previous: dict[str, dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """One row per set: raw macro F1, calibrated macro F1 and AUC side by side, with their intervals."""
    rows = []
    for name, m in metrics.items():
        calibrated = m.get("calibrated", {})
        row: dict[str, Any] = {
            "set": name,
            "n": m["n"],
            "macro F1 [95% CI]": _score(m["macro_f1"], m["macro_f1_ci95"]),
            "calibrated F1 [95% CI]": _score(calibrated.get("macro_f1"), calibrated.get("macro_f1_ci95")),
            "AUC [95% CI]": _score(m.get("auc"), m.get("auc_ci95")),
            "predicted (raw)": _distribution(m.get("predicted", {})),
            "predicted (calibrated)": _distribution(calibrated.get("predicted", {})),
            "coverage": f"{m['coverage']:.1%}",
            "seed metric": f"{m['seed_macro_f1']:.3f}",
        }
        if previous is not None:
            prev = previous.get(name, {}).get("macro_f1")
            row["previous"] = "" if prev is None else f"{prev:.3f}"
        for model in published_models():
            row[model] = eval_set(name).published.get(model, "") if name in EVAL_SETS else ""
        rows.append(row)
    return rows


def held_in_task_rows(held: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per task: its category, n, and the tuned (and base) model's headline score."""
    models = held["models"]
    rows = []
    for task, figures in models["tuned"]["tasks"].items():
        row: dict[str, Any] = {"task": task, "category": figures["category"], "n": figures["n"]}
        if figures.get("unscored"):
            row["unscored"] = figures["unscored"]
        for model, results in models.items():
            task_figures = results["tasks"].get(task, {})
            row[f"{model} {HEADLINE_NAMES[figures['category']]}"] = _score(
                task_figures.get("score"), task_figures.get("score_ci95")
            )
            if figures["category"] == "label" and task_figures.get("macro_f1") is not None:
                row[f"{model} macro F1"] = f"{task_figures['macro_f1']:.3f}"
            if figures["category"] == "span" and task_figures.get("exact_match") is not None:
                row[f"{model} exact match"] = f"{task_figures['exact_match']:.3f}"
        rows.append(row)
    return rows


def held_in_category_rows(held: dict[str, Any]) -> list[dict[str, Any]]:
    """Per category: each model's mean headline score, and tuned minus base over the same examples."""
    models, difference = held["models"], held.get("difference", {})
    rows = []
    for kind, figures in models["tuned"]["categories"].items():
        row: dict[str, Any] = {"category": kind, "metric": figures["metric"], "n": figures["n"]}
        for model, results in models.items():
            category = results["categories"].get(kind, {})
            row[model] = _score(category.get("mean"), category.get("ci95"))
        if kind in difference:
            row["tuned − base [95% CI]"] = f"{difference[kind]['difference']:+.3f} [{_interval(difference[kind]['ci95'])}]"
        rows.append(row)
    return rows


HEADLINE_NAMES = {"label": "accuracy", "span": "char F1", "free_text": "ROUGE-L"}


def plot_f1(metrics: dict[str, dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(metrics)
    series = {"this model": [metrics[n]["macro_f1"] for n in names]}
    series.update(
        {model: [EVAL_SETS[n].published.get(model, 0.0) if n in EVAL_SETS else 0.0 for n in names]
         for model in published_models()}
    )
    x = np.arange(len(names))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (label, values) in enumerate(series.items()):
        ax.bar(x + i * width, values, width, label=label)
    ax.set_xticks(x + width * (len(series) - 1) / 2, names)
    ax.set_ylabel("macro F1")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(
    out_dir: Path,
    metrics: dict[str, dict[str, Any]],
    previous: dict[str, dict[str, Any]] | None,
    reporter: Reporter,
    header: str = "",
    held: dict[str, Any] | None = None,
) -> None:
    document: dict[str, Any] = {"sets": metrics}
    if held is not None:
        document["held_in"] = held
    (out_dir / "metrics.json").write_text(json.dumps(document, ensure_ascii=False, indent=2), encoding="utf-8")
    rows = comparison_rows(metrics, previous)
    note = "" if previous is not None else "\n\nNo previous evaluation to compare with."
    text = (
        f"# Zero-shot evaluation\n\n{header}\n\n{markdown_table(rows)}\n\n"
        "macro F1 counts answers that are not a label word as wrong; the seed metric drops them "
        "(as the seed did) and is only comparable to the seed's columns. Calibrated: each label's score "
        "minus its mean over the set's inputs (batch calibration; no gold label used). AUC: how well the "
        "label-score margin separates the classes, whatever the model's prior for one label (one-vs-rest "
        "macro AUC for three labels). Intervals: 95% bootstrap, the calibration re-estimated in each resample."
        f"{note}\n"
    )
    if held is not None:
        text += (
            "\n# Held-in tasks (validation split, asked as in training)\n\n"
            f"{markdown_table(held_in_category_rows(held))}\n\n{markdown_table(held_in_task_rows(held))}\n\n"
            "label: accuracy (choice over the example's options; answerability read from the greedy answer); "
            "span: character F1 after normalisation; free_text: ROUGE-L F1 over characters. "
            f"Greedy answers of at most {held['settings']['max_new_tokens']} tokens, at most "
            f"{held['settings']['limit']} examples per task.\n"
        )
    (out_dir / "report.md").write_text(text, encoding="utf-8")
    plot_f1(metrics, out_dir / "f1.png")
    reporter.table("evaluate-f1", rows, "zero-shot macro F1 (raw, calibrated) and AUC against the previous model and the seed")
    if held is not None:
        reporter.table("evaluate-held-in", held_in_category_rows(held), "held-in scores per category: tuned vs base")
        reporter.table("evaluate-held-in-tasks", held_in_task_rows(held), "held-in scores per task")
    reporter.markdown("evaluate-report", text)
    reporter.image("evaluate-f1-chart", out_dir / "f1.png", "macro F1 per set")
