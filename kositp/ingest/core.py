"""The ingest loop: sources -> adapter units -> normalized, validated, deduplicated records.

Every candidate record is counted once as read, then either kept (written to
``records.parquet``) or rejected (written to ``quarantine.parquet`` with a reason). A file that
cannot be read at all, or whose JSON breaks part-way, costs one rejected unit for the unread
part; the run goes on with the next file. The :class:`Ledger` raises if anything vanished, and
writes the per-file counts to ``files.parquet``.
"""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import ijson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kositp.gc_pause import collector_paused
from kositp.ingest import adapters
from kositp.ingest.adapters.base import Missing
from kositp.ingest.candidates import Candidates, auto_processes
from kositp.ingest.dedup import NONE, Duplicates
from kositp.ingest.guard import MAX_DEPTH, MAX_RECORD_BYTES, GuardedJson, ValueTooLarge, deeper_than
from kositp.ingest.parquet_rows import RowWriter
from kositp.ingest.quarantine import QUARANTINE_COLUMNS, IngestError, Ledger, Reject
from kositp.ingest.readers import (
    ARCHIVE_ERRORS,
    READABLE_SUFFIXES,
    Source,
    UndecodableError,
    iter_sources,
    open_utf8,
)
from kositp.ingest.record_completion import checked_record
from kositp.ingest.suspects import READ_INDEX, read_suspects
from kositp.ingest.tabular import iter_rows

QUARANTINE_SCHEMA = pa.schema([(c, pa.string()) for c in QUARANTINE_COLUMNS])
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# What can stop a file part-way; UnicodeDecodeError and UndecodableError are ValueErrors.
UNREADABLE = (ijson.JSONError, ValueError, csv.Error, *ARCHIVE_ERRORS)
# What an adapter raises on a unit whose fields have unexpected types (a number where an object
# belongs): that unit is one reject, and the units after it are read.
UNIT_ERRORS = (TypeError, AttributeError, ValueError, KeyError, IndexError)


@dataclass(frozen=True)
class IngestSettings:
    format: str = "auto"
    max_chars: int = 20000
    near_dup_threshold: float | None = 0.9
    columns: Mapping[str, str] = field(default_factory=dict)
    # 1 or 2 processes (the second writes and hashes candidates); None decides by input size.
    processes: int | None = None
    # A unit (one ``data`` item, one JSONL line) nested deeper or longer than this is quarantined
    # as ``too_deep`` / ``too_large`` while streaming.
    max_depth: int = MAX_DEPTH
    max_record_bytes: int = MAX_RECORD_BYTES


@dataclass
class IngestResult:
    ledger: Ledger
    by_kind: Counter
    by_format: Counter
    by_source: Counter
    duplicates_by_source: Counter

    def summary(self) -> dict[str, Any]:
        """The CLI's one JSON line."""
        total = self.ledger.totals
        return {
            "read": total.read,
            "kept": total.kept,
            "rejected": total.rejected,
            "by_reason": dict(sorted(self.ledger.by_reason.items())),
            "by_kind": dict(sorted(self.by_kind.items())),
            "by_format": dict(sorted(self.by_format.items())),
        }


def _units(source: Source, settings: IngestSettings) -> Iterator[tuple[str, str, Any]]:
    """``(format, json_path, fields | Missing | Reject)`` for every candidate record of one source.

    A format the user forced that finds nothing in a file is one ``unknown_format`` reject for
    that file, so the file is accounted for (the file most likely holds another format).
    """
    units = _source_units(source, settings)
    return units if settings.format == "auto" else _accounted(units, settings.format)


def _accounted(units: Iterator[tuple[str, str, Any]], fmt: str) -> Iterator[tuple[str, str, Any]]:
    empty = True
    for unit in units:
        empty = False
        yield unit
    if empty:
        yield fmt, "", Reject("", "unknown_format", f"--format {fmt} found no records in this file")


