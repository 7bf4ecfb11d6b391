"""Alpaca-style instruction data (instruction / input / output JSONL) mixed in beside the tasks.

The seed mixed k_rlhf, every_lm and evolve_instr this way. ``ratio`` is relative to the number
of task training instances: 0.1 adds one supplementary row for every ten task rows (or all rows
the file has, if fewer). Rows are taken in a seeded hash order, so the mix is stable.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from kositp.reformat.decontaminate import EvalIndex
from kositp.reformat.placement import stable_hash
from kositp.reformat.shards import SHARD_SCHEMA, SPLITS, SplitParams, split_of, write_shard


class SupplementaryError(ValueError):
    pass


def read_alpaca(path: Path) -> Iterator[dict[str, str]]:
    """Rows of one JSONL file; a bad line is an error naming the file and line."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SupplementaryError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
            if (
                not isinstance(row, dict)
                or not isinstance(row.get("instruction"), str)
                or not isinstance(row.get("output"), str)
            ):
                raise SupplementaryError(f"{path}:{lineno}: needs string fields 'instruction' and 'output'")
            yield {
                "instruction": unicodedata.normalize("NFC", row["instruction"].strip()),
                "input": unicodedata.normalize("NFC", str(row.get("input") or "").strip()),
                "output": unicodedata.normalize("NFC", row["output"].strip()),
                "line": str(lineno),
            }


def mix_supplementary(
    name: str,
    paths: list[Path],
    ratio: float,
    task_train_rows: int,
    params: SplitParams,
    folder: Path,
    eval_index: EvalIndex | None,
) -> dict[str, int]:
    task = f"supplementary_{name}"
    rows = []
    for path in paths:
        for row in read_alpaca(path):
            row_id = f"{task}-{path.name}:{row['line']}"
            rows.append((stable_hash(str(params.seed), row_id), row_id, path.name, row))
    rows.sort()
    wanted = min(len(rows), round(ratio * task_train_rows))
    counts = {"available": len(rows), "contaminated": 0, "train": 0, "validation": 0}
    out: dict[str, list[dict]] = {s: [] for s in SPLITS}
    chosen = [
        (row_id, source, row, split_of(row_id, params),
         f"{row['instruction']}\n\n{row['input']}" if row["input"] else row["instruction"])
        for _, row_id, source, row in rows[:wanted]
    ]
    contaminated = np.zeros(len(chosen), dtype=bool)
    if eval_index is not None:
        train = [i for i, (*_, split, _) in enumerate(chosen) if split == "train"]
        contaminated[train] = eval_index.overlaps_many([chosen[i][4] + chosen[i][2]["output"] for i in train])
    for (row_id, source, row, split, prompt), dropped in zip(chosen, contaminated):
        if dropped:
            counts["contaminated"] += 1
            continue
        counts[split] += 1
        out[split].append(
            {
                "id": row_id,
                "task": task,
                "category": "Supplementary",
                "definition": row["instruction"],
                "instruction_id": "",
                "instruction_position": "before",
                "input": row["input"],
                "prompt": prompt,
                "output": row["output"],
                "source": source,
                "source_id": f"{source}:{row['line']}",
                "doc_id": row_id,
                "split": split,
            }
        )
    folder.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        write_shard(pa.Table.from_pylist(out[split], schema=SHARD_SCHEMA), folder / f"{split}.parquet")
    return counts
