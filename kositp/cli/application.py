"""The ``kositp`` Typer application the command modules register on, and the logging they share."""

from __future__ import annotations

import logging
import sys

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="KOSITP: Korean corpora to an instruction-tuned LLM.")


@app.callback()
def _commands() -> None:
    # Without a callback, an application with one command registered runs it with no name
    # (``kositp ingest PATH`` would read ``ingest`` as the path): ``main`` registers one at a time.
    return None


def configure_logging(verbose: bool = False) -> None:
    """Logs go to stderr so that ``--json`` output on stdout stays machine-readable."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for chatty in ("httpx", "httpcore", "urllib3"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
