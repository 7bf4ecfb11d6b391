"""``kositp promote`` and ``kositp promoted``: a person's override of the gate, and what is served."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from kositp.artifacts import ArtifactError, ArtifactStore
from kositp.cli.application import app
from kositp.config import ProfileError, load_profile
from kositp.promote.gate import mean_score
from kositp.promote.record import Promotion, PromotionError, read_history, record_decision, record_path
from kositp.reporting import format_table

ProfileOption = Annotated[str, typer.Option(help="profile whose promoted model this is")]
RootOption = Annotated[str | None, typer.Option(help="artifact root (default: the profile's)")]


def _root(profile: str, root: str | None) -> str:
    try:
        return root or str(load_profile(profile).root)
    except ProfileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def latest_evaluation(store: ArtifactStore, export_version: str) -> tuple[str, dict[str, float]]:
    """The newest evaluation of an export, if any: its version and per-set macro F1."""
    from kositp.promote.stage import scores_of  # the evaluate stage imports scikit-learn and pandas

    for artifact in reversed(store.list("evaluate")):
        if artifact.manifest.get("inputs", {}).get("export") == export_version:
            return artifact.version, scores_of(artifact.path)
    return "", {}


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="export version (or a unique prefix) to serve")],
    profile: ProfileOption = "demo",
    root: RootOption = None,
    reason: Annotated[str, typer.Option(help="why, for the history")] = "promoted by hand",
) -> None:
    """Promote an export by hand, whatever the gate said; the history keeps who and why."""
    store = ArtifactStore(_root(profile, root))
    try:
        export_version = store.resolve("export", version)
        store.open("export", export_version)
        evaluate_version, scores = latest_evaluation(store, export_version)
        record_decision(
            store.root,
            profile,
            Promotion(export_version, evaluate_version, scores, mean_score(scores), {}, reason, "manual"),
            "promoted",
        )
    except (ArtifactError, PromotionError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"promoted export {export_version} for {profile} ({record_path(store.root, profile)})")


@app.command()
def promoted(
    profile: ProfileOption = "demo",
    root: RootOption = None,
    history: Annotated[bool, typer.Option(help="every decision, oldest first")] = False,
    json_: Annotated[bool, typer.Option("--json", help="the record as JSON")] = False,
) -> None:
    """The profile's promoted model (what `kositp serve` serves) and, with --history, every decision."""
    store = ArtifactStore(_root(profile, root))
    try:
        record = read_history(store.root, profile)
        exported = record.current is None or store.exists("export", record.current.export_version)
    except (ArtifactError, PromotionError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if not exported:
        typer.echo(f"warning: the promoted export {record.current.export_version} is no longer under {store.root} "
                   "(removed?): kositp serve cannot serve it; promote another export (kositp promote VERSION)", err=True)
    if json_:
        typer.echo(json.dumps(record.to_json(), ensure_ascii=False, indent=2))
        return
    if record.current is None:
        typer.echo(f"nothing is promoted for {profile} under {store.root}")
        raise typer.Exit(1)
    current = record.current
    typer.echo(
        f"promoted for {profile}: export {current.export_version} ({store.path('export', current.export_version)})\n"
        f"mean macro F1 {current.mean_macro_f1:.4f}; {current.by} at {current.at}: {current.reason}"
    )
    if current.promote_version:
        typer.echo(f"model card: {store.path('promote', current.promote_version) / 'README.md'}")
    if history:
        rows = [
            {k: entry.get(k, "") for k in ("at", "decision", "by", "export_version", "mean_macro_f1", "reason")}
            for entry in record.history
        ]
        for row in rows:
            row["mean_macro_f1"] = f"{row['mean_macro_f1']:.4f}" if row["mean_macro_f1"] != "" else ""
        typer.echo("\n" + format_table(rows))
