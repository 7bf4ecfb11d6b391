"""Why a record was not kept, and the ledger that proves nothing was lost (read == kept + rejected)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REASONS = (
    "malformed_json",
    "undecodable",
    "missing_field",
    "empty_text",
    "answer_not_in_context",
    "too_long",
    "duplicate",
    "near_duplicate",
    "unsupported_member",
    "unknown_format",
    "broken_archive",
    "too_deep",
    "too_large",
)
# record_id is set for duplicates (the original is named in detail), empty for units that never became records.
QUARANTINE_COLUMNS = ("source_file", "location", "format", "reason", "detail", "record_id")


class IngestError(ValueError):
    """Raised when an adapter is given something it cannot read at all (a bad format override)."""


class AccountingError(AssertionError):
    """read != kept + rejected: a record vanished, which must never happen."""


@dataclass(frozen=True)
class Reject:
    location: str
    reason: str
    detail: str = ""

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"unknown reject reason {self.reason!r}")


@dataclass
class FileTally:
    read: int = 0
    kept: int = 0
    rejected: int = 0

    def check(self, name: str) -> None:
        if self.read != self.kept + self.rejected or self.kept < 0:
            raise AccountingError(f"{name}: read {self.read} != kept {self.kept} + rejected {self.rejected}")


FILES_SCHEMA = pa.schema([("source_file", pa.string()), ("read", pa.int64()), ("kept", pa.int64()), ("rejected", pa.int64())])
_FLUSH_ROWS = 5000


class Ledger:
    """Counts per file, written to ``path`` (``files.parquet``) as each file is finished.

    A zip of book summaries holds one file per passage, so a dict of every file's counts grows
    with the corpus; only open files stay in memory. Duplicates are found after the read, so
    :meth:`unkeep` records per-file moves that :meth:`close` applies while rewriting the table.
    """

    def __init__(self, path: Path):
        self.path = path
        self.by_reason: Counter = Counter()
        self.totals = FileTally()
        self._open: dict[str, FileTally] = {}
        self._done: list[tuple[str, FileTally]] = []
        self._moved: Counter = Counter()
        self._draft = path.with_name(f".{path.name}.draft")
        self._writer = pq.ParquetWriter(self._draft, FILES_SCHEMA)

    def tally(self, source_file: str) -> FileTally:
        """The open file's counts. The read loop counts into it directly (twice per record), and
        :meth:`finish` adds them to the totals."""
        tally = self._open.get(source_file)
        if tally is None:
            tally = self._open[source_file] = FileTally()
        return tally

    def reject(self, source_file: str, reason: str) -> None:
        self.tally(source_file).rejected += 1
        self.by_reason[reason] += 1

    def finish(self, source_file: str) -> None:
        """The file is read: add its counts to the totals, check it and move it out of memory."""
        tally = self._open.pop(source_file, FileTally())
        self.totals.read += tally.read
        self.totals.kept += tally.kept
        self.totals.rejected += tally.rejected
        tally.check(source_file)
        self._done.append((source_file, tally))
        if len(self._done) >= _FLUSH_ROWS:
            self._flush()

    def unkeep(self, source_file: str, reason: str) -> None:
        """A kept record later found to be a duplicate moves to the rejected side."""
        self._moved[source_file] += 1
        self.totals.kept -= 1
        self.totals.rejected += 1
        self.by_reason[reason] += 1

    def _flush(self) -> None:
        names = [name for name, _ in self._done]
        columns = {key: [getattr(t, key) for _, t in self._done] for key in ("read", "kept", "rejected")}
        self._writer.write_table(pa.table({"source_file": names, **columns}, schema=FILES_SCHEMA))
        self._done = []

    def close(self) -> None:
        """Write ``files.parquet`` with the duplicate moves applied, checking every file and the total.

        Each file was checked when it finished; only a duplicate move can change a file after that,
        so without moves the draft is the answer."""
        for name in list(self._open):
            self.finish(name)
        self._flush()
        self._writer.close()
        self.totals.check("total")
        if not self._moved:
            self._draft.replace(self.path)
            return
        draft = pq.ParquetFile(self._draft)
        with pq.ParquetWriter(self.path, FILES_SCHEMA) as out:
            for group in range(draft.num_row_groups):
                table = draft.read_row_group(group)
                moved = np.array([self._moved.get(name, 0) for name in table.column("source_file").to_pylist()], dtype=np.int64)
                table = table.set_column(2, "kept", pc.subtract(table.column("kept"), pa.array(moved)))
                table = table.set_column(3, "rejected", pc.add(table.column("rejected"), pa.array(moved)))
                read, kept, rejected = (table.column(c).to_numpy() for c in ("read", "kept", "rejected"))
                for bad in np.flatnonzero((read != kept + rejected) | (kept < 0))[:1]:
                    FileTally(int(read[bad]), int(kept[bad]), int(rejected[bad])).check(table.column("source_file")[bad].as_py())
                out.write_table(table)
        self._draft.unlink()

    def discard(self) -> None:
        """The ingest failed: no half-written counts stay behind in the output folder."""
        try:
            self._writer.close()
        finally:
            self._draft.unlink(missing_ok=True)

    def files(self) -> Iterator[tuple[str, FileTally]]:
        """Every file's final counts, read back from ``files.parquet`` a row group at a time."""
        table = pq.ParquetFile(self.path)
        for group in range(table.num_row_groups):
            for row in table.read_row_group(group).to_pylist():
                yield row["source_file"], FileTally(row["read"], row["kept"], row["rejected"])