def _source_units(source: Source, settings: IngestSettings) -> Iterator[tuple[str, str, Any]]:
    """The units of :func:`_units`.

    Whatever stops a file part-way (bad JSON, undecodable bytes, a damaged archive) ends it
    with one reject for the unread rest; the units before it stand. A unit that nests too deep
    or is too long is one ``too_deep`` / ``too_large`` reject (:mod:`kositp.ingest.guard`), and
    a unit the adapter finds no record in is one ``missing_field`` reject: nothing read is
    left uncounted.
    """
    fmt, columns = settings.format, settings.columns
    if source.problem:
        yield "none", "", Reject("", *source.problem)
        return
    if fmt == "auto" and source.suffix not in READABLE_SUFFIXES:
        yield "none", "", Reject("", "unsupported_member", f"not a JSON/JSONL/CSV file: {source.name}")
        return
    name, unread, guarded = "none", "", None
    try:
        stream, head, _ = open_utf8(source)
        with stream:
            tabular = fmt in adapters.TABULAR_FORMATS or (fmt == "auto" and source.suffix in (".jsonl", ".csv"))
            if tabular:
                name = fmt if fmt != "auto" else source.suffix.lstrip(".")
                rows = iter_rows(stream, "." + name if name == "csv" else ".jsonl", columns,
                                 settings.max_depth, settings.max_record_bytes)
                for path, item in rows:
                    unread = f":{int(path[1:]) + 1}"
                    yield name, path, item
                return
            adapter = adapters.detect(head) if fmt == "auto" else adapters.by_name(fmt)
            if adapter is None:
                yield "none", "", Reject("", "unknown_format", "structure matches no adapter; pass --format")
                return
            name = adapter.NAME
            prefix = adapter.prefix(head)
            base = "#/" + prefix.replace(".item", "/*").replace("item", "*").replace(".", "/") if prefix else "#"
            unread = base.replace("*", "0", 1)
            whole = _parsed_whole(stream, settings.max_depth) if not prefix else None
            if whole is None:
                unit_depth = prefix.count(".") + 1 if prefix else 0
                guarded = GuardedJson(stream, unit_depth, settings.max_depth, settings.max_record_bytes)
                whole = ijson.items(guarded, prefix, use_float=True, buf_size=guarded.largest_read)
            for n, unit in enumerate(whole):
                unread = base.replace("*", str(n + 1), 1)
                where = base.replace("*", str(n), 1) if "*" in base else base
                if guarded and (reject := guarded.claim(unit)):
                    yield name, where, Reject("", *reject)
                    continue
                found = False
                try:
                    for path, item in adapter.parse(unit, where):
                        found = True
                        yield name, path, item
                except UNIT_ERRORS as exc:  # a field of a type the family never has: this unit's rest, not the file's
                    found = True
                    why = f"{type(exc).__name__}: {str(exc)[:200]}"
                    yield name, where, Reject("", "missing_field", f"{adapter.NAME} cannot read this unit: {why}")
                if not found:
                    yield name, where, Missing(f"a record ({adapter.NAME} found none in this unit)")
    except UNREADABLE as exc:
        where = f"{unread} (rest of file unread)" if unread else ""
        yield name, where, Reject("", _unreadable_reason(exc), f"{type(exc).__name__}: {exc}")
    for reason, detail in guarded.unclaimed() if guarded else ():
        yield name, "", Reject("", reason, f"{detail}, outside the records")


def _parsed_whole(stream: BinaryIO, max_depth: int = MAX_DEPTH) -> list[Any] | None:
    """A short file that is one JSON document, parsed at once: ``[document]``, or None to stream it.

    For the many one-passage files of a book download, setting up ijson costs more than the
    parse. Only what ijson would give the same way is taken here: anything ijson reads
    differently (NaN, numbers past 64 bits, lone surrogate escapes, which it turns into ``?``)
    or rejects goes back to ijson, which then reports it as before, and so does a document that
    nests deeper than ``max_depth``, for the guard to reject.
    """
    data = getattr(stream, "whole", None)
    if data is None or _SURROGATE_ESCAPE.search(data):
        return None
    try:
        document = _WHOLE_DECODER.decode(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    if data.count(b"[") + data.count(b"{") > max_depth and deeper_than(document, max_depth):
        return None
    return [document]


def _int64(text: str) -> int:
    value = int(text)
    if not -(1 << 63) < value < 1 << 63:  # yajl, under ijson, takes the lowest 64-bit integer for an overflow
        raise ValueError(f"integer {text} overflows")
    return value


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text} overflows a float")
    return value


def _refuse(text: str) -> NoReturn:
    raise ValueError(f"{text} is not JSON")


# Built once: ``json.loads`` with hooks builds a new decoder per call, a tenth of a short file's parse.
_WHOLE_DECODER = json.JSONDecoder(parse_int=_int64, parse_float=_finite, parse_constant=_refuse)


def _unreadable_reason(exc: Exception) -> str:
    if isinstance(exc, ARCHIVE_ERRORS):
        return "broken_archive"
    if isinstance(exc, UnicodeDecodeError | UndecodableError):
        return "undecodable"
    if isinstance(exc, ValueTooLarge):
        return "too_large"
    return "malformed_json"


