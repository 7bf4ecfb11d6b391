"""Where valid records go during the read: the candidates file (``records.parquet`` to be), the
records that may be duplicates (:mod:`kositp.ingest.suspects`) and the duplicate index.

Records travel in batches held as columns. Completing a batch (:func:`kositp.ingest.record_completion.complete`),
giving it ids, writing it and hashing it for deduplication is about half of the ingest loop. On a
machine with two cores and a large input, that work runs in a second process fed with marshalled
batches, so reading and checking keep one core busy while the sink keeps the other. Batches
are handled in the order they are sent, so the result is the same either way.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import marshal
import operator
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, Self

import numpy as np
import pyarrow as pa

from kositp.gc_pause import collector_paused
from kositp.ingest.dedup import DuplicateIndex, Duplicates, open_record_ids
from kositp.ingest.record_completion import complete
from kositp.ingest.suspects import SuspectWriter, append_kept
from kositp.records import (
    CONTENT_DIGEST,
    RECORD_FIELDS,
    RECORD_SCHEMA,
    content_digests,
    record_ids,
    records_writer,
)
from kositp.worker_process import run_worker, worker_command

CANDIDATES = "candidates.parquet"
SUSPECTS = "suspects.arrow"
# Records per batch: a record batch of the candidates file, later a row group of records.parquet.
BATCH = 5000
MAX_QUEUED = 4
# Batches waiting for the worker from which the reader prepares the next batch itself.
HELP_FROM = 1
# One getter per field: a batch's columns are built field by field, each in one C-level pass.
_FIELD_GETTERS = tuple((name, operator.itemgetter(name)) for name in RECORD_FIELDS)
# Starting the worker costs about a second; below this much raw input one process is faster.
SECOND_PROCESS_FROM_BYTES = 16 << 20
# The pipe to the worker: a batch is megabytes, and each 64 KiB (the default) cost a wake-up of each side.
PIPE_BYTES = 1 << 20


def auto_processes(paths: list[str | Path]) -> int:
    """Two when there is a second core and enough raw input to pay for starting the worker."""
    if (os.cpu_count() or 1) < 2:
        return 1
    total = 0
    for given in map(Path, paths):
        files = given.rglob("*") if given.is_dir() else [given]
        total += sum(f.stat().st_size for f in files if f.is_file())
        if total >= SECOND_PROCESS_FROM_BYTES:
            return 2
    return 1


def prepare(columns: dict[str, Sequence[Any]]) -> None:
    """Complete the records of a batch and give them their ids. The result does not depend on
    which process does it, so the reader does it when the worker falls behind."""
    complete(columns)
    columns[CONTENT_DIGEST] = content_digests(columns)
    columns["record_id"] = record_ids(columns, columns[CONTENT_DIGEST])


class LocalSink:
    """Candidates completed, written and keyed in this process."""

    def __init__(self, work_dir: Path, near_threshold: float | None):
        self._writer = records_writer(work_dir / CANDIDATES)
        self._suspects_path = work_dir / SUSPECTS
        self._suspects = SuspectWriter(self._suspects_path)
        self._index = DuplicateIndex(work_dir, near_threshold)
        self._count = 0

    def add_batch(self, columns: dict[str, Sequence[Any]], prepared: bool = False) -> None:
        """Keep a batch, prepared here (:func:`prepare`) unless the sender prepared it.

        The records that may duplicate an earlier one go to the suspects (:mod:`kositp.ingest.suspects`),
        the others to the candidates file, which is written as ``records.parquet`` is and becomes it.
        Encoded and compressed here, it is a quarter of the bytes of Arrow IPC, whose writes to the
        page cache cost this process more than the encoding.
        """
        if not prepared:
            prepare(columns)
        maybe = self._index.add(columns)
        rows = pa.Table.from_pydict(columns, schema=RECORD_SCHEMA)
        if maybe.any():
            self._suspects.add(rows.filter(maybe), self._count + np.flatnonzero(maybe))
            rows = rows.filter(~maybe)
        self._count += len(maybe)
        if rows.num_rows:  # no empty row group where a batch held only suspects
            self._writer.write_table(rows)

    def resolve(self, meanwhile: Callable[[], None] = lambda: None) -> tuple[np.ndarray, np.ndarray]:
        """Find the duplicates, append the suspects that are none to the candidates file and close it;
        return ``(of, exact)`` (see :class:`Duplicates`), after ``meanwhile()``."""
        meanwhile()
        self._suspects.close()
        found = self._index.resolve()
        append_kept(self._suspects_path, found.of, self._writer)
        self._writer.close()
        return found.of, found.exact

    def close(self) -> None:
        self._writer.close()
        self._suspects.close()
        self._index.close()


class ProcessSink:
    """The same work in a child process (``python -m kositp.ingest.candidates``) fed over a pipe.

    A child of our own rather than ``multiprocessing``: spawn re-imports the caller's main
    script, which breaks scripts without a ``__main__`` guard. Batches are marshalled here (a
    length, then ``marshal`` bytes: for lists of strings four times faster to write than pickle,
    and the reader, which writes them, is the busier process) and
    written by a thread (a full pipe then never stalls the reader); the queue between them is
    bounded, so memory stays flat. A child failure is raised with the tail of its log.
    """

    def __init__(self, work_dir: Path, near_threshold: float | None):
        self._log_path = work_dir / "worker.log"
        self._log = open(self._log_path, "wb")  # noqa: SIM115 (the child writes it until close)
        command, env = worker_command("kositp.ingest.candidates", str(work_dir), json.dumps(near_threshold))
        self._child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env)
        with contextlib.suppress(OSError, AttributeError):  # Linux only; the default 64 KiB pipe otherwise
            fcntl.fcntl(self._child.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self._outbox: queue.Queue[bytes | None] = queue.Queue(maxsize=MAX_QUEUED)
        self._broken = threading.Event()
        self._writer = threading.Thread(target=self._write_batches, name="ingest-candidates", daemon=True)
        self._writer.start()

    def _write_batches(self) -> None:
        while (blob := self._outbox.get()) is not None:
            try:
                self._child.stdin.write(blob)
            except (BrokenPipeError, ValueError):
                self._broken.set()
                return
        self._child.stdin.close()

    def add_batch(self, columns: dict[str, Sequence[Any]]) -> None:
        """Sent as it is while the worker keeps up, prepared first (:func:`prepare`) while batches wait for it."""
        prepared = self._outbox.qsize() >= HELP_FROM
        if prepared:
            prepare(columns)
        self._send(("add", columns, prepared))

    def _send(self, message: tuple | None) -> None:
        blob = None if message is None else _frame(message)
        while not self._broken.is_set():
            try:
                self._outbox.put(blob, timeout=1)
                return
            except queue.Full:
                if self._child.poll() is not None:
                    break
        self._fail()

    def _fail(self) -> NoReturn:
        code = self._child.wait()
        tail = self._log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise RuntimeError(f"the ingest candidate worker failed (exit code {code}):\n{tail}")

    def resolve(self, meanwhile: Callable[[], None]) -> tuple[np.ndarray, np.ndarray]:
        """Ask the worker for ``(of, exact)``; ``meanwhile()`` runs while it finishes its last batches."""
        self._send(("resolve",))
        self._send(None)
        meanwhile()
        self._writer.join()
        try:
            of, exact = pickle.load(self._child.stdout)
        except EOFError:
            self._fail()
        if self._child.wait() != 0 or self._broken.is_set():
            self._fail()
        return of, exact

    def close(self) -> None:
        if self._child.poll() is None:
            self._child.kill()
            self._child.wait()
        if self._writer.is_alive():
            self._broken.set()
            with contextlib.suppress(queue.Full):
                self._outbox.put_nowait(None)
        self._log.close()


def _frame(message: tuple) -> bytes:
    """A message for the worker: its length, then its ``marshal`` bytes (JSON values only)."""
    body = marshal.dumps(message)
    return len(body).to_bytes(8, "little") + body


def _read_frame(inbox: BinaryIO) -> tuple:
    header = inbox.read(8)
    size = int.from_bytes(header, "little")
    body = inbox.read(size) if len(header) == 8 else b""
    if len(header) != 8 or len(body) != size:
        raise EOFError("the batch stream from the reader ended part-way through a message")
    return marshal.loads(body)


@collector_paused()
def _serve(work_dir: Path, near_threshold: float | None) -> None:
    """The child's loop: batches in, until asked to resolve; ``(of, exact)`` out."""
    sink = LocalSink(work_dir, near_threshold)
    inbox, outbox = sys.stdin.buffer, sys.stdout.buffer
    try:
        while (message := _read_frame(inbox))[0] == "add":
            sink.add_batch(*message[1:])
        pickle.dump(sink.resolve(), outbox, protocol=pickle.HIGHEST_PROTOCOL)
        outbox.flush()
    finally:
        sink.close()


