"""``kositp run``: the pipeline as a Prefect flow, from the terminal."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from kositp.artifacts import ArtifactStore
from kositp.cli.application import app, configure_logging
from kositp.cli.prefect_server import start_temporary_server
from kositp.cli.run_output import new_log_path, next_steps, terminal
from kositp.config import ProfileError, load_profile
from kositp.errors import PermanentError
from kositp.pipeline import plan, select
from kositp.reporting import format_table


@app.command()
def run(
    profile: Annotated[str, typer.Option(help="profile name in configs/ or a path (YAML, or a seed config.json)")] = "demo",
    root: Annotated[str | None, typer.Option(help="artifact root (default: the profile's)")] = None,
    until: Annotated[str | None, typer.Option(help="run stages up to and including this one")] = None,
    only: Annotated[list[str] | None, typer.Option(help="run just this stage (repeatable); upstream must exist")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a profile key, e.g. sft.base_model=PATH")] = None,
    force: Annotated[list[str] | None, typer.Option(help="rebuild this stage even if its version exists")] = None,
    json_: Annotated[bool, typer.Option("--json", help="one JSON object per stage on stdout")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="every log line here (default: one line per stage, the rest in <root>/_logs/)")
    ] = False,
) -> None:
    """Run the pipeline (or part of it) through Prefect; published versions are cache hits."""
    configure_logging()
    try:  # a bad profile, override, input path or artifact root fails here, before a Prefect server is started
        loaded = load_profile(profile, set_ or [], root=root)
        planned = plan(loaded)
        selected = select(planned, until=until, only=only or [])
        ArtifactStore(loaded.root).check_writable()
    except PermanentError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    from kositp_flows.pipeline import PipelineFailed, pipeline

    store = ArtifactStore(loaded.root)
    built_before = {p.name for p in selected if store.exists(p.name, p.version)}
    failed = False
    try:
        # stdout carries only the results; whatever libraries print while stages run goes to stderr
        # (--verbose) or to the run's log file
        log_path = None if verbose else new_log_path(loaded.root)
        with terminal(log_path) as console:
            start_temporary_server(say=lambda line: print(line, file=console, flush=True))
            results = pipeline(profile=profile, root=root, until=until, only=only or [], overrides=set_ or [],
                               force=force or [])
    except ProfileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except PipelineFailed as exc:
        results, failed = exc.results, True
    except Exception as exc:  # Prefect itself failed (its server, its API): say so in one line
        for item in selected:  # what this run published before the failure
            if item.name not in built_before and store.exists(item.name, item.version):
                line = {"stage": item.name, "version": item.version, "status": "ran",
                        "path": str(store.path(item.name, item.version))}
                typer.echo(json.dumps(line, ensure_ascii=False) if json_ else f"{item.name} {item.version} ran")
        first = str(exc).splitlines()[0] if str(exc) else ""
        typer.echo(f"error: the run stopped: {type(exc).__name__}: {first}", err=True)
        raise typer.Exit(1) from exc
    if json_:
        for result in results:
            keys = ("stage", "version", "status", "path") + tuple(k for k in ("error", "note") if result.get(k))
            typer.echo(json.dumps({k: result[k] for k in keys}, ensure_ascii=False))
    else:
        rows = [{k: r[k] for k in ("stage", "version", "status", "path")} for r in results]
        typer.echo(format_table(rows) if rows else "no stages ran (none registered or selected)")
        for result in results:
            if result.get("note"):
                typer.echo(f"{result['stage']}: {result['note']}", err=True)
            if result.get("error"):
                typer.echo(f"{result['stage']} failed: {result['error']}", err=True)
        if failed and log_path is not None:
            typer.echo(f"details: {log_path}", err=True)
        tiny = any(str(p.params.get("base_model", "")).startswith("tiny-llama") for p in planned if p.name == "sft")
        closing = [] if failed else next_steps(results, loaded.name, root is not None, tiny)
        if closing:
            typer.echo("\n" + "\n".join(closing))
    if failed:
        raise typer.Exit(1)
