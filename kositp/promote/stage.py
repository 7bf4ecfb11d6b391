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
from typing import Any

from pydantic import Field

from kositp.artifacts import Artifact, ArtifactStore
from kositp.config import StageConfig
from kositp.evaluate import stage as evaluate_stage
from kositp.promote.card import promoted_card
from kositp.promote.gate import Verdict, comparable_settings, judge, mean_score
from kositp.promote.record import Promotion, promoted, record_decision
from kositp.reporting import Reporter, markdown_table
from kositp.stages import Stage, StageContext, StageOutcome


class PromoteConfig(StageConfig):
    tolerance: float = Field(0.0, ge=0.0, le=1.0, description="how far the mean macro F1 may drop")
    per_set_tolerance: float = Field(0.05, ge=0.0, le=1.0, description="how far any one set may drop")


def scores_of(evaluation_dir: Path) -> dict[str, float]:
    """Per-set macro F1 (invalid answers counted wrong) from an evaluation's ``metrics.json``."""
    metrics = json.loads((evaluation_dir / "metrics.json").read_text(encoding="utf-8"))["sets"]
    return {name: float(m["macro_f1"]) for name, m in metrics.items()}


def evaluation_settings(evaluation: Artifact) -> tuple[evaluate_stage.EvaluateConfig, dict[str, Any]]:
    params = evaluation.manifest["params"]
    config = evaluate_stage.EvaluateConfig(**params)
    return config, comparable_settings(params, evaluate_stage.STAGE.fingerprint(config))


def rescore(
    store: ArtifactStore, current: Promotion, config: evaluate_stage.EvaluateConfig, out_dir: Path, reporter: Reporter
) -> dict[str, float]:
    """Evaluate the promoted export again with the candidate's settings."""
    export = store.open("export", current.export_version)
    reporter.info(f"promote: evaluating the promoted export {current.export_version} with this run's settings")
    evaluate_stage.evaluate_to(
        out_dir, export.file("merged"), config, reporter, None, f"promoted export {current.export_version}"
    )
    return scores_of(out_dir)


def run(ctx: StageContext) -> StageOutcome:
    config: PromoteConfig = ctx.config  # type: ignore[assignment]
    assert ctx.root is not None, "the runner passes the artifact root"
    store = ArtifactStore(ctx.root)
    evaluation = ctx.inputs["evaluate"]
    eval_config, settings = evaluation_settings(evaluation)
    scores = scores_of(evaluation.path)
    export_version = evaluation.manifest["inputs"]["export"]
    current = promoted(ctx.root, ctx.profile_name)

    baseline: dict[str, float] | None = None
    if current is not None and current.export_version == export_version:
        verdict = Verdict(True, f"export {export_version} is already the promoted model", [])
    else:
        note = ""
        if current is not None and current.settings == settings:
            baseline = current.scores
        elif current is not None and store.exists("export", current.export_version):
            baseline = rescore(store, current, eval_config, ctx.out_dir / "baseline", ctx.reporter)
            rescored = Promotion(
                current.export_version, current.evaluate_version, baseline, mean_score(baseline), settings,
                f"re-evaluated with the settings of evaluate {evaluation.version}", "gate", ctx.version,
            )
            record_decision(ctx.root, ctx.profile_name, rescored, "rescored")
        elif current is not None:
            note = f"the promoted export {current.export_version} is no longer under {ctx.root}; "
        verdict = judge(scores, baseline, config.tolerance, config.per_set_tolerance)
        verdict = replace(verdict, reason=note + verdict.reason)

    decision = "promoted" if verdict.promote else "kept"
    candidate = Promotion(
        export_version, evaluation.version, scores, mean_score(scores), settings, verdict.reason, "gate", ctx.version
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
    (ctx.out_dir / "README.md").write_text(promoted_card(export_card, candidate, decision, verdict.rows), encoding="utf-8")
    if verdict.rows:  # the record is written last: nothing after it can fail and leave it ahead of the artifact
        record_decision(ctx.root, ctx.profile_name, candidate, decision)
        ctx.reporter.table("promote-comparison", verdict.rows, "zero-shot macro F1: candidate vs promoted model")
    ctx.reporter.markdown("promote-decision", text)
    ctx.reporter.info(f"promote: {decision} export {export_version}: {verdict.reason}")
    return StageOutcome(
        rows={"promoted": int(verdict.promote)},
        report={
            "decision": decision,
            "reason": verdict.reason,
            "export": export_version,
            "served_export": served.export_version if served else None,
            "mean_macro_f1": candidate.mean_macro_f1,
            "baseline_mean_macro_f1": mean_score(baseline) if baseline else None,
        },
    )


STAGE = Stage(
    name="promote",
    code_version="1",
    config=PromoteConfig,
    run=run,
    inputs=("evaluate",),
    gpu=True,  # it may evaluate the promoted model again
    description="promote the new model only if its zero-shot macro F1 is not worse than the promoted one's",
)
