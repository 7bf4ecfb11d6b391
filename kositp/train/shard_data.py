"""The reformat artifact's task shards as one memory-mapped ``datasets.Dataset`` per split.

Training reads every shard of a split, and DPO samples prompts from them: at the millions of
instances a real corpus gives, Python lists or a pandas frame hold the whole corpus in RAM.
``datasets`` converts the parquet shards once into an Arrow file that is memory-mapped, so rows
are paged in as the trainer (or a sample by index) touches them; the conversion, the checks and
the seed-format mapping all run batch by batch.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

COLUMNS = ("prompt", "output")


class ShardError(ValueError):
    """A reformat shard is missing a column or has a row training cannot use."""


@dataclass(frozen=True)
class Split:
    """One split of every task shard, in shard order: ``dataset`` (``prompt``, ``output``) or
    None when the split has no rows, and each shard's row count (its task is the folder name)."""

    dataset: Any
    counts: dict[str, int]

    def __len__(self) -> int:
        return sum(self.counts.values())

    def task_of(self, index: int) -> str:
        """The task shard that row ``index`` of the dataset came from."""
        ends = list(itertools.accumulate(self.counts.values()))
        return list(self.counts)[bisect.bisect_right(ends, index)]


def load_split(reformat_dir: Path, split: str, cache_dir: Path) -> Split:
    """Every ``shards/*/{split}.parquet`` as one memory-mapped dataset; Arrow files go to ``cache_dir``.

    Raises :class:`ShardError` naming the file (and row) for a missing column or an empty
    prompt or output, before any training starts.
    """
    paths = sorted(reformat_dir.glob(f"shards/*/{split}.parquet"))
    counts: dict[str, int] = {}
    for path in paths:
        missing = set(COLUMNS) - set(pq.read_schema(path).names)
        if missing:
            raise ShardError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        counts[path.parent.name] = pq.read_metadata(path).num_rows
    if not sum(counts.values()):
        return Split(None, counts)
    from datasets import Dataset

    # a shard without rows is left out: datasets' parquet reader fails on one (batch size 0)
    filled = [str(p) for p in paths if counts[p.parent.name]]
    dataset = Dataset.from_parquet(filled, columns=list(COLUMNS), cache_dir=str(cache_dir))
    bad = _first_empty_row(dataset.data.table)
    if bad is not None:
        starts = [0, *itertools.accumulate(counts.values())]
        shard = bisect.bisect_right(starts, bad) - 1
        raise ShardError(f"{paths[shard]}: row {bad - starts[shard]} has an empty prompt or output")
    return Split(dataset, counts)


def _first_empty_row(table: Any) -> int | None:
    """Index of the first row whose prompt or output is null or blank, chunk by chunk."""
    offset = 0
    for batch in table.to_batches(max_chunksize=65_536):
        empty = None
        for name in COLUMNS:
            column = batch.column(name)
            blank = pc.or_kleene(pc.is_null(column), pc.equal(pc.utf8_trim_whitespace(column), ""))
            empty = blank if empty is None else pc.or_kleene(empty, blank)
        empty = pc.fill_null(empty, True)
        if pc.any(empty).as_py():
            return offset + pc.index(empty, True).as_py()
        offset += batch.num_rows
    return None
