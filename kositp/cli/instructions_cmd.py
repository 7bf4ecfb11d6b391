"""``kositp instructions``: build the instruction bank into a folder, outside the artifact store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from kositp.cli.application import app, configure_logging
from kositp.reporting import ConsoleReporter
from kositp.stages import StageContext


@app.command()
def instructions(
    out: Annotated[Path, typer.Option(help="folder for bank.parquet and bank_summary.json (re-running resumes)")],
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible API base URL")] = None,
    model: Annotated[str | None, typer.Option(help="model name on that server")] = None,
    per_task: Annotated[int, typer.Option(help="instructions wanted per task")] = 100,
    offline: Annotated[bool, typer.Option("--offline", help="use the shipped offline bank, no API")] = False,
    max_requests: Annotated[int | None, typer.Option(help="request budget (API mode)")] = None,
    json_: Annotated[bool, typer.Option("--json", help="print one final JSON line on stdout")] = False,
) -> None:
    """Build per-task Korean instructions (API key from OPENAI_API_KEY; --offline needs none)."""
    # the stage's code (pandas, openai) only when it runs
    from kositp.instructions.generate import ApiUnavailable
    from kositp.instructions.stage import InstructionsConfig
    from kositp.instructions.stage import run as run_stage

    configure_logging()
    settings = {"mode": "offline" if offline else "api", "per_task": per_task}
    settings |= {k: v for k, v in (("base_url", base_url), ("model", model), ("max_requests", max_requests)) if v}
    try:
        config = InstructionsConfig(**settings)
    except ValidationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    out.mkdir(parents=True, exist_ok=True)
    ctx = StageContext(out_dir=out, params=config.model_dump(), inputs={}, reporter=ConsoleReporter(),
                       resumed=any(out.iterdir()), config=config)
    try:
        outcome = run_stage(ctx)
    except ApiUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    summary = outcome.report
    if json_:
        keys = ("tasks", "per_task", "requests", "rejected")
        typer.echo(json.dumps({k: summary[k] for k in keys}, ensure_ascii=False))
    else:
        typer.echo(f"{sum(summary['per_task'].values())} instructions for {summary['tasks']} tasks in {out}")
