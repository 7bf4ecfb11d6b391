"""What ``kositp ... --help`` says about files of this repository is true of the tree."""

from __future__ import annotations

import re
from pathlib import Path

import click
import typer.main

from kositp.cli import app

ROOT = Path(__file__).resolve().parents[1]
# A help text's path into the repository: a top-level folder of the checkout, then a relative path;
# `<name>` stands for any name.
_FOLDERS = "|".join(p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith("."))
_CLAIM = re.compile(rf"(?<![\w./])({_FOLDERS})/[\w./<>*-]*")


def _commands(command: click.Command, name: str = "kositp"):
    yield name, command
    for sub_name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, f"{name} {sub_name}")


def _claims() -> list[tuple[str, str]]:
    """Every (command option, path) a help text or a path default names inside the repository."""
    found = []
    for name, command in _commands(typer.main.get_command(app)):
        texts = [(name, command.help or "")]
        for param in command.params:
            where = f"{name} {param.opts[0] if param.opts else param.name}"
            texts.append((where, getattr(param, "help", None) or ""))
            if isinstance(param.default, Path):
                found.append((where, str(param.default)))
        found += [(where, m.group(0).rstrip(".")) for where, text in texts for m in _CLAIM.finditer(text)]
    return found


def test_help_texts_name_paths_that_exist():
    claims = _claims()
    assert any(where == "kositp eval --prompt-set" for where, _ in claims), "the prompt set's file is named in its help"
    missing = []
    for where, claim in claims:
        pattern = re.sub(r"<[^>]*>", "*", claim)
        path = Path(pattern)
        base, relative = (Path("/"), pattern.lstrip("/")) if path.is_absolute() else (ROOT, pattern)
        if not any(base.glob(relative)) and not (base / relative).exists():
            missing.append(f"{where}: {claim}")
    assert missing == []
