"""``kositp ingest``: run the ingest adapters on files, folders or zips outside the pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from kositp.cli.application import app, configure_logging
from kositp.errors import PermanentError
from kositp.ingest.guard import MAX_DEPTH, MAX_RECORD_BYTES
from kositp.ingest.quarantine import IngestError
from kositp.reporting import format_table


@app.command("ingest")
def ingest_command(
    paths: Annotated[list[Path], typer.Argument(help="files, folders or zips")],
    out: Annotated[Path, typer.Option("--out", help="output folder")],
    format_: Annotated[str, typer.Option("--format", help="auto or an adapter name")] = "auto",
    max_chars: Annotated[int, typer.Option(help="longer passages are quarantined")] = 20000,
    max_depth: Annotated[int, typer.Option(help="records nested deeper are quarantined (too_deep)")] = MAX_DEPTH,
    max_record_bytes: Annotated[
        int, typer.Option(help="longer records (a data item, a JSONL line) are quarantined (too_large)")
    ] = MAX_RECORD_BYTES,
    json_: Annotated[bool, typer.Option("--json", help="print one JSON line of counts")] = False,
) -> None:
    """Read raw AIHub/KISTI files into OUT/records.parquet and OUT/quarantine.parquet."""
    from kositp.ingest.core import IngestSettings, ingest  # pyarrow and the parsers only when it runs
    from kositp.ingest.data_card import data_card, report_rows

    configure_logging()
    try:
        result = ingest(list(paths), out, IngestSettings(format=format_, max_chars=max_chars, max_depth=max_depth,
                                                        max_record_bytes=max_record_bytes))
    except (IngestError, PermanentError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    (out / "data_card.md").write_text(data_card(result), encoding="utf-8")
    if json_:
        typer.echo(json.dumps(result.summary(), ensure_ascii=False))
    else:
        typer.echo(format_table(report_rows(result)))
        typer.echo(f"records in {out / 'records.parquet'}, rejects in {out / 'quarantine.parquet'}")
