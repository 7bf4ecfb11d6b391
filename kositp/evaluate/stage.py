"""The ``evaluate`` stage: zero-shot macro F1 of the exported model on the seed's four sets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kositp.artifacts import ArtifactError, ArtifactStore
from kositp.config import resolve_data_path
from kositp.evaluate.backends import make_backend
from kositp.evaluate.config import EvaluateConfig
from kositp.evaluate.prompts import load_prompt_set
from kositp.evaluate.report import write_report
from kositp.evaluate.runner import evaluate_sets
from kositp.file_hashes import FileHashes
from kositp.promote.record import promoted
from kositp.reporting import Reporter
from kositp.stages import Stage, StageContext, StageOutcome


def _fingerprint(config: EvaluateConfig) -> dict[str, Any]:
    """The evaluation files' content hashes: edited data gives a new version, a copy or a touch does not."""
    root = resolve_data_path(config.data_dir)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    with FileHashes() as hashes:
        return {"data": {p.relative_to(root).as_posix(): hashes.sha256(p) for p in files}}


def previous_metrics(ctx: StageContext, export_version: str) -> tuple[dict[str, Any] | None, str]:
    """What the report's ``previous`` column holds, and which model that is, in words.

    The promoted model (the one people are served); with none promoted, this profile's latest
    evaluation. Never the model being evaluated: a forced evaluate of the promoted export would
    otherwise compare it with itself.
    """
    if ctx.root is None or not ctx.profile_name:
        return None, ""
    current = promoted(ctx.root, ctx.profile_name)
    if current is not None and current.export_version == export_version:
        return None, "the promoted model itself: no other model to compare with"
    if current is not None:
        scores = {name: {"macro_f1": score} for name, score in current.scores.items()}
        return scores, f"previous: the promoted export {current.export_version}"
    store = ArtifactStore(ctx.root)
    try:
        artifact = store.open("evaluate", store.latest("evaluate", ctx.profile_name), verify=False)
        metrics = json.loads(artifact.file("metrics.json").read_text(encoding="utf-8"))["sets"]
    except (ArtifactError, OSError, KeyError, json.JSONDecodeError):
        return None, ""
    evaluated = artifact.manifest.get("inputs", {}).get("export")
    if evaluated == export_version:
        return None, f"evaluated before as evaluate {artifact.version}; no other model to compare with"
    return metrics, f"previous: export {evaluated}, the latest evaluated (evaluate {artifact.version}); none is promoted"


def evaluate_to(
    out_dir: Path, model: str | Path, config: EvaluateConfig, reporter: Reporter, previous: Any, describe: str
) -> tuple[Any, dict[str, Any]]:
    """Evaluate ``model`` as configured; write predictions and the report into ``out_dir``.

    The one path both the stage and ``kositp eval`` take, so the two can never score differently.
    """
    backend = make_backend(
        config.backend,
        model,
        batch_size=config.batch_size,
        vllm_python=config.vllm_python,
        tensor_parallel_size=config.tensor_parallel_size,
        base_url=config.base_url,
        served_model=config.served_model,
    )
    predictions, metrics = evaluate_sets(
        resolve_data_path(config.data_dir),
        config.sets,
        load_prompt_set(config.prompt_set),
        backend,
        config.method,
        limit=config.limit,
        nsmc_sample=config.nsmc_sample,
        sampling=config.sampling,
        seed=config.seed,
        reporter=reporter,
        choice_scoring=config.choice_scoring,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(out_dir / "predictions.parquet", index=False)
    header = f"Model: {describe}; method {config.method}, backend {backend.name}."
    write_report(out_dir, metrics, previous, reporter, header)
    return predictions, metrics


def run(ctx: StageContext) -> StageOutcome:
    config = ctx.config if isinstance(ctx.config, EvaluateConfig) else EvaluateConfig(**ctx.params)
    export = ctx.inputs["export"]
    previous, compared = previous_metrics(ctx, export.version)
    describe = f"export {export.version}" + (f" ({compared})" if compared else "")
    predictions, metrics = evaluate_to(ctx.out_dir, export.file("merged"), config, ctx.reporter, previous, describe)
    rows = {f"{name}_examples": m["n"] for name, m in metrics.items()}
    rows["invalid"] = int((predictions["prediction"] == "invalid").sum()) if len(predictions) else 0
    report = {
        name: {k: m[k] for k in ("macro_f1", "coverage", "seed_macro_f1", "n")} for name, m in metrics.items()
    }
    return StageOutcome(rows=rows, report=report)


STAGE = Stage(
    name="evaluate",
    code_version="1",
    config=EvaluateConfig,
    run=run,
    inputs=("export",),
    fingerprint=_fingerprint,
    gpu=True,
    description="zero-shot macro F1 on KorNLI, question pair, hate speech and NSMC",
)
