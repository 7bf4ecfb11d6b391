"""A :class:`kositp.reporting.Reporter` that shows a stage's reports in the Prefect UI."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.logging import get_run_logger

from kositp.artifacts import published_location
from kositp.reporting import Advance, ConsoleReporter, front_matter_as_block
from kositp.secrets import redact

_PROGRESS_STEPS = 100


def artifact_key(key: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", key.lower()).strip("-") or "report"


class PrefectReporter(ConsoleReporter):
    """Logs to the run logger; tables, markdown, images and progress become UI artifacts."""

    def __init__(self) -> None:
        super().__init__(logger=get_run_logger(), show_progress=True)  # type: ignore[arg-type]

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Advance]:
        artifact_id = create_progress_artifact(0.0, description=description) if total else None
        done = 0
        shown = 0.0
        with super().progress(description, total) as console_advance:

            def advance(n: int = 1) -> None:
                nonlocal done, shown
                console_advance(n)
                done += n
                percent = min(100.0, 100.0 * done / total) if total else 0.0
                if artifact_id and percent - shown >= 100 / _PROGRESS_STEPS:
                    update_progress_artifact(artifact_id, percent)
                    shown = percent

            yield advance
        if artifact_id:
            update_progress_artifact(artifact_id, 100.0)

    def table(self, key: str, rows: Sequence[dict[str, Any]], description: str = "") -> None:
        super().table(key, rows, description)
        create_table_artifact(redact([dict(r) for r in rows]), key=artifact_key(key), description=description)

    def markdown(self, key: str, text: str, description: str = "") -> None:
        create_markdown_artifact(redact(front_matter_as_block(text)), key=artifact_key(key), description=description)

    def image(self, key: str, path: Path, description: str = "") -> None:
        encoded = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        published = published_location(path)
        body = f"![{key}](data:image/png;base64,{encoded})\n\n`{published}`"
        create_markdown_artifact(body, key=artifact_key(key), description=description or str(published))
