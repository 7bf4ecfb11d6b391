"""What is written beside the shards: SuperNI task files, the seed JSONL export, the data card."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow.parquet as pq

from kositp.catalog import get_task
from kositp.reformat.placement import Instruction
from kositp.reformat.shards import TaskStats
from kositp.reporting import markdown_table

POSITIVE_EXAMPLES = 3


def _head(path: Path, n: int) -> list[dict]:
    """The first ``n`` rows without reading the whole shard."""
    batch = next(pq.ParquetFile(path).iter_batches(batch_size=n, columns=["prompt", "output"]), None)
    return batch.to_pylist() if batch is not None else []


def sources(path: Path) -> list[str]:
    seen: set[str] = set()
    for batch in pq.ParquetFile(path).iter_batches(columns=["source"]):
        seen.update(batch.column(0).unique().to_pylist())
    return sorted(seen)


def superni_task(task_id: str, instructions: Sequence[Instruction], shard: Path, stats: TaskStats) -> dict:
    """SuperNI's task layout. The negative example pairs an input with another instance's output."""
    task = get_task(task_id)
    examples = _head(shard / "train.parquet", POSITIVE_EXAMPLES + 1)
    positives = [
        {
            "input": e["prompt"],
            "output": e["output"],
            "explanation": f"{task.name_ko} 과제의 올바른 출력입니다.",
        }
        for e in examples[:POSITIVE_EXAMPLES]
    ]
    negatives = []
    if len(examples) >= 2 and examples[0]["output"] != examples[1]["output"]:
        negatives.append(
            {
                "input": examples[0]["prompt"],
                "output": examples[1]["output"],
                "explanation": "다른 입력에 대한 출력이라 주어진 입력과 맞지 않습니다.",
            }
        )
    return {
        "Definition": [i.text for i in instructions],
        "Positive Examples": positives,
        "Negative Examples": negatives,
        "Input_language": ["Korean"],
        "Output_language": ["Korean"],
        "Instruction_language": ["Korean"],
        "Categories": [task.category],
        "Source": sources(shard / "train.parquet"),
        "Instances": stats.train + stats.validation,
        "Instances_train": stats.train,
        "Instances_validation": stats.validation,
    }


def write_seed_export(shards_dir: Path, task_ids: Sequence[str], path: Path) -> int:
    """The seed's JSONL: ``input`` is the instruction placed with the input, ``Task_name`` its seed name."""
    written = 0
    with path.open("w", encoding="utf-8") as fh:
        for task_id in task_ids:
            name = get_task(task_id).seed_name
            for split in ("train", "validation"):
                for batch in pq.ParquetFile(shards_dir / task_id / f"{split}.parquet").iter_batches(
                    columns=["prompt", "output"]
                ):
                    for row in batch.to_pylist():
                        fh.write(
                            json.dumps(
                                {"input": row["prompt"], "output": row["output"], "Task_name": name},
                                ensure_ascii=False,
                            )
                            + "\n"
                        )
                        written += 1
    return written


def count_rows(stats: Mapping[str, TaskStats]) -> list[dict]:
    return [
        {
            "task": t,
            "routed": s.routed,
            "built": s.built,
            "train": s.train,
            "validation": s.validation,
            "capped": s.capped,
            "contaminated": s.contaminated,
            "prompt_chars_mean": s.prompt_chars.mean,
            "prompt_chars_max": s.prompt_chars.longest,
            "output_chars_mean": s.output_chars.mean,
            "output_chars_max": s.output_chars.longest,
        }
        for t, s in stats.items()
    ]


def composition_plot(rows: Sequence[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["task"][:7] if r["task"].startswith("task") else r["task"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, len(rows) * 0.45), 4))
    ax.bar(labels, [r["train"] for r in rows], label="train")
    ax.bar(labels, [r["validation"] for r in rows], bottom=[r["train"] for r in rows], label="validation")
    ax.set_ylabel("instances")
    ax.set_title("reformat: instances per task")
    ax.tick_params(axis="x", rotation=90)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def data_card(
    rows: Sequence[dict], rebuilt: Sequence[str], reused: Sequence[str], decontamination: str
) -> str:
    train = sum(r["train"] for r in rows)
    validation = sum(r["validation"] for r in rows)
    return "\n".join(
        [
            "# Reformat data card",
            "",
            f"- instances: {train + validation} ({train} train, {validation} validation) in {len(rows)} shards",
            f"- tasks rebuilt: {len(rebuilt)}, reused from cache: {len(reused)}",
            f"- decontamination: {decontamination}",
            "- split: grouped by source document (no document on both sides)",
            "- lengths are in characters; `prompt` is the instruction placed with the input",
            "",
            "![composition](composition.png)",
            "",
            markdown_table(rows),
            "",
        ]
    )
