"""metrics.json, report.md (against the previous model and the seed's published table) and f1.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kositp.reporting import Reporter, markdown_table

# The seed README's zero-shot macro F1 (README.ko.md; ../shared/datasets/README.md).
SEED_PUBLISHED = {
    "SOLAR 10.7B TaskInstruct": {"kornli": 0.44, "question_pair": 0.68, "hate_speech": 0.63, "nsmc": 0.76},
    "Mistral 7B TaskInstruct": {"kornli": 0.31, "question_pair": 0.51, "hate_speech": 0.41, "nsmc": 0.77},
}


def comparison_rows(
    metrics: dict[str, dict[str, Any]], previous: dict[str, dict[str, Any]] | None
) -> list[dict[str, Any]]:
    rows = []
    for name, m in metrics.items():
        row: dict[str, Any] = {
            "set": name,
            "n": m["n"],
            "macro F1": f"{m['macro_f1']:.3f}",
            "95% CI": f"{m['macro_f1_ci95'][0]:.3f}–{m['macro_f1_ci95'][1]:.3f}",
            "coverage": f"{m['coverage']:.1%}",
            "seed metric": f"{m['seed_macro_f1']:.3f}",
        }
        if previous is not None:
            prev = previous.get(name, {}).get("macro_f1")
            row["previous"] = "" if prev is None else f"{prev:.3f}"
        for model, scores in SEED_PUBLISHED.items():
            row[model] = scores.get(name, "")
        rows.append(row)
    return rows


def plot_f1(metrics: dict[str, dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(metrics)
    series = {"this model": [metrics[n]["macro_f1"] for n in names]}
    series.update({model: [scores.get(n, 0.0) for n in names] for model, scores in SEED_PUBLISHED.items()})
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
) -> None:
    (out_dir / "metrics.json").write_text(
        json.dumps({"sets": metrics}, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    rows = comparison_rows(metrics, previous)
    note = "" if previous is not None else "\n\nNo previous evaluation to compare with."
    text = (
        f"# Zero-shot evaluation\n\n{header}\n\n{markdown_table(rows)}\n\n"
        "macro F1 counts answers that are not a label word as wrong; the seed metric drops them "
        "(as the seed did) and is only comparable to the seed's columns."
        f"{note}\n"
    )
    (out_dir / "report.md").write_text(text, encoding="utf-8")
    plot_f1(metrics, out_dir / "f1.png")
    reporter.table("evaluate-f1", rows, "zero-shot macro F1 against the previous model and the seed")
    reporter.markdown("evaluate-report", text)
    reporter.image("evaluate-f1-chart", out_dir / "f1.png", "macro F1 per set")
