"""``kositp chat``: the Chainlit chat page on a running ``kositp serve``."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from kositp.cli.application import app
from kositp.cli.process_tree import run_until_stopped

CHAT_APP = Path(__file__).resolve().parent.parent / "serve" / "chat_app.py"
# The page's font and Chainlit's theme file naming it: served from the page's own public/ folder
CHAT_ASSETS = CHAT_APP.parent / "chat_assets"
WELCOME = """# KOSITP

Chat with the model `kositp serve` serves. The first message says which model and artifact
version answers; the settings (gear icon) set the system prompt and the sampling.
"""


def chainlit_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "chainlit", "run", str(CHAT_APP), "--headless", "--host", host, "--port", str(port)]


@app.command("chat")
def chat(
    api_url: Annotated[str, typer.Option(help="the OpenAI-compatible API (kositp serve)")] = "http://127.0.0.1:8000/v1",
    host: Annotated[str, typer.Option(help="address of the chat page")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port of the chat page")] = 8001,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="KOSITP_API_KEY", show_default=False, help="the server's key (prefer KOSITP_API_KEY)"),
    ] = None,
) -> None:
    """A Chainlit chat page that streams the served model's answers."""
    # Looked up, not imported: importing chainlit writes .chainlit/ and .files/ into the cwd.
    if importlib.util.find_spec("chainlit") is None:
        typer.echo("error: kositp chat needs Chainlit: install the serve extra (pip install 'kositp[serve]')", err=True)
        raise typer.Exit(2)
    # Chainlit writes its config, file uploads and welcome page into its app root: a scratch
    # folder, so running the page never litters the working directory.
    app_root = Path(tempfile.mkdtemp(prefix="kositp-chat-"))
    (app_root / "chainlit.md").write_text(WELCOME, encoding="utf-8")
    shutil.copytree(CHAT_ASSETS, app_root / "public")
    env = {**os.environ, "CHAINLIT_APP_ROOT": str(app_root), "KOSITP_CHAT_BASE_URL": api_url}
    if api_key:
        env["KOSITP_API_KEY"] = api_key
    typer.echo(f"chat page on http://{host}:{port}, talking to {api_url}", err=True)
    try:  # Ctrl-C, SIGTERM or SIGHUP stop the page too, and the scratch folder is still removed
        code = run_until_stopped("the chat page", chainlit_command(host, port), env, say=lambda line: typer.echo(line, err=True))
    finally:
        shutil.rmtree(app_root, ignore_errors=True)
    raise typer.Exit(code)
