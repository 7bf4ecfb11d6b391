"""The ``promote`` stage: promote the evaluated export only if it is not worse than the served one.

It reads the candidate's scores from its ``evaluate`` artifact and the promoted model's from the
promotion record. When the two were evaluated with different settings or data, the promoted
model is evaluated again with the candidate's, so only like is compared with like (and the
record keeps the new scores, so this happens once per change of settings). The decision, its
reason and the comparison go to the record's history, the run's report and this artifact; the
artifact also holds the promoted model's card with its scores. Being a cached stage, a candidate
is judged once: a no-op nightly run does not judge it again, and a person's
``kositp promote VERSION`` stands until a new model is evaluated.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from statistics import fmean
from typing import Any, Literal

from pydantic import Field

from kositp.artifacts import Artifact, ArtifactStore
from kositp.config import StageConfig
from kositp.errors import PermanentError
from kositp.evaluate import stage as evaluate_stage
from kositp.promote.gate import HeldInCheck, Verdict, comparable_settings, judge, mean_score
from kositp.promote.record import Promotion, promoted, record_decision
from kositp.reporting import Reporter, markdown_table
from kositp.stages import Stage, StageContext, StageOutcome


class PromoteConfig(StageConfig):
    metric: Literal["raw", "calibrated"] = Field(
        "raw", description="the zero-shot macro F1 the gate compares: raw, or batch-calibrated (evaluate.calibration)"
    )
    tolerance: float = Field(0.0, ge=0.0, le=1.0, description="how far the mean macro F1 may drop")
    per_set_tolerance: float = Field(0.05, ge=0.0, le=1.0, description="how far any one set may drop")
    held_in: bool = Field(
        False, description="also require the held-in mean (evaluate.held_in) not to drop beyond held_in_tolerance"
    )
    held_in_tolerance: float = Field(0.0, ge=0.0, le=1.0, description="how far the held-in mean may drop")


class PromoteSettingsError(PermanentError):
    """The gate is asked for a score the evaluation did not compute."""


def scores_of(evaluation_dir: Path, metric: str = "raw") -> dict[str, float]:
    """Per-set macro F1 (invalid answers counted wrong), raw or calibrated, from an evaluation's ``metrics.json``."""
    metrics = json.loads((evaluation_dir / "metrics.json").read_text(encoding="utf-8"))["sets"]
    if metric == "raw":
        return {name: float(m["macro_f1"]) for name, m in metrics.items()}
    missing = [name for name, m in metrics.items() if "calibrated" not in m]
    if missing:
        raise PromoteSettingsError(
            f"promote.metric: calibrated, but {evaluation_dir} has no calibrated scores for {', '.join(missing)} "
            "(set evaluate.calibration: batch)"
        )
    return {name: float(m["calibrated"]["macro_f1"]) for name, m in metrics.items()}


def held_in_mean(evaluation_dir: Path) -> float | None:
    """The tuned model's mean over the held-in categories' mean scores; None without held-in scores."""
    held = json.loads((evaluation_dir / "metrics.json").read_text(encoding="utf-8")).get("held_in")
    if not held:
        return None
    categories = held["models"]["tuned"]["categories"]
    return fmean(c["mean"] for c in categories.values()) if categories else None


def evaluation_settings(
    evaluation: Artifact, config: PromoteConfig
) -> tuple[evaluate_stage.EvaluateConfig, dict[str, Any]]:
    """The candidate's evaluate settings, and what a promoted model's scores must share to be compared:
    the settings and data, the gate's metric and, with held-in scores, the validation split they came from."""
    params = evaluation.manifest["params"]
    eval_config = evaluate_stage.EvaluateConfig(**params)
    if config.metric == "calibrated" and eval_config.calibration != "batch":
        raise PromoteSettingsError("promote.metric: calibrated needs evaluate.calibration: batch")
    if config.held_in and not eval_config.held_in:
        raise PromoteSettingsError("promote.held_in needs evaluate.held_in: true")
    settings = comparable_settings(params, evaluate_stage.STAGE.fingerprint(eval_config))
    settings["metric"] = config.metric
    if eval_config.held_in:
        settings["held_in_data"] = evaluation.manifest["inputs"].get("reformat")
    return eval_config, settings


def rescore(
    store: ArtifactStore,
    current: Promotion,
    evaluation: Artifact,
    eval_config: evaluate_stage.EvaluateConfig,
    metric: str,
    out_dir: Path,
    reporter: Reporter,
) -> tuple[dict[str, float], float | None]:
    """Evaluate the promoted export again with the candidate's settings (held-in: on the candidate's
    validation split, without the base model)."""
    export = store.open("export", current.export_version)
    reporter.info(f"promote: evaluating the promoted export {current.export_version} with this run's settings")
    source = None
    if eval_config.held_in:
        reformat = evaluation.manifest["inputs"]["reformat"]
        source = evaluate_stage.HeldInSource(store.open("reformat", reformat).path, None)
        eval_config = eval_config.model_copy(update={"held_in_base": False})
    evaluate_stage.evaluate_to(
        out_dir, export.file("merged"), eval_config, reporter, None, f"promoted export {current.export_version}", source
    )
    return scores_of(out_dir, metric), held_in_mean(out_dir)


