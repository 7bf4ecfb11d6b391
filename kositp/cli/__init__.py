"""The ``kositp`` command line. Each command group lives in its own module and registers here."""

from __future__ import annotations

import logging
import sys

import typer

from kositp.gc_pause import frozen_at_exit

app = typer.Typer(no_args_is_help=True, add_completion=False, help="KOSITP: Korean corpora to an instruction-tuned LLM.")


def configure_logging(verbose: bool = False) -> None:
    """Logs go to stderr so that ``--json`` output on stdout stays machine-readable."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for chatty in ("httpx", "httpcore", "urllib3"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


# Command modules register themselves on ``app`` when imported, so they come after it.
from kositp.cli import (
    artifacts_cmd,
    chat_cmd,
    deploy_cmd,
    eval_cmd,
    ingest_cmd,
    instructions_cmd,
    promote_cmd,
    run_cmd,
    serve_cmd,
)

__all__ = [
    "app", "artifacts_cmd", "chat_cmd", "deploy_cmd", "eval_cmd", "ingest_cmd", "instructions_cmd", "main", "promote_cmd", "run_cmd", "serve_cmd",
]


def main() -> None:
    frozen_at_exit()
    app()
