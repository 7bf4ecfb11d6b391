"""Rows appended to a parquet file (or a temporary Arrow IPC file) in batches, so memory stays flat
however many are written."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import pyarrow as pa
import pyarrow.parquet as pq

BATCH = 5000


class RowWriter:
    """Buffers row dicts and writes one row group (or IPC record batch) per ``BATCH`` rows.

    ``temporary`` files, read back once, are Arrow IPC: written and read without any encoding.
    """

    def __init__(self, path: Path, schema: pa.Schema, temporary: bool = False):
        self._writer = pa.ipc.new_file(str(path), schema) if temporary else pq.ParquetWriter(path, schema)
        self._schema = schema
        self._rows: list[Mapping[str, Any]] = []

    def add(self, row: Mapping[str, Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=self._schema))
            self._rows = []

    def close(self) -> None:
        self.flush()
        self._writer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