class Candidates:
    """Opens the right sink; :meth:`resolve` gives the :class:`Duplicates` of everything added."""

    def __init__(self, work_dir: Path, near_threshold: float | None, processes: int):
        work_dir.mkdir(parents=True, exist_ok=True)
        self.path = work_dir / CANDIDATES
        self.suspects_path = work_dir / SUSPECTS
        self._work_dir = work_dir
        self._sink = ProcessSink(work_dir, near_threshold) if processes > 1 else LocalSink(work_dir, near_threshold)
        self._records: list[dict[str, Any]] = []

    def add(self, record: dict[str, Any]) -> None:
        """A record from :func:`kositp.ingest.record_completion.checked_record`, sent on with its batch."""
        self._records.append(record)
        if len(self._records) >= BATCH:
            self._send()

    def _send(self) -> None:
        if self._records:
            self._sink.add_batch({name: list(map(get, self._records)) for name, get in _FIELD_GETTERS})
            self._records = []

    def resolve(self, meanwhile: Callable[[], None] = lambda: None) -> Duplicates:
        """``meanwhile()`` is this process's own work that needs no answer: with a worker, it runs
        while the worker finishes (the reader is otherwise idle then)."""
        self._send()
        of, exact = self._sink.resolve(meanwhile)
        return Duplicates(of, exact, open_record_ids(self._work_dir, len(of)))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._sink.close()


if __name__ == "__main__":
    run_worker(lambda: _serve(Path(sys.argv[1]), json.loads(sys.argv[2])))
