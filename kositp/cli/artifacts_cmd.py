"""``kositp artifacts``: list and inspect published artifacts."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from kositp.artifacts import ArtifactError, ArtifactStore
from kositp.cli.application import app
from kositp.promote.record import PromotionError
from kositp.reporting import format_table
from kositp.retention import collect_garbage

artifacts_app = typer.Typer(no_args_is_help=True, help="List and inspect published artifacts.")
app.add_typer(artifacts_app, name="artifacts")

RootOption = Annotated[str, typer.Option(help="artifact root")]


@artifacts_app.command("list")
def list_artifacts(
    root: RootOption = "./artifacts",
    stage: Annotated[str | None, typer.Option(help="only this stage")] = None,
    json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every published artifact, oldest first."""
    found = ArtifactStore(root).list(stage)
    rows = [
        {
            "stage": a.stage,
            "version": a.version,
            "profile": a.manifest.get("profile", ""),
            "finished_at": a.manifest.get("finished_at", ""),
            "rows": ", ".join(f"{k}={v}" for k, v in a.rows.items()),
            "path": str(a.path),
        }
        for a in found
    ]
    if json_:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
    else:
        typer.echo(format_table(rows) if rows else f"no artifacts under {root}")


@artifacts_app.command("show")
def show_artifact(
    ref: Annotated[str, typer.Argument(help="STAGE, STAGE/VERSION-PREFIX or STAGE/latest[:PROFILE]")],
    root: RootOption = "./artifacts",
    verify: Annotated[bool, typer.Option(help="check every file's checksum")] = True,
) -> None:
    """Print an artifact's manifest (after verifying its files)."""
    stage, _, prefix = ref.partition("/")
    store = ArtifactStore(root)
    try:
        version = store.resolve(stage, prefix or "latest")
        artifact = store.open(stage, version, verify=verify)
    except ArtifactError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps({"path": str(artifact.path), **artifact.manifest}, ensure_ascii=False, indent=2))


def prefect_result_dir() -> str:
    """Where Prefect keeps task results (files named by the task's cache key, so by version)."""
    from prefect.settings import get_current_settings

    return str(get_current_settings().results.local_storage_path)


@artifacts_app.command("gc")
def collect(
    keep: Annotated[int, typer.Option(min=1, help="newest versions to keep per stage")],
    root: RootOption = "./artifacts",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would go; delete nothing")] = False,
) -> None:
    """Delete versions that are not among the newest KEEP of their stage, not promoted or latest,
    and not an input of a kept version; abandoned staging folders (a day untouched) go too."""
    store = ArtifactStore(root)
    try:
        removed, busy = collect_garbage(store, keep, dry_run=dry_run, result_dirs=[prefect_result_dir()])
    except PromotionError as exc:
        typer.echo(f"error: {exc} (nothing was deleted)", err=True)
        raise typer.Exit(1) from exc
    rows = [
        {"stage": r.stage, "version": r.version, "why": r.why, "MB": f"{r.bytes / 1e6:.1f}", "path": str(r.path)}
        for r in removed
    ]
    if rows:
        typer.echo(format_table(rows))
    verb = "would free" if dry_run else "freed"
    typer.echo(f"{verb} {sum(r.bytes for r in removed) / 1e6:.1f} MB in {len(removed)} folders under {store.root}")
    for r in busy:
        typer.echo(f"kept {r.path}: a build holds its lock", err=True)
