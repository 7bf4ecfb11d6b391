"""Building the task shards on two cores: the tasks split in two, one share in a child process.

Reformat is a Python loop per instance (build, place the instruction, buffer the row), so on a
two-core machine the tasks are split into two shares of about equal work, by how many records
each task is routed, and a second process (``python -m kositp.reformat.parallel spec.json``)
builds one share while this one builds the other. Each task is built whole by one process with
the same code, so its shard's bytes do not depend on the split. A child of our own rather than
``multiprocessing``, for the reason given in :mod:`kositp.ingest.candidates`; its failure is
raised with the tail of its log.

Both shares need every record's contamination flag, so before building, the two processes flag
the records together (:func:`flag_unclaimed`): each claims row groups until none is left, and
they meet over the child's stdin and stdout before reading each other's flags. The process that
started first takes more row groups, which hides the child's start.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from kositp.gc_pause import collector_paused
from kositp.reformat.builders import BUILDERS
from kositp.reformat.decontaminate import EvalIndex
from kositp.reformat.placement import Instruction
from kositp.reformat.shards import SplitParams, TaskStats, build_shards
from kositp.reporting import ConsoleReporter, Reporter
from kositp.worker_process import run_worker, worker_command

# Starting the child and reading the records twice cost about a second: not worth it below this.
SECOND_PROCESS_FROM_RECORDS = 20_000
# Work is counted in records handled (about 7 us each here): a second spent starting the child.
CHILD_START_RECORDS = 140_000
FLAGGED = b"flagged\n"


def record_mix(records_path: Path) -> Counter:
    """How many records there are of each (kind, qa_type), read column-wise."""
    source = pq.ParquetFile(records_path)
    mix: Counter = Counter()
    for group in range(source.num_row_groups):
        table = source.read_row_group(group, columns=["kind", "qa_type"], use_threads=False)
        mix.update(zip(table.column("kind").to_pylist(), table.column("qa_type").to_pylist()))
    return mix


def share_work(tasks: Sequence[str], mix: Mapping[tuple[str, str | None], int]) -> int:
    """Records read (each record of a kind some task of the share takes) plus records routed to each task.

    Reading a record and making it a Python dict costs about as much as building one instance,
    and a share reads every record of its kinds once however many of its tasks take them.
    """
    kinds = {kind for t in tasks for kind in BUILDERS[t].kinds}
    read = sum(n for (kind, _), n in mix.items() if kind in kinds)
    routed = sum(
        n for t in tasks for (kind, qa_type), n in mix.items() if BUILDERS[t].accepts({"kind": kind, "qa_type": qa_type})
    )
    return read + routed


def split_tasks(
    task_ids: Sequence[str], mix: Mapping[tuple[str, str | None], int], child_start: int = CHILD_START_RECORDS
) -> tuple[list[str], list[str]]:
    """This process's tasks and the child's, finishing at about the same time by :func:`share_work`.

    A local search from everything here: move the one task that most lowers the later finish,
    until no move does. Deterministic (ties go to the earlier task in catalog order).
    """
    here, there = list(task_ids), []

    def finish(a: list[str], b: list[str]) -> int:
        return max(share_work(a, mix), child_start + share_work(b, mix) if b else 0)

    best = finish(here, there)
    while True:
        moves = [(t, [x for x in here if x != t], [*there, t]) for t in here] + [
            (t, [*here, t], [x for x in there if x != t]) for t in there
        ]
        scored = [(finish(a, b), i, a, b) for i, (_, a, b) in enumerate(moves)]
        score, _, a, b = min(scored, key=lambda m: (m[0], m[1]))
        if score >= best:
            break
        best, here, there = score, a, b
    order = list(task_ids)
    return sorted(here, key=order.index), sorted(there, key=order.index)


def auto_processes(records_path: Path, task_count: int) -> int:
    if (os.cpu_count() or 1) < 2 or task_count < 2:
        return 1
    return 2 if pq.ParquetFile(records_path).metadata.num_rows >= SECOND_PROCESS_FROM_RECORDS else 1


def flag_unclaimed(eval_index: EvalIndex, records_path: Path, claims: Path) -> None:
    """Flag every row group of the records that no process has claimed yet, into ``claims/<group>.flags``.

    A row group is claimed by creating its marker file exclusively, so each is flagged once
    whichever process gets there first.
    """
    records = pq.ParquetFile(records_path)
    for group in range(records.num_row_groups):
        try:
            os.close(os.open(claims / f"{group}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        eval_index.flag_row_group(records, group).tofile(claims / f"{group}.flags")


def claimed_flags(records_path: Path, claims: Path) -> np.ndarray:
    """Every record's flag, once both processes are done with :func:`flag_unclaimed`."""
    groups = pq.ParquetFile(records_path).num_row_groups
    return np.concatenate(
        [np.zeros(0, dtype=bool), *(np.fromfile(claims / f"{g}.flags", dtype=bool) for g in range(groups))]
    )


