"""The small markdown data card and the count table that the ingest stage reports."""

from __future__ import annotations

import heapq
from typing import Any

from kositp.ingest.core import IngestResult
from kositp.reporting import markdown_table


def report_rows(result: IngestResult) -> list[dict[str, Any]]:
    """One row per (dimension, value): source, kind, format, reject reason."""
    rows: list[dict[str, Any]] = []
    for dimension, counter in (
        ("source", result.by_source),
        ("kind", result.by_kind),
        ("format", result.by_format),
        ("reject_reason", result.ledger.by_reason),
        ("duplicates", result.duplicates_by_source),
    ):
        rows += [{"dimension": dimension, "value": k, "count": v} for k, v in sorted(counter.items())]
    return rows


FILES_SHOWN = 30


def data_card(result: IngestResult) -> str:
    """Counts, and the files with the most rejects (a download can hold a file per passage:
    every file's counts are in ``files.parquet``)."""
    total = result.ledger.totals
    worst = heapq.nlargest(FILES_SHOWN, ((t.rejected, name, t) for name, t in result.ledger.files() if t.rejected))
    files = [{"file": name, "read": t.read, "kept": t.kept, "rejected": t.rejected} for _, name, t in worst]
    return "\n\n".join(
        [
            "# Ingest data card",
            (f"Read **{total.read}** candidate records: kept **{total.kept}**, quarantined **{total.rejected}** "
            "(`quarantine.parquet` names the location and reason of each)."),
            "## Counts\n\n" + markdown_table(report_rows(result)),
            (f"## Files with rejects (top {FILES_SHOWN}; every file's counts are in `files.parquet`)\n\n"
             + markdown_table(files)),
            ("Text is NFC-normalized, control characters removed and whitespace tidied; masked personal "
            "data markers (`***`) are kept as in the source."),
        ]
    ) + "\n"