def run(ctx: StageContext) -> StageOutcome:
    config: PromoteConfig = ctx.config  # type: ignore[assignment]
    assert ctx.root is not None, "the runner passes the artifact root"
    store = ArtifactStore(ctx.root)
    evaluation = ctx.inputs["evaluate"]
    eval_config, settings = evaluation_settings(evaluation, config)
    scores, held = scores_of(evaluation.path, config.metric), held_in_mean(evaluation.path)
    export_version = evaluation.manifest["inputs"]["export"]
    current = promoted(ctx.root, ctx.profile_name)

    baseline: dict[str, float] | None = None
    if current is not None and current.export_version == export_version:
        verdict = Verdict(True, f"export {export_version} is already the promoted model", [])
    else:
        note = ""
        baseline_held: float | None = None
        if current is not None and current.settings == settings:
            baseline, baseline_held = current.scores, current.held_in_mean
        elif current is not None and store.exists("export", current.export_version):
            baseline, baseline_held = rescore(
                store, current, evaluation, eval_config, config.metric, ctx.out_dir / "baseline", ctx.reporter
            )
            rescored = Promotion(
                current.export_version, current.evaluate_version, baseline, mean_score(baseline), settings,
                f"re-evaluated with the settings of evaluate {evaluation.version}", "gate", ctx.version,
                config.metric, baseline_held,
            )
            record_decision(ctx.root, ctx.profile_name, rescored, "rescored")
        elif current is not None:
            note = f"the promoted export {current.export_version} is no longer under {ctx.root}; "
        check = None
        if config.held_in and held is not None:
            check = HeldInCheck(held, baseline_held, config.held_in_tolerance)
        verdict = judge(scores, baseline, config.tolerance, config.per_set_tolerance, check)
        verdict = replace(verdict, reason=note + verdict.reason)

    decision = "promoted" if verdict.promote else "kept"
    candidate = Promotion(
        export_version, evaluation.version, scores, mean_score(scores), settings, verdict.reason, "gate", ctx.version,
        config.metric, held,
    )
    served = candidate if verdict.promote else current
    text = (
        f"# Promotion: {decision}\n\nCandidate export `{export_version}` (evaluate `{evaluation.version}`): "
        f"**{decision}**, because {verdict.reason}.\n\nServed now: export `{served.export_version if served else '-'}`."
        f"\n\n{markdown_table(verdict.rows) if verdict.rows else ''}\n"
    )
    (ctx.out_dir / "decision.md").write_text(text, encoding="utf-8")
    (ctx.out_dir / "decision.json").write_text(
        json.dumps({"decision": decision, "reason": verdict.reason, "candidate": asdict(candidate),
                    "baseline_scores": baseline, "comparison": verdict.rows}, ensure_ascii=False, indent=2),
        encoding="utf-8",
    )
    export_card = store.open("export", export_version).file("README.md")
    from kositp.promote.card import promoted_card

    metrics = json.loads(evaluation.file("metrics.json").read_text(encoding="utf-8"))
    card = promoted_card(export_card, candidate, decision, verdict.rows, metrics)
    (ctx.out_dir / "README.md").write_text(card, encoding="utf-8")
    if verdict.rows:  # the record is written last: nothing after it can fail and leave it ahead of the artifact
        record_decision(ctx.root, ctx.profile_name, candidate, decision)
        ctx.reporter.table(
            "promote-comparison", verdict.rows, f"zero-shot macro F1 ({config.metric}): candidate vs promoted model"
        )
    ctx.reporter.markdown("promote-decision", text)
    ctx.reporter.info(f"promote: {decision} export {export_version}: {verdict.reason}")
    return StageOutcome(
        rows={"promoted": int(verdict.promote)},
        report={
            "decision": decision,
            "reason": verdict.reason,
            "metric": config.metric,
            "export": export_version,
            "served_export": served.export_version if served else None,
            "mean_macro_f1": candidate.mean_macro_f1,
            "baseline_mean_macro_f1": mean_score(baseline) if baseline else None,
        },
    )


# gpu: it may evaluate the promoted model again
STAGE = Stage(
    name="promote", code_version="2", config=PromoteConfig, run=run, inputs=("evaluate",), gpu=True,
    description="promote the new model only if its zero-shot macro F1 is not worse than the promoted one's",
)
