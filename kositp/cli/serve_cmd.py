"""``kositp serve``: the OpenAI-compatible API over the promoted model (or any model folder)."""

from __future__ import annotations

import importlib.util
import signal
import sys
from typing import Annotated

import typer

from kositp.cli.application import app, configure_logging


@app.command("serve")
def serve(
    model: Annotated[
        str | None,
        typer.Option(
            help="a model to serve instead of a profile's export: any reference a profile's base_model takes "
            "(folder, Hub id, tiny-llama[...], PATH.gguf, package:NAME)"
        ),
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="serve this profile's promoted export, else its latest [default: demo]")
    ] = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="KOSITP_API_KEY", show_default=False,
                     help="require 'Authorization: Bearer KEY' on /v1 (prefer the KOSITP_API_KEY variable)"),
    ] = None,
    backend: Annotated[str, typer.Option(help="auto | hf | vllm (auto: vllm with a GPU and a vLLM python)")] = "auto",
    device: Annotated[str, typer.Option(help="hf backend: auto | cpu | cuda | cuda:N")] = "auto",
    served_model_name: Annotated[
        str | None, typer.Option(help="model id clients send (default kositp-<profile>, or kositp)")
    ] = None,
    max_tokens: Annotated[int, typer.Option(help="cap on a request's max_tokens")] = 1024,
    default_max_tokens: Annotated[int, typer.Option(help="max_tokens when a request sets none")] = 256,
    max_prompt_tokens: Annotated[int, typer.Option(help="cap on a prompt's length in tokens")] = 2048,
    max_messages: Annotated[int, typer.Option(help="cap on a chat request's messages")] = 64,
    max_body_bytes: Annotated[int, typer.Option(help="cap on a request body")] = 1 << 20,
    concurrency: Annotated[int, typer.Option(help="requests generating at once")] = 2,
    queue_size: Annotated[int, typer.Option(help="requests waiting for a slot; beyond it, 429")] = 16,
    max_connections: Annotated[
        int, typer.Option(help="open client connections; beyond it, the one waiting longest for its headers is closed")
    ] = 512,
    header_timeout: Annotated[float, typer.Option(help="seconds a connection may take to send a request's headers")] = 10.0,
    graceful_timeout: Annotated[float, typer.Option(help="seconds in-flight requests get at shutdown")] = 60.0,
    vllm_python: Annotated[str | None, typer.Option(help="python of the vLLM environment")] = None,
    vllm_arg: Annotated[list[str] | None, typer.Option(help="extra argument for vLLM's server (repeatable)")] = None,
) -> None:
    """Serve a model over an OpenAI-compatible API: /v1/chat/completions, /v1/completions, /v1/models, /health."""
    configure_logging()
    from pydantic import ValidationError

    from kositp.errors import PermanentError
    from kositp.serve.connections import connection_cap
    from kositp.serve.schemas import Limits
    from kositp.serve.server import build_app, run
    from kositp.serve.source import served_model

    if importlib.util.find_spec("uvicorn") is None:
        typer.echo("error: kositp serve needs uvicorn: install the serve extra (pip install 'kositp[serve]')", err=True)
        raise typer.Exit(2)
    if model and profile:
        typer.echo("error: pass --model REF or --profile NAME, not both", err=True)
        raise typer.Exit(2)
    # Until uvicorn takes over the signals: SIGTERM unwinds (SystemExit), so a vLLM server that is
    # still loading is stopped on the way out instead of left running on the GPU.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        limits = Limits(max_tokens=max_tokens, default_max_tokens=default_max_tokens,
                        max_prompt_tokens=max_prompt_tokens, max_messages=max_messages,
                        max_body_bytes=max_body_bytes, concurrency=concurrency, queue_size=queue_size,
                        max_connections=connection_cap(max_connections), header_timeout_s=header_timeout)
        served = served_model(model, profile, served_model_name)
        typer.echo(f"serving {served.describe()} as model {served.name!r} on http://{host}:{port}/v1"
                   + (" (API key required)" if api_key else ""), err=True)
        if not api_key and host not in ("127.0.0.1", "localhost", "::1"):
            typer.echo(f"warning: listening on {host} without an API key: anyone who reaches this port can use "
                       "the model (set KOSITP_API_KEY)", err=True)
        server_app = build_app(served, backend, limits, api_key, device, vllm_python, tuple(vllm_arg or ()))
    except (PermanentError, ValidationError, ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        signal.signal(signal.SIGTERM, previous)
    run(server_app, host, port, graceful_timeout, limits)
