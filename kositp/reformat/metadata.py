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


def _tick_step(top: int, ticks: int = 5) -> int:
    """A round step (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks up to ``top``."""
    raw = max(top, 1) / ticks
    power = 10 ** (len(str(int(raw))) - 1)
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def composition_plot(rows: Sequence[dict], path: Path) -> None:
    """Instances per task as stacked bars (train, validation), drawn with Pillow.

    Pillow rather than matplotlib: importing matplotlib costs a noticeable share of the whole
    stage, for one bar chart.
    """
    from PIL import Image, ImageDraw, ImageFont

    font, title_font = ImageFont.load_default(12), ImageFont.load_default(15)
    labels = [r["task"][:7] if r["task"].startswith("task") else r["task"] for r in rows]
    label_width = max((int(font.getlength(label)) for label in labels), default=0)
    most = max((r["train"] + r["validation"] for r in rows), default=0)
    step = _tick_step(most)
    top = step * max(1, -(-most // step))
    left, right, upper, bar = 80, 130, 40, 34
    width, height = left + right + bar * len(rows), 300
    image = Image.new("RGB", (width, height + label_width + 20), "white")
    draw = ImageDraw.Draw(image)
    colors = {"train": (31, 119, 180), "validation": (255, 127, 14)}

    def y(value: float) -> float:
        return height - (height - upper) * value / top

    draw.text((width / 2, 12), "reformat: instances per task", fill="black", font=title_font, anchor="mt")
    for tick in range(0, top + 1, step):
        draw.line([(left - 4, y(tick)), (width - right, y(tick))], fill=(225, 225, 225) if tick else "black")
        draw.text((left - 8, y(tick)), f"{tick:,}", fill="black", font=font, anchor="rm")
    draw.line([(left, upper), (left, height)], fill="black")
    for n, (row, label) in enumerate(zip(rows, labels)):
        x = left + n * bar + 4
        base = 0
        for split, color in colors.items():
            if row[split]:
                draw.rectangle([x, y(base + row[split]), x + bar - 8, y(base)], fill=color)
            base += row[split]
        text = Image.new("L", (int(font.getlength(label)) + 2, 16), 0)
        ImageDraw.Draw(text).text((0, 0), label, fill=255, font=font)
        image.paste("black", (x + (bar - 8) // 2 - 8, height + 6), text.rotate(90, expand=True))
    for n, (split, color) in enumerate(colors.items()):
        draw.rectangle([width - right + 14, upper + 18 * n, width - right + 26, upper + 18 * n + 12], fill=color)
        draw.text((width - right + 32, upper + 18 * n + 6), split, fill="black", font=font, anchor="lm")
    image.save(path, "PNG", optimize=False)


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
