"""``kositp deploy`` and ``kositp server``: the pipeline on a real Prefect server, with its UI.

``kositp run`` needs no server (Prefect starts a temporary one over the same database in
``PREFECT_HOME``), so ``kositp server`` afterwards shows every run made so far. Deployments,
schedules and workers need a server that stays up: start it with ``kositp server``, point
``PREFECT_API_URL`` at it and run ``kositp deploy``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from kositp.cli.application import app, configure_logging
from kositp.cli.process_tree import run_until_stopped
from kositp.config import REPO_ROOT
from kositp.errors import PermanentError
from kositp.reporting import format_table

PREFECT_FILE = REPO_ROOT / "deployments" / "prefect.yaml"


@app.command()
def deploy(
    prefect_file: Annotated[Path, typer.Option(help="the deployments to register")] = PREFECT_FILE,
    repo_dir: Annotated[
        Path, typer.Option(help="where workers find this repository (their working directory)")
    ] = REPO_ROOT,
    json_: Annotated[bool, typer.Option("--json", help="one JSON object per registered item")] = False,
) -> None:
    """Create missing work pools and the `gpu` limit, and register every deployment (idempotent)."""
    configure_logging()
    api_url = os.environ.get("PREFECT_API_URL")
    if not api_url:
        typer.echo(
            "error: PREFECT_API_URL is not set; start a server (`kositp server`) and "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api`",
            err=True,
        )
        raise typer.Exit(2)
    if not (repo_dir / "flows" / "pipeline.py").is_file():
        typer.echo(f"error: {repo_dir} is not a KOSITP checkout (no flows/pipeline.py)", err=True)
        raise typer.Exit(2)
    from kositp_flows.deploy import deploy_all

    try:
        with contextlib.redirect_stdout(sys.stderr):  # Prefect prints its own tables; stdout is ours
            done = deploy_all(prefect_file, repo_dir)
    except PermanentError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    rows = [{"kind": d.kind, "name": d.name, "status": d.status, "detail": d.detail} for d in done]
    if json_:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
    else:
        typer.echo(format_table(rows))
        typer.echo(f"\nserver: {api_url}\nworkers: `prefect worker start --pool <pool>` from {repo_dir.resolve()}")


@app.command()
def server(
    host: Annotated[str, typer.Option(help="address to listen on (0.0.0.0 to reach it from other machines)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port of the UI and the API")] = 4200,
) -> None:
    """Start Prefect's server with its UI over this machine's Prefect database; Ctrl-C, SIGTERM or SIGHUP stops it."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.echo(
        f"Prefect UI: http://{shown}:{port}\n"
        f"API: http://{shown}:{port}/api  (in another terminal: export PREFECT_API_URL=http://{shown}:{port}/api)\n"
        f"database: {os.environ.get('PREFECT_HOME', '~/.prefect')}/prefect.db (the runs of `kositp run` are there)",
        err=True,
    )
    # Host and port as settings, not flags: the UI derives the API address it calls from them (with
    # --port alone it calls port 4200), and a PREFECT_API_URL of the shell would point it elsewhere.
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_UI_API_URL")}
    env.update(
        PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_SERVER_API_HOST=host, PREFECT_SERVER_API_PORT=str(port)
    )
    if host not in ("0.0.0.0", "::"):
        env["PREFECT_UI_API_URL"] = f"http://{host}:{port}/api"
    command = [sys.executable, "-m", "prefect", "server", "start"]
    raise typer.Exit(run_until_stopped("Prefect's server", command, env, say=lambda line: typer.echo(line, err=True)))
