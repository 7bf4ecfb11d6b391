"""How a stage tells people what it is doing, without knowing who is listening.

Stages call a :class:`Reporter`; the console implementation below prints and shows tqdm bars,
and the orchestrator supplies one that turns the same calls into Prefect UI artifacts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from kositp.artifacts import published_location

log = logging.getLogger("kositp")

Advance = Callable[[int], None]


class Reporter(Protocol):
    def info(self, message: str) -> None: ...

    def warning(self, message: str) -> None: ...

    def progress(self, description: str, total: int | None) -> Any:
        """Context manager yielding ``advance(n)``."""

    def table(self, key: str, rows: Sequence[dict[str, Any]], description: str = "") -> None: ...

    def markdown(self, key: str, text: str, description: str = "") -> None: ...

    def image(self, key: str, path: Path, description: str = "") -> None: ...


class ConsoleReporter:
    """Terminal reporter: log lines, tqdm progress bars, tables as aligned text."""

    def __init__(self, logger: logging.Logger = log, show_progress: bool = True):
        self.logger = logger
        self.show_progress = show_progress

    def info(self, message: str) -> None:
        self.logger.info(message)

    def warning(self, message: str) -> None:
        self.logger.warning(message)

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Advance]:
        from tqdm.auto import tqdm  # here, not at import: most commands show no bar

        with tqdm(total=total, desc=description, disable=not self.show_progress, leave=False) as bar:
            yield bar.update

    def table(self, key: str, rows: Sequence[dict[str, Any]], description: str = "") -> None:
        self.logger.info("%s%s\n%s", key, f" ({description})" if description else "", format_table(rows))

    def markdown(self, key: str, text: str, description: str = "") -> None:
        self.logger.info("%s:\n%s", key, text)

    def image(self, key: str, path: Path, description: str = "") -> None:
        self.logger.info("%s: image at %s", key, published_location(path))


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "(empty)"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def markdown_cell(value: Any) -> str:
    """``value`` as one table cell: a ``|`` would end the cell and a line break the row."""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    return "<br>".join(text.splitlines()) if text else ""


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """A GitHub-flavoured Markdown table (Prefect's UI and the data cards render it)."""
    if not rows:
        return "_(empty)_"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "| " + " | ".join(map(markdown_cell, columns)) + " |\n|" + "---|" * len(columns)
    body = "\n".join("| " + " | ".join(markdown_cell(r.get(c, "")) for c in columns) + " |" for r in rows)
    return f"{head}\n{body}"


_FRONT_MATTER = re.compile(r"\A---\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)


def front_matter_as_block(text: str) -> str:
    """``text`` with its leading YAML front matter (a model card's metadata) moved to a code block at the end.

    A viewer that does not know front matter, such as Prefect's UI, reads each of its lines before a
    ``---`` as a heading: a model card showed as 25 giant headings. The card's file keeps it as is.
    """
    match = _FRONT_MATTER.match(text)
    if not match:
        return text
    metadata = match.group(1)
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", metadata)), default=0))
    body = text[match.end() :].rstrip()
    return f"{body}\n\n**Metadata** (the card's YAML front matter):\n\n{fence}yaml\n{metadata}\n{fence}\n"
