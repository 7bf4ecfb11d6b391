"""The ``kositp`` command line. Each command group lives in its own module and registers itself.

A command imports only its own module: the others bring pydantic, Prefect's settings and the
profiles, 70-80 ms that ``kositp ingest`` has no use for. ``--help``, an unknown command, and
code that takes ``kositp.cli.app`` (tests driving it with a runner) get every command.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

from kositp.gc_pause import frozen_at_exit

if TYPE_CHECKING:
    import typer

# Each command (or command group) and the module that registers it.
COMMAND_MODULES = {
    "artifacts": "artifacts_cmd",
    "chat": "chat_cmd",
    "deploy": "deploy_cmd",
    "server": "deploy_cmd",
    "eval": "eval_cmd",
    "ingest": "ingest_cmd",
    "instructions": "instructions_cmd",
    "promote": "promote_cmd",
    "promoted": "promote_cmd",
    "run": "run_cmd",
    "serve": "serve_cmd",
}


def register(command: str | None = None) -> typer.Typer:
    """The application with ``command``'s module imported, or every command module when ``command``
    is not one (``None``, an option such as ``--help``, a typo Typer should answer with the list)."""
    from kositp.cli.application import app

    wanted = [COMMAND_MODULES[command]] if command in COMMAND_MODULES else sorted(set(COMMAND_MODULES.values()))
    for module in wanted:
        importlib.import_module(f"kositp.cli.{module}")
    return app


def __getattr__(name: str) -> typer.Typer:
    if name == "app":
        return register()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    frozen_at_exit()
    command = sys.argv[1] if len(sys.argv) > 1 else None
    if command == "ingest":
        from kositp.worker_process import single_threaded_blas

        single_threaded_blas()
    register(command)()
