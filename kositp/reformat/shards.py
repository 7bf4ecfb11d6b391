"""Streaming records into per-task parquet shards.

Records are read in batches (pyarrow), each record is routed only to the builders that accept
its kind, and instance rows are flushed to one parquet writer per task and split, so memory
stays flat however large the corpus is. The split is a seeded hash of the source document:
every instance of one document, in every task, lands on the same side.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kositp.catalog import get_task
from kositp.reformat.builders import BUILDERS, Builder, Built
from kositp.reformat.cap import TaskCap, record_hashes
from kositp.reformat.decontaminate import EvalIndex
from kositp.reformat.placement import Instruction, join_input, pick_instruction, place, stable_hash
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
SPLITS = ("train", "validation")
BATCH_ROWS = 4096
WRITE_ROWS = 8192
WRITE_CHARS = 400_000  # per buffer: the 44 buffers stay under ~100 MB however large the corpus
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

    def add(self, n: int) -> None:
        self.count += 1
        self.total += n
        self.longest = max(self.longest, n)

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

    def count(self, split: str, prompt_chars: int, output_chars: int) -> None:
        if split == "train":
            self.train += 1
        else:
            self.validation += 1
        self.prompt_chars.add(prompt_chars)
        self.output_chars.add(output_chars)

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


class _ShardWriter:
    """Row buffers for one task, flushed to ``train.parquet`` / ``validation.parquet``."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.rows: dict[str, list[tuple[str, ...]]] = {s: [] for s in SPLITS}
        self.chars: dict[str, int] = dict.fromkeys(SPLITS, 0)
        self.writers: dict[str, pq.ParquetWriter] = {}

    def add(self, split: str, values: tuple[str, ...], chars: int) -> None:
        rows = self.rows[split]
        rows.append(values)
        self.chars[split] += chars
        if len(rows) >= WRITE_ROWS or self.chars[split] >= WRITE_CHARS:
            self.flush(split)

    def flush(self, split: str) -> None:
        rows = self.rows[split]
        if not rows:
            return
        if split not in self.writers:
            self.writers[split] = pq.ParquetWriter(self.folder / f"{split}.parquet", SHARD_SCHEMA)
        columns = [pa.array(column, pa.string()) for column in zip(*rows)]
        self.writers[split].write_table(pa.Table.from_arrays(columns, schema=SHARD_SCHEMA))
        rows.clear()
        self.chars[split] = 0

    def close(self) -> None:
        for split in SPLITS:
            self.flush(split)
            if split in self.writers:
                self.writers.pop(split).close()
            else:
                pq.write_table(SHARD_SCHEMA.empty_table(), self.folder / f"{split}.parquet")


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
    pq.write_table(table, folder / "train.parquet")
    pq.write_table(SHARD_SCHEMA.empty_table(), folder / "validation.parquet")
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
        with pq.ParquetWriter(trimmed, SHARD_SCHEMA) as writer:
            for group in range(source.num_row_groups):
                table = source.read_row_group(group, use_threads=False)
                keep = keys[start : start + table.num_rows] <= np.uint64(largest)
                start += table.num_rows
                task_stats.capped += int((~keep).sum())
                table = table.filter(pa.array(keep))
                writer.write_table(table)
                for prompt, output in zip(
                    pc.utf8_length(table["prompt"]).to_pylist(), pc.utf8_length(table["output"]).to_pylist()
                ):
                    task_stats.count(split, prompt, output)
        trimmed.replace(path)


