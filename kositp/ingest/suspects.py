"""Candidate records that may be duplicates, held apart until the duplicates are known.

A record whose duplicate keys may have been seen before (:meth:`kositp.ingest.dedup.DuplicateIndex.add`)
is written here, with its place in read order, instead of to the candidates file. The candidates
file then holds no duplicate: once the read ends and the duplicates are known, the suspects that
are not duplicates are appended as its last row groups (:func:`append_kept`) and it becomes
``records.parquet``, with no rewrite of the whole file without its duplicates. The suspects are a few percent of the records at most
until a corpus of millions fills the Bloom filter, so they are kept as Arrow IPC: no encoding on
the way in, none on the way out.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kositp.ingest.dedup import NONE
from kositp.records import RECORD_SCHEMA

READ_INDEX = "read_index"
# Suspect rows per written batch, and so at most per row group appended: a candidates batch's worth.
GROUP_ROWS = 5000
SUSPECT_SCHEMA = RECORD_SCHEMA.append(pa.field(READ_INDEX, pa.uint32()))


class SuspectWriter:
    """Suspect rows in, written ``GROUP_ROWS`` at a time (each becomes one row group of
    ``records.parquet``, less its duplicates); at most that many wait in memory."""

    def __init__(self, path: Path):
        self._writer: pa.ipc.RecordBatchFileWriter | None = pa.ipc.new_file(path, SUSPECT_SCHEMA)
        self._waiting: list[pa.Table] = []
        self._rows = 0

    def add(self, rows: pa.Table, read_index: np.ndarray) -> None:
        self._waiting.append(rows.append_column(READ_INDEX, pa.array(read_index, pa.uint32())))
        self._rows += rows.num_rows
        if self._rows >= GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._waiting and self._writer is not None:
            self._writer.write_table(pa.concat_tables(self._waiting).combine_chunks())
            self._waiting, self._rows = [], 0

    def close(self) -> None:
        """Idempotent: the sink closes it when it resolves and again when it closes."""
        if self._writer is not None:
            self._flush()
            self._writer.close()
            self._writer = None


def read_suspects(path: Path, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """The suspect rows a written batch at a time, each with its ``read_index``. Read, not mapped: the
    pages of a mapped file stay in the process's memory once touched, and the suspects may be most
    of a corpus."""
    with pa.OSFile(str(path)) as source:
        reader = pa.ipc.open_file(source)
        for number in range(reader.num_record_batches):
            rows = reader.get_batch(number)
            yield rows.select([*columns, READ_INDEX]) if columns else rows


def append_kept(suspects: Path, duplicate_of: np.ndarray, records: pq.ParquetWriter) -> None:
    """The suspects that duplicate no earlier record (``duplicate_of[read_index]`` is ``NONE``), appended to ``records``."""
    for rows in read_suspects(suspects):
        kept = duplicate_of[rows.column(READ_INDEX).to_numpy()] == NONE
        if kept.any():
            records.write_table(pa.Table.from_batches([rows.filter(pa.array(kept)).drop_columns([READ_INDEX])]))
