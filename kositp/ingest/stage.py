"""The ``ingest`` stage: raw files named in the profile to ``records.parquet``, ``quarantine.parquet``
and ``data_card.md``, with counts by source, kind, format and reject reason."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from kositp.config import StageConfig, resolve_data_path
from kositp.file_hashes import tree_digest
from kositp.ingest.adapters import FORMAT_NAMES
from kositp.ingest.guard import MAX_DEPTH, MAX_RECORD_BYTES
from kositp.stages import Stage, StageContext, StageOutcome


class IngestConfig(StageConfig):
    paths: list[str] = Field(
        default_factory=lambda: ["data/raw"],
        description="raw files, folders (read recursively) or zips; a relative path is tried from the working "
        "directory, then from the repository; their names and contents are part of the version",
    )
    format: str = Field(
        "auto",
        description="auto: each file's first 64 KB pick its adapter; an adapter name, jsonl or csv forces one "
        "for every file (a file it finds no records in is quarantined as unknown_format)",
    )
    max_chars: int = Field(
        20000, ge=1, description="characters a record's passage may have; a longer one is quarantined as too_long"
    )
    near_dup_threshold: float | None = Field(
        0.9,
        gt=0,
        le=1,
        description="estimated Jaccard similarity (MinHash of 5-character shingles) from which a record without a "
        "question is quarantined as a near_duplicate of an earlier one; lower catches looser copies; "
        "null: no near-duplicate search",
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="jsonl/csv: record field -> your column name (text, title, doc_id, question, answers, summary, "
        "keywords, kind), for columns the usual names do not find, e.g. {text: 본문, summary: 요약}",
    )
    max_depth: int = Field(
        MAX_DEPTH,
        ge=4,
        le=10_000,
        description="JSON nesting levels a record may have; deeper is quarantined as too_deep (the JSON parser's "
        "memory grows with the square of the depth; real AIHub/KISTI files nest under 10)",
    )
    max_record_bytes: int = Field(
        MAX_RECORD_BYTES,
        ge=1 << 16,
        description="bytes one JSON record may have (characters, for a jsonl/csv line); a larger one is "
        "quarantined as too_large without being read whole (bounds the memory one record can take)",
    )

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value != "auto" and value not in FORMAT_NAMES:
            raise ValueError(f"unknown format {value!r}; known: auto, {', '.join(FORMAT_NAMES)}")
        return value

    def resolved_paths(self) -> list[Path]:
        return [resolve_data_path(raw) for raw in self.paths]


def raw_fingerprint(config: IngestConfig) -> Mapping[str, Any]:
    """Names and content hashes of every raw file, so new or edited downloads make a new version
    (a file whose stat is unchanged since it was last hashed costs a ``stat``: :mod:`kositp.file_hashes`)."""
    count, digest = tree_digest(config.resolved_paths())
    return {"raw_files": count, "raw_digest": digest}


def run(ctx: StageContext) -> StageOutcome:
    import pyarrow.parquet as pq

    from kositp.ingest.core import IngestResult, IngestSettings, ingest
    from kositp.ingest.data_card import data_card, report_rows

    config = ctx.config if isinstance(ctx.config, IngestConfig) else IngestConfig(**ctx.params)
    settings = IngestSettings(config.format, config.max_chars, config.near_dup_threshold, config.columns,
                              max_depth=config.max_depth, max_record_bytes=config.max_record_bytes)
    with ctx.reporter.progress("ingest records", None) as advance:
        result: IngestResult = ingest(config.resolved_paths(), ctx.out_dir, settings, advance)
    (ctx.out_dir / "data_card.md").write_text(data_card(result), encoding="utf-8")
    summary = result.summary()
    ctx.reporter.table("ingest-counts", report_rows(result), "records kept and rejected by source, kind, format and reason")
    ctx.reporter.markdown("ingest-data-card", data_card(result))
    ctx.reporter.info(f"ingest: read {summary['read']}, kept {summary['kept']}, rejected {summary['rejected']}")
    return StageOutcome(
        rows={"records": summary["kept"], "quarantine": summary["rejected"]},
        report={
            **summary,
            "by_source": dict(sorted(result.by_source.items())),
            "duplicates_by_source": dict(sorted(result.duplicates_by_source.items())),
            "files": pq.read_metadata(result.ledger.path).num_rows,
        },
    )


STAGE = Stage(
    name="ingest", code_version="3", config=IngestConfig, run=run, inputs=(), fingerprint=raw_fingerprint,
    description="raw AIHub/KISTI files to normalized records, every record accounted for",
)