def build_shards(
    records_path: Path,
    task_ids: Collection[str],
    bank: Mapping[str, Sequence[Instruction]],
    params: SplitParams,
    folders: Mapping[str, Path],
    reporter: Reporter,
    eval_index: EvalIndex | None = None,
) -> dict[str, TaskStats]:
    """One pass over ``records.parquet`` building every task in ``task_ids`` into ``folders[task]``.

    Per batch of records: build what the cap can still take, then check the records of the
    training instances against the eval sets (in one batched call), then place instructions,
    admit to the sample and write.
    """
    routes: dict[str, list] = defaultdict(list)
    for task_id in task_ids:
        builder = BUILDERS[task_id]
        for kind in builder.kinds:
            routes[kind].append(builder)
    stats = {t: TaskStats(t) for t in task_ids}
    writers = {t: _ShardWriter(folders[t]) for t in task_ids}
    categories = {t: get_task(t).category for t in task_ids}
    caps = {t: TaskCap(t, params.seed, params.per_task_max) for t in task_ids} if params.per_task_max else {}
    tainted_instructions: set[Instruction] = set()
    if eval_index is not None:
        instructions = sorted({i for t in task_ids for i in bank[t]}, key=lambda i: i.instruction_id)
        tainted_instructions = {
            i for i, hit in zip(instructions, eval_index.overlaps_many([i.text for i in instructions])) if hit
        }
    source = pq.ParquetFile(records_path)
    columns = [c for c in _RECORD_COLUMNS if c in source.schema_arrow.names]
    with reporter.progress("reformat: records", source.metadata.num_rows) as advance:
        # Row group by row group: ``iter_batches`` holds on to what it has read (RSS grows with the file).
        batches = (
            batch
            for group in range(source.num_row_groups)
            for batch in source.read_row_group(group, columns=columns, use_threads=False).to_batches(
                BATCH_ROWS
            )
        )
        routed_kinds = pa.array(sorted(routes), pa.string())
        for read in batches:
            batch = read.filter(pc.is_in(read.column("kind"), value_set=routed_kinds))
            records = batch.to_pylist()
            keys: dict[str, list[int]] = {}
            if caps:
                hashes = record_hashes(batch.column("record_id").to_pylist())
                keys = {t: cap.keys(hashes) for t, cap in caps.items()}
            pending: list[tuple[int, Builder, Built, str, int]] = []
            for row, record in enumerate(records):
                split = None
                for builder in routes.get(record["kind"], ()):
                    if builder.qa_types is not None and record.get("qa_type") not in builder.qa_types:
                        continue
                    task_stats = stats[builder.task_id]
                    task_stats.routed += 1
                    cap = caps.get(builder.task_id)
                    key = keys[builder.task_id][row] if cap is not None else 0
                    if cap is not None and key >= cap.bound:
                        task_stats.capped += 1
                        continue
                    built = builder.build(record)
                    if built is None:
                        continue
                    task_stats.built += 1
                    split = split or split_of(record.get("doc_id") or record["record_id"], params)
                    pending.append((row, builder, built, split, key))
            tainted: set[int] = set()
            if eval_index is not None:
                train_rows = sorted({row for row, _, _, split, _ in pending if split == "train"})
                flags = eval_index.records_overlap(batch.take(pa.array(train_rows, pa.int64())))
                tainted = {row for row, flag in zip(train_rows, flags) if flag}
            for row, builder, built, split, key in pending:
                record, task_id = records[row], builder.task_id
                task_stats = stats[task_id]
                instance_id = f"{task_id}-{record['record_id']}"
                instruction = pick_instruction(bank[task_id], instance_id, params.seed)
                if split == "train" and (row in tainted or instruction in tainted_instructions):
                    task_stats.contaminated += 1
                    continue
                if task_id in caps and not caps[task_id].admit(key, split):
                    task_stats.capped += 1
                    continue
                prompt = place(instruction.text, built, builder.position)
                task_stats.count(split, len(prompt), len(built.output))
                writers[task_id].add(
                    split,
                    (
                        instance_id,
                        task_id,
                        categories[task_id],
                        instruction.text,
                        instruction.instruction_id,
                        builder.position,
                        join_input(built),
                        prompt,
                        built.output,
                        record.get("source_dataset") or "",
                        record["record_id"],
                        record.get("doc_id") or record["record_id"],
                        split,
                    ),
                    2 * len(prompt) + len(built.output),
                )
            advance(read.num_rows)
    for task_id, writer in writers.items():
        writer.close()
        task_stats = stats[task_id]
        if task_id in caps:
            _trim(folders[task_id], caps[task_id], task_stats)
        if task_stats.train == 0 and task_stats.validation > 0:
            task_stats.moved_to_train, dropped = _move_validation_to_train(folders[task_id], eval_index)
            task_stats.contaminated += dropped
            task_stats.train, task_stats.validation = task_stats.moved_to_train, 0
        (folders[task_id] / "stats.json").write_text(
            json.dumps(task_stats.to_json(), sort_keys=True), encoding="utf-8"
        )
    return stats
