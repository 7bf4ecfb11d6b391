"""The ``evaluate`` stage: zero-shot scores of the exported model on the seed's four sets (raw and
batch-calibrated macro F1, AUC), and held-in scores on the tasks it was trained on, beside the base
model's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kositp.artifacts import ArtifactError, ArtifactStore
from kositp.config import resolve_data_path
from kositp.errors import PermanentError
from kositp.evaluate.config import EvaluateConfig
from kositp.file_hashes import FileHashes
from kositp.models.refs import ModelRef
from kositp.promote.record import promoted
from kositp.reporting import Reporter
from kositp.stages import Stage, StageContext, StageOutcome

if TYPE_CHECKING:
    from kositp.evaluate.backends import Backend


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
        return scores, f"previous: the promoted export {current.export_version} ({current.metric} macro F1)"
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
    out_dir: Path,
    model: str | Path,
    config: EvaluateConfig,
    reporter: Reporter,
    previous: Any,
    describe: str,
    held_in_source: HeldInSource | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Evaluate ``model`` as configured; write predictions and the report into ``out_dir``.

    The one path both the stage and ``kositp eval`` take, so the two can never score differently.
    ``held_in_source`` (the reformat artifact, the base model) is needed when ``config.held_in``.
    """
    from kositp.evaluate.prompts import load_prompt_set
    from kositp.evaluate.report import write_report
    from kositp.evaluate.runner import evaluate_sets

    backend = _backend(config, model)
    predictions, metrics = evaluate_sets(
        resolve_data_path(config.data_dir),
        config.sets,
        load_prompt_set(config.prompt_set),
        backend,
        config.method,
        limit=config.limit,
        seed_sample=config.seed_sample,
        sampling=config.sampling,
        seed=config.seed,
        reporter=reporter,
        choice_scoring=config.choice_scoring,
        calibration=config.calibration,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(out_dir / "predictions.parquet", index=False)
    held = None
    if config.held_in:
        if held_in_source is None:
            raise HeldInSourceMissing("held_in needs the reformat artifact's validation split (and the base model)")
        held = held_in_scores(out_dir, backend, config, held_in_source, reporter)
    header = f"Model: {describe}; method {config.method}, backend {backend.name}, calibration {config.calibration}."
    write_report(out_dir, metrics, previous, reporter, header, held)
    return predictions, metrics


def _backend(config: EvaluateConfig, model: str | Path) -> Backend:
    from kositp.evaluate.backends import make_backend

    options = {"batch_size", "vllm_python", "tensor_parallel_size", "base_url", "served_model"}
    return make_backend(config.backend, model, **config.model_dump(include=options))


class HeldInSourceMissing(PermanentError):
    """Held-in scores asked for where the run has no reformat artifact to take them from."""


@dataclass(frozen=True)
class HeldInSource:
    """Where held-in examples come from and what the tuned model is compared with."""

    reformat_dir: Path
    base_model: str | None  # a loadable folder or Hub id; None: the base model is not scored


def held_in_scores(
    out_dir: Path, backend: Backend, config: EvaluateConfig, source: HeldInSource, reporter: Reporter
) -> dict[str, Any]:
    """Answers of the tuned model (and the base model) on the validation split, and their summary;
    the answers go to ``held_in.parquet``."""
    import pandas as pd

    from kositp.evaluate import held_in

    examples = held_in.load_validation(source.reformat_dir, config.held_in_limit, config.seed)
    reporter.info(f"held-in: {len(examples)} validation examples of {len({e.task.id for e in examples})} tasks")
    tuned = held_in.answer(examples, backend, config.held_in_max_new_tokens, reporter, "tuned")
    base = None
    if config.held_in_base and source.base_model is not None:
        base_backend = _backend(config, source.base_model)
        base = held_in.answer(examples, base_backend, config.held_in_max_new_tokens, reporter, "base")
    elif config.held_in_base:
        reporter.warning("held-in: no base model in this run's lineage (no sft artifact); only the tuned model is scored")
    pd.concat([tuned, base]).to_parquet(out_dir / "held_in.parquet", index=False)
    settings = {
        "limit": config.held_in_limit,
        "max_new_tokens": config.held_in_max_new_tokens,
        "base_model": source.base_model,
    }
    return held_in.summarize(tuned, base, settings, config.seed)


def held_in_source(ctx: StageContext, config: EvaluateConfig) -> HeldInSource | None:
    """The run's reformat artifact and the base model its sft stage trained from."""
    if not config.held_in:
        return None
    if "reformat" not in ctx.inputs:
        raise HeldInSourceMissing(
            "evaluate.held_in needs the reformat stage in the run (its validation split): add it to the profile's "
            "stages or set evaluate.held_in: false"
        )
    base = None
    if "sft" in ctx.inputs:
        ref = ModelRef.parse(ctx.inputs["sft"].manifest["params"]["base_model"])
        base = ref.resolve(ctx.cache_dir or ctx.out_dir / "_cache")
    return HeldInSource(ctx.inputs["reformat"].path, base)


def run(ctx: StageContext) -> StageOutcome:
    config = ctx.config if isinstance(ctx.config, EvaluateConfig) else EvaluateConfig(**ctx.params)
    export = ctx.inputs["export"]
    previous, compared = previous_metrics(ctx, export.version)
    describe = f"export {export.version}" + (f" ({compared})" if compared else "")
    predictions, metrics = evaluate_to(
        ctx.out_dir, export.file("merged"), config, ctx.reporter, previous, describe, held_in_source(ctx, config)
    )
    rows = {f"{name}_examples": m["n"] for name, m in metrics.items()}
    rows["invalid"] = int((predictions["prediction"] == "invalid").sum()) if len(predictions) else 0
    report: dict[str, Any] = {"sets": {name: stage_report(m) for name, m in metrics.items()}}
    held = read_held_in(ctx.out_dir)
    if held is not None:
        rows["held_in_examples"] = sum(c["n"] for c in held["models"]["tuned"]["categories"].values())
        report["held_in"] = {
            model: {kind: round(c["mean"], 4) for kind, c in figures["categories"].items()}
            for model, figures in held["models"].items()
        }
    return StageOutcome(rows=rows, report=report)


def stage_report(m: dict[str, Any]) -> dict[str, Any]:
    """A set's headline figures for the manifest: raw, and calibrated where there are."""
    figures = {k: m[k] for k in ("macro_f1", "coverage", "seed_macro_f1", "n")}
    if m.get("auc") is not None:
        figures["auc"] = m["auc"]
    if "calibrated" in m:
        figures["calibrated_macro_f1"] = m["calibrated"]["macro_f1"]
    return figures


def read_held_in(out_dir: Path) -> dict[str, Any] | None:
    return json.loads((out_dir / "metrics.json").read_text(encoding="utf-8")).get("held_in")


STAGE = Stage(
    name="evaluate", code_version="2", config=EvaluateConfig, run=run, inputs=("export",),
    optional_inputs=("reformat", "sft"), fingerprint=_fingerprint, gpu=True,
    description="zero-shot macro F1 (raw and batch-calibrated) and AUC on KorNLI, question pair, hate "
    "speech and NSMC; held-in scores on the trained tasks' validation split",
)