@collector_paused()
def ingest(paths: list[str | Path], out_dir: Path, settings: IngestSettings = IngestSettings(), advance=None) -> IngestResult:
    """Read ``paths`` into ``records.parquet``, ``quarantine.parquet`` and ``files.parquet`` in ``out_dir``.

    Two passes: every valid record is written to a candidates file (or, when it may be a
    duplicate, set aside with the suspects) while its dedup keys go to disk; then the duplicates are
    resolved, the suspects that are none join the candidates, which become ``records.parquet``, and
    the duplicates are quarantined.
    """
    if settings.format != "auto" and settings.format not in adapters.FORMAT_NAMES:
        raise IngestError(f"unknown format {settings.format!r}; known: auto, {', '.join(adapters.FORMAT_NAMES)}")
    if settings.max_depth < 4 or settings.max_record_bytes < 1 << 16:
        raise IngestError(f"max_depth must be at least 4 (got {settings.max_depth}) and max_record_bytes at least "
                          f"65536 (got {settings.max_record_bytes})")
    sources = iter_sources(paths)  # a missing path or a FIFO is refused here, before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(out_dir / "files.parquet")
    result = IngestResult(ledger, Counter(), Counter(), Counter(), Counter())
    work_dir = out_dir / ".dedup"
    processes = settings.processes or auto_processes(paths)
    try:
        with (RowWriter(out_dir / "quarantine.parquet", QUARANTINE_SCHEMA) as quarantine,
              Candidates(work_dir, settings.near_dup_threshold, processes) as candidates):
            _read_candidates(sources, settings, ledger, candidates, quarantine, advance)
            duplicates = candidates.resolve(meanwhile=lambda: _while_candidates_finish(quarantine))
            candidates.path.replace(out_dir / "records.parquet")
            _count_kept(out_dir / "records.parquet", result)
            _quarantine_duplicates(candidates.suspects_path, duplicates, quarantine, result)
    except BaseException:
        ledger.discard()
        raise
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    ledger.close()
    return result


def _read_candidates(sources: Iterator[Source], settings: IngestSettings, ledger: Ledger, candidates: Candidates,
                     quarantine: RowWriter, advance) -> None:
    """Pass one: every unit read is counted, then rejected now or kept as a candidate."""
    for source in sources:
        tally = ledger.tally(source.source_file)
        for fmt, path, item in _units(source, settings):
            location = f"{source.source_file}{path}"
            tally.read += 1
            if isinstance(item, Missing):
                item = Reject(location, "missing_field", item.field)
            if isinstance(item, dict):
                item = checked_record(item, source, fmt, location, settings.max_chars)
            if isinstance(item, Reject):
                ledger.reject(source.source_file, item.reason)
                quarantine.add({"source_file": source.source_file, "location": item.location or location,
                                "format": fmt, "reason": item.reason, "detail": item.detail, "record_id": None})
            else:
                tally.kept += 1
                candidates.add(item)
            if advance:
                advance(1)
        ledger.finish(source.source_file)


def _while_candidates_finish(quarantine: RowWriter) -> None:
    """The rejects read so far are written, and pyarrow makes its first conversion of Python values,
    while the candidate worker finishes: that conversion imports pandas, which pyarrow
    asks about on its first conversion, and the reader has nothing else to do until the worker answers."""
    quarantine.flush()
    pa.array([], pa.string())


def _count_kept(records_path: Path, result: IngestResult) -> None:
    """Counts of the kept records by kind, format and source, from the three small dictionary-encoded columns."""
    counted = ("kind", "format", "source_dataset")
    for batch in pq.ParquetFile(records_path).iter_batches(columns=list(counted)):
        for name, counter in zip(counted, (result.by_kind, result.by_format, result.by_source), strict=True):
            counter.update({v["values"]: v["counts"] for v in pc.value_counts(batch.column(name)).to_pylist()})


def _quarantine_duplicates(suspects_path: Path, duplicates: Duplicates, quarantine: RowWriter, result: IngestResult) -> None:
    """Pass two: the duplicates move to the quarantine, naming the record each duplicates.

    Every duplicate is among the suspects (:mod:`kositp.ingest.suspects`), which the candidate sink
    kept out of the candidates file, so that file became ``records.parquet`` as it was.
    """
    if not len(duplicates):
        return
    columns = ["source_file", "source_dataset", "location", "format", "record_id"]
    for rows in read_suspects(suspects_path, columns):
        index = rows.column(READ_INDEX).to_numpy()
        is_duplicate = duplicates.of[index] != NONE
        if not is_duplicate.any():
            continue
        found = rows.filter(pa.array(is_duplicate)).to_pydict()
        for row, at in enumerate(index[is_duplicate]):
            source_file, source_dataset = found["source_file"][row], found["source_dataset"][row]
            reason, detail = duplicates.reason(int(at))
            result.ledger.unkeep(source_file, reason)
            result.duplicates_by_source[f"{source_dataset}:{reason}"] += 1
            quarantine.add({"source_file": source_file, "location": found["location"][row], "format": found["format"][row],
                            "reason": reason, "detail": detail, "record_id": found["record_id"][row]})