@collector_paused()
def build_shards_parallel(
    records_path: Path,
    task_ids: Sequence[str],
    bank: Mapping[str, Sequence[Instruction]],
    params: SplitParams,
    folders: Mapping[str, Path],
    reporter: Reporter,
    eval_index: EvalIndex | None = None,
    processes: int | None = None,
) -> dict[str, TaskStats]:
    """:func:`build_shards` for ``task_ids``, in one or two processes.

    ``None`` decides by cores and record count, and stays in one process when the child's start
    would cost more than it saves; an explicit 2 always splits (the start is then not weighed).
    With decontamination the start is hidden by the shared flagging, so it is not weighed either.
    """
    here, there = list(task_ids), []
    if (processes or auto_processes(records_path, len(task_ids))) >= 2 and len(task_ids) >= 2:
        child_start = CHILD_START_RECORDS if processes is None and eval_index is None else 0
        here, there = split_tasks(task_ids, record_mix(records_path), child_start)
    if not there:
        return build_shards(records_path, task_ids, bank, params, folders, reporter, eval_index)
    spec_path = folders[there[0]].with_name(f"{folders[there[0]].name}.worker.json")
    claims = spec_path.with_suffix(".claims")
    claims.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(
        json.dumps(
            {
                "records": str(records_path),
                "tasks": there,
                "bank": {t: [[i.instruction_id, i.text] for i in bank[t]] for t in there},
                "params": asdict(params),
                "folders": {t: str(folders[t]) for t in there},
                "eval": None if eval_index is None else [str(eval_index.eval_dir), eval_index.n],
                "claims": str(claims),
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    log_path = spec_path.with_suffix(".log")
    reporter.info(f"reformat: {len(here)} task(s) built here, {len(there)} in a second process")

    def failed(code: int) -> RuntimeError:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        return RuntimeError(f"the reformat worker failed (exit code {code}) building {', '.join(there)}:\n{tail}")

    with log_path.open("wb") as log:
        command, env = worker_command("kositp.reformat.parallel", str(spec_path))
        child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env)
        try:
            contaminated = None
            if eval_index is not None:
                flag_unclaimed(eval_index, records_path, claims)
                with contextlib.suppress(BrokenPipeError):
                    child.stdin.write(FLAGGED)
                    child.stdin.flush()
                if child.stdout.readline() != FLAGGED:
                    raise failed(child.wait())
                contaminated = claimed_flags(records_path, claims)
            stats = build_shards(records_path, here, bank, params, folders, reporter, eval_index, contaminated)
        except BaseException:
            child.kill()
            child.wait()
            raise
        finally:
            child.stdin.close()
            child.stdout.close()
        code = child.wait()
    if code != 0:
        raise failed(code)
    spec_path.unlink()
    log_path.unlink()
    shutil.rmtree(claims)
    for task_id in there:
        stats[task_id] = TaskStats.from_json(json.loads((folders[task_id] / "stats.json").read_text(encoding="utf-8")))
    return {t: stats[t] for t in task_ids}


@collector_paused()
def _serve(spec_path: Path) -> None:
    """The child: flag its part of the records and meet the parent (over stdout and stdin), then build."""
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    signals, sys.stdout = sys.stdout.buffer, sys.stderr  # stdout carries the meeting only
    eval_index = EvalIndex(Path(spec["eval"][0]), spec["eval"][1]) if spec["eval"] else None
    records = Path(spec["records"])
    contaminated = None
    if eval_index is not None:
        claims = Path(spec["claims"])
        flag_unclaimed(eval_index, records, claims)
        signals.write(FLAGGED)
        signals.flush()
        if sys.stdin.buffer.readline() != FLAGGED:
            sys.exit("the parent process stopped before flagging its part of the records")
        contaminated = claimed_flags(records, claims)
    build_shards(
        records,
        spec["tasks"],
        {t: [Instruction(i, text) for i, text in rows] for t, rows in spec["bank"].items()},
        SplitParams(**spec["params"]),
        {t: Path(f) for t, f in spec["folders"].items()},
        ConsoleReporter(show_progress=False),
        eval_index,
        contaminated,
    )


if __name__ == "__main__":
    run_worker(lambda: _serve(Path(sys.argv[1])))
