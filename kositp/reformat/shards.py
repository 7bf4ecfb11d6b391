"""Streaming records into per-task parquet shards.

Records are read in batches (pyarrow), each record is routed only to the builders that accept
its kind, and instance rows are flushed to one parquet writer per task and split, so memory
stays flat however large the corpus is. The split is a seeded hash of the source document:
every instance of one document, in every task, lands on the same side.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kositp.catalog import get_task
from kositp.reformat.builders import BUILDERS, Builder, Position
from kositp.reformat.cap import TaskCap, record_hashes
from kositp.reformat.decontaminate import RECORD_TEXT_FIELDS, EvalIndex
from kositp.reformat.placement import Instruction, instruction_chooser, place, stable_hash
from kositp.reporting import Reporter

SHARD_SCHEMA = pa.schema(
    [
        (name, pa.string())
        for name in (
            "id",
            "task",
            "category",
            "definition",
            "instruction_id",
            "instruction_position",
            "input",
            "prompt",
            "output",
            "source",
            "source_id",
            "doc_id",
            "split",
        )
    ]
)
# Dictionary encoding pays for columns with few distinct values; on the text columns it is only tried and dropped.
DICTIONARY_COLUMNS = ("task", "category", "definition", "instruction_id", "instruction_position", "source", "split")
SPLITS = ("train", "validation")
BATCH_ROWS = 4096
WRITE_ROWS = 8192
WRITE_CHARS = 400_000  # per buffer: the 44 buffers stay under ~100 MB however large the corpus
# What routing a record and writing its rows read, whatever the task.
ROUTING_FIELDS = ("record_id", "source_dataset", "doc_id", "kind", "qa_type")
_RECORD_COLUMNS = (
    "record_id",
    "source_dataset",
    "doc_id",
    "kind",
    "qa_type",
    "title",
    "text",
    "sentences",
    "question",
    "answers",
    "options",
    "clue",
    "is_impossible",
    "summary",
    "keywords",
    "table_html",
)


@dataclass(frozen=True)
class SplitParams:
    seed: int
    validation_ratio: float
    per_task_max: int | None


@dataclass
class LengthStats:
    count: int = 0
    total: int = 0
    longest: int = 0

    def add(self, lengths: np.ndarray) -> None:
        if lengths.size:
            self.count += int(lengths.size)
            self.total += int(lengths.sum(dtype=np.int64))
            self.longest = max(self.longest, int(lengths.max()))

    @property
    def mean(self) -> float:
        return round(self.total / self.count, 1) if self.count else 0.0


@dataclass
class TaskStats:
    task: str
    routed: int = 0  # records of the builder's kinds; routed - built did not fit the task's shape
    built: int = 0
    capped: int = 0
    contaminated: int = 0
    train: int = 0
    validation: int = 0
    moved_to_train: int = 0
    prompt_chars: LengthStats = field(default_factory=LengthStats)
    output_chars: LengthStats = field(default_factory=LengthStats)

    def count(self, split: str, rows: pa.Table) -> None:
        """Count rows written to ``split``, and their prompt and output lengths."""
        if split == "train":
            self.train += rows.num_rows
        else:
            self.validation += rows.num_rows
        self.prompt_chars.add(pc.utf8_length(rows["prompt"]).to_numpy())
        self.output_chars.add(pc.utf8_length(rows["output"]).to_numpy())

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping) -> TaskStats:
        data = dict(data)
        lengths = {k: LengthStats(**data.pop(k)) for k in ("prompt_chars", "output_chars")}
        return cls(**data, **lengths)


def split_of(doc_id: str, params: SplitParams) -> str:
    return (
        "validation"
        if stable_hash("split", str(params.seed), doc_id) % 10_000 < params.validation_ratio * 10_000
        else "train"
    )


def shard_writer(path: Path) -> pq.ParquetWriter:
    """Min/max statistics only where a reader could filter on them: on the text columns they are a
    few long strings per row group, and computing them is 7% of the write."""
    return pq.ParquetWriter(
        path, SHARD_SCHEMA, use_dictionary=list(DICTIONARY_COLUMNS), write_statistics=[*DICTIONARY_COLUMNS, "id"]
    )


def write_shard(table: pa.Table, path: Path) -> None:
    with shard_writer(path) as writer:
        writer.write_table(table)


class _ShardWriter:
    """Row buffers of one task, flushed to ``train.parquet`` / ``validation.parquet`` and counted.

    A row holds only what differs per instance, as Python values: the instruction's index in the
    task's bank, context, query (None for none), output, source, record id and document id. The
    instruction columns are taken from the bank by index, ``input`` and ``prompt`` are joined by
    :func:`place`, and the constant columns are repeated, all in Arrow.
    """

    def __init__(self, folder: Path, task_stats: TaskStats, category: str, position: Position,
                 instructions: Sequence[Instruction]):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.stats, self.category, self.position = folder, task_stats, category, position
        self.definitions = pa.array([i.text for i in instructions], pa.string())
        self.instruction_ids = pa.array([i.instruction_id for i in instructions], pa.string())
        self.rows: dict[str, list[tuple]] = {s: [] for s in SPLITS}
        self.chars: dict[str, int] = dict.fromkeys(SPLITS, 0)
        self.writers: dict[str, pq.ParquetWriter] = {}

    def add(self, split: str, row: tuple[int, str, str | None, str, str, str, str], chars: int) -> None:
        rows = self.rows[split]
        rows.append(row)
        self.chars[split] += chars
        if len(rows) >= WRITE_ROWS or self.chars[split] >= WRITE_CHARS:
            self.flush(split)

    def flush(self, split: str) -> None:
        rows = self.rows[split]
        if not rows:
            return
        instruction, context, query, output, source, record_id, doc_id = zip(*rows)
        index = pa.array(instruction, pa.int32())
        definition = self.definitions.take(index)
        input_, prompt = place(definition, pa.array(context, pa.string()), pa.array(query, pa.string()), self.position)
        source_id = pa.array(record_id, pa.string())

        def repeated(value: str) -> pa.Array:
            return pa.repeat(pa.scalar(value, pa.string()), len(rows))

        table = pa.Table.from_arrays(
            [
                pc.binary_join_element_wise(self.stats.task, source_id, "-"),
                repeated(self.stats.task),
                repeated(self.category),
                definition,
                self.instruction_ids.take(index),
                repeated(self.position),
                input_,
                prompt,
                pa.array(output, pa.string()),
                pa.array(source, pa.string()),
                source_id,
                pa.array(doc_id, pa.string()),
                repeated(split),
            ],
            schema=SHARD_SCHEMA,
        )
        if split not in self.writers:
            self.writers[split] = shard_writer(self.folder / f"{split}.parquet")
        self.writers[split].write_table(table)
        self.stats.count(split, table)
        rows.clear()
        self.chars[split] = 0

    def close(self) -> None:
        for split in SPLITS:
            self.flush(split)
            if split in self.writers:
                self.writers.pop(split).close()
            else:
                write_shard(SHARD_SCHEMA.empty_table(), self.folder / f"{split}.parquet")


def _move_validation_to_train(folder: Path, eval_index: EvalIndex | None) -> tuple[int, int]:
    """A tiny task whose every document hashed to validation: train on it rather than on nothing.

    The rows become training rows, so they are decontaminated now. Returns (moved, contaminated).
    """
    table = pq.read_table(folder / "validation.parquet")
    before = table.num_rows
    if eval_index is not None:
        texts = [p + o for p, o in zip(table["prompt"].to_pylist(), table["output"].to_pylist())]
        table = table.filter(pa.array(~eval_index.overlaps_many(texts), pa.bool_()))
    table = table.set_column(
        table.schema.get_field_index("split"), "split", pa.array(["train"] * table.num_rows, pa.string())
    )
    write_shard(table, folder / "train.parquet")
    write_shard(SHARD_SCHEMA.empty_table(), folder / "validation.parquet")
    return table.num_rows, before - table.num_rows


def _trim(folder: Path, cap: TaskCap, task_stats: TaskStats) -> None:
    """Remove the rows a smaller key pushed out of the sample after they were written; recount the rest."""
    largest = cap.largest
    if all(not keys or max(keys) <= largest for keys in cap.written.values()):
        return
    task_stats.train = task_stats.validation = 0
    task_stats.prompt_chars, task_stats.output_chars = LengthStats(), LengthStats()
    for split in SPLITS:
        path = folder / f"{split}.parquet"
        keys = np.frombuffer(cap.written[split], dtype=np.uint64)
        source = pq.ParquetFile(path)
        trimmed = path.with_name(f"{split}.trimmed.parquet")
        start = 0
        with shard_writer(trimmed) as writer:
            for group in range(source.num_row_groups):
                table = source.read_row_group(group, use_threads=False)
                keep = keys[start : start + table.num_rows] <= np.uint64(largest)
                start += table.num_rows
                task_stats.capped += int((~keep).sum())
                table = table.filter(pa.array(keep))
                writer.write_table(table)
                task_stats.count(split, table)
        trimmed.replace(path)


class _Route(NamedTuple):
    """What the loop needs of one task, looked up once rather than for every instance."""

    builder: Builder
    stats: TaskStats
    writer: _ShardWriter
    choose: Callable[[str], int]
    tainted_instructions: list[bool]
    cap: TaskCap | None


def build_shards(
    records_path: Path,
    task_ids: Collection[str],
    bank: Mapping[str, Sequence[Instruction]],
    params: SplitParams,
    folders: Mapping[str, Path],
    reporter: Reporter,
    eval_index: EvalIndex | None = None,
    contaminated: np.ndarray | None = None,
) -> dict[str, TaskStats]:
    """One pass over ``records.parquet`` building every task in ``task_ids`` into ``folders[task]``.

    With an ``eval_index``, a training instance is dropped when its record overlaps the eval sets
    or its instruction does. Records are checked batch by batch as they are read, unless
    ``contaminated`` already flags every record of the file (:mod:`kositp.reformat.parallel`
    flags them once for both its processes).
    """
    stats = {t: TaskStats(t) for t in task_ids}
    writers = {
        t: _ShardWriter(folders[t], stats[t], get_task(t).category, BUILDERS[t].position, bank[t]) for t in task_ids
    }
    caps = {t: TaskCap(t, params.seed, params.per_task_max) for t in task_ids} if params.per_task_max else {}
    router = _Router(_routes(task_ids, bank, params, writers, caps, eval_index), caps, params, eval_index, contaminated)
    source = pq.ParquetFile(records_path)
    columns = _columns_to_read(source, task_ids, flag_here=eval_index is not None and contaminated is None)
    with reporter.progress("reformat: records", source.metadata.num_rows) as advance:
        offset = 0
        for batch in _record_batches(source, columns):
            router.add_batch(batch, offset)
            offset += batch.num_rows
            advance(batch.num_rows)
    for task_id, writer in writers.items():
        writer.close()
        _finish_task(folders[task_id], stats[task_id], caps.get(task_id), eval_index)
    return stats


def _routes(
    task_ids: Collection[str],
    bank: Mapping[str, Sequence[Instruction]],
    params: SplitParams,
    writers: Mapping[str, _ShardWriter],
    caps: Mapping[str, TaskCap],
    eval_index: EvalIndex | None,
) -> dict[str, list[_Route]]:
    """Each record kind's routes: the tasks whose builder takes it. An instruction that overlaps the
    eval sets taints every training instance it is chosen for."""
    routes: dict[str, list[_Route]] = defaultdict(list)
    for task_id in task_ids:
        builder = BUILDERS[task_id]
        instructions = bank[task_id]
        tainted = (
            eval_index.overlaps_many([i.text for i in instructions]).tolist()
            if eval_index is not None
            else [False] * len(instructions)
        )
        chooser = instruction_chooser(task_id, len(instructions), params.seed)
        route = _Route(builder, writers[task_id].stats, writers[task_id], chooser, tainted, caps.get(task_id))
        for kind in builder.kinds:
            routes[kind].append(route)
    return routes


def _columns_to_read(source: pq.ParquetFile, task_ids: Collection[str], flag_here: bool) -> list[str]:
    """What the builders read, what routing and the rows need, and every text field when flagging here."""
    wanted = set(ROUTING_FIELDS).union(*(BUILDERS[t].fields for t in task_ids))
    if flag_here:
        wanted.update(RECORD_TEXT_FIELDS)
    return [c for c in _RECORD_COLUMNS if c in wanted and c in source.schema_arrow.names]


def _record_batches(source: pq.ParquetFile, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """Row group by row group: ``iter_batches`` holds on to what it has read (RSS grows with the file)."""
    for group in range(source.num_row_groups):
        yield from source.read_row_group(group, columns=columns, use_threads=False).to_batches(BATCH_ROWS)


class _Router:
    """Routes each record of a batch to the builders of its kind and each built instance to its
    task's writer, dropping what the cap or decontamination rules out (and counting it)."""

    def __init__(
        self,
        routes: dict[str, list[_Route]],
        caps: Mapping[str, TaskCap],
        params: SplitParams,
        eval_index: EvalIndex | None,
        contaminated: np.ndarray | None,
    ):
        self.routes, self.caps, self.params = routes, caps, params
        self.eval_index, self.contaminated = eval_index, contaminated
        self.kinds = pa.array(sorted(routes), pa.string())

    def add_batch(self, read: pa.RecordBatch, offset: int) -> None:
        """``read`` is the batch of records that starts at row ``offset`` of the file."""
        routed = pc.fill_null(pc.is_in(read.column("kind"), value_set=self.kinds), False)
        batch = read.filter(routed)
        tainted = self._tainted(batch, routed, offset)
        keys = self._cap_keys(batch)
        for row, record in enumerate(batch.to_pylist()):
            self._add_record(record, row, tainted[row], keys)

    def _tainted(self, batch: pa.RecordBatch, routed: pa.Array, offset: int) -> list[bool]:
        """Whether each routed record overlaps the eval sets."""
        if self.contaminated is not None:
            return self.contaminated[offset + np.flatnonzero(routed.to_numpy(zero_copy_only=False))].tolist()
        if self.eval_index is not None:
            return self.eval_index.records_overlap(batch).tolist()
        return [False] * batch.num_rows

    def _cap_keys(self, batch: pa.RecordBatch) -> dict[str, list[int]]:
        """Each capped task's sample key of every record in the batch."""
        if not self.caps:
            return {}
        hashes = record_hashes(batch.column("record_id").to_pylist())
        return {t: cap.keys(hashes) for t, cap in self.caps.items()}

    def _add_record(self, record: dict, row: int, tainted: bool, keys: Mapping[str, list[int]]) -> None:
        record_id = record["record_id"]
        doc_id = record.get("doc_id") or record_id
        split = None
        for builder, task_stats, writer, choose, tainted_instructions, cap in self.routes.get(record["kind"], ()):
            if builder.qa_types is not None and record.get("qa_type") not in builder.qa_types:
                continue
            task_stats.routed += 1
            key = keys[builder.task_id][row] if cap is not None else 0
            if cap is not None and key >= cap.bound:
                task_stats.capped += 1
                continue
            built = builder.build(record)
            if built is None:
                continue
            task_stats.built += 1
            split = split or split_of(doc_id, self.params)
            instruction = choose(record_id)
            if split == "train" and (tainted or tainted_instructions[instruction]):
                task_stats.contaminated += 1
                continue
            if cap is not None and not cap.admit(key, split):
                task_stats.capped += 1
                continue
            context, query, output = built
            writer.add(
                split,
                (instruction, context, query or None, output, record.get("source_dataset") or "", record_id, doc_id),
                len(context) + len(query) + len(output),
            )


def _finish_task(folder: Path, task_stats: TaskStats, cap: TaskCap | None, eval_index: EvalIndex | None) -> None:
    """After the pass: trim what the cap pushed out, give a validation-only task its rows to train on,
    and write the task's counts beside its shards."""
    if cap is not None:
        _trim(folder, cap, task_stats)
    if task_stats.train == 0 and task_stats.validation > 0:
        task_stats.moved_to_train, dropped = _move_validation_to_train(folder, eval_index)
        task_stats.contaminated += dropped
        task_stats.train, task_stats.validation = task_stats.moved_to_train, 0
    (folder / "stats.json").write_text(json.dumps(task_stats.to_json(), sort_keys=True), encoding="utf-8")
