"""Peak memory of SFT data preparation: the task shards as Python lists (before) vs memory-mapped.

Writes a reformat-shaped folder (22 task shards, train and validation parquet, prompts built
from the bundled Korean corpus, about 700 characters each as real shards hold), then prepares
the training data in a fresh process per variant, as the SFT stage does before the trainer
tokenizes it, and prints wall time and peak RSS:

- ``lists``: every shard read into Python lists, then ``Dataset.from_dict`` (the code before
  kositp/train/shard_data.py, kept here as the baseline);
- ``mapped``: :func:`kositp.train.shard_data.load_split` + :func:`kositp.sft.recipe.to_prompt_completion`
  (parquet converted once to memory-mapped Arrow, the seed format mapped batch by batch).

    python benchmarks/bench_sft_data.py                       # 1.5M instances
    python benchmarks/bench_sft_data.py --instances 150000 --work DIR
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe

from kositp.catalog import SUPERNI_TASKS
from kositp.models.prompt_format import format_completion, format_prompt
from kositp.models.tiny import CORPUS

CHUNK = 20_000


def write_shards(root: Path, instances: int) -> None:
    lines = [line for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    per_task = instances // len(SUPERNI_TASKS)
    for number, task in enumerate(SUPERNI_TASKS):
        for split, share in (("train", 0.9), ("validation", 0.1)):
            path = root / "shards" / task.id / f"{split}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            rows = int(per_task * share)
            with pq.ParquetWriter(path, pa.schema([("prompt", pa.string()), ("output", pa.string())])) as out:
                for start in range(0, rows, CHUNK):
                    ids = range(start, min(rows, start + CHUNK))
                    prompts = [
                        f"{task.description}\n\n"
                        + " ".join(lines[(i * 3 + number + k) % len(lines)] for k in range(6))
                        + f"\n\n질문 {i}: 이 글의 요지는 무엇입니까?"
                        for i in ids
                    ]
                    outputs = [" ".join(lines[(i * 5 + k) % len(lines)] for k in range(2)) for i in ids]
                    out.write_table(pa.table({"prompt": prompts, "output": outputs}))


def prepare_lists(reformat: Path, _cache: Path) -> int:
    from datasets import Dataset

    sizes = 0
    for split in ("train", "validation"):
        examples = []
        for path in sorted(reformat.glob(f"shards/*/{split}.parquet")):
            table = pq.read_table(path)
            for prompt, output in zip(table.column("prompt").to_pylist(), table.column("output").to_pylist()):
                if not prompt.strip() or not output.strip():
                    raise ValueError(f"{path}: empty row")
                examples.append({"prompt": prompt, "output": output})
        dataset = Dataset.from_dict(
            {
                "prompt": [format_prompt(e["prompt"]) for e in examples],
                "completion": [format_completion(e["output"], "</s>") for e in examples],
            }
        )
        sizes += len(dataset)
    return sizes


def prepare_mapped(reformat: Path, cache: Path) -> int:
    from kositp.sft.recipe import to_prompt_completion
    from kositp.train.shard_data import load_split

    sizes = 0
    for split in ("train", "validation"):
        dataset = to_prompt_completion(load_split(reformat, split, cache).dataset, "</s>")
        sizes += len(dataset)
    return sizes


VARIANTS = {"lists": prepare_lists, "mapped": prepare_mapped}


def child(variant: str, reformat: Path, cache: Path) -> None:
    import datasets

    datasets.disable_progress_bars()
    started = time.perf_counter()
    rows = VARIANTS[variant](reformat, cache)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"variant": variant, "rows": rows, "seconds": round(seconds, 1), "peak_rss_mib": round(peak)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1_500_000)
    parser.add_argument("--work", type=Path, default=None, help="folder for the shards (default: a temporary one)")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-sft-data-"))
    if args.child:
        child(args.child, work / "reformat", work / "cache" / args.child)
        return
    print(describe())
    reformat = work / "reformat"
    if not (reformat / "shards").is_dir():
        started = time.perf_counter()
        write_shards(reformat, args.instances)
        print(f"wrote {args.instances:,} instances in {time.perf_counter() - started:.0f} s under {reformat}")
    for variant in VARIANTS:
        result = subprocess.run(
            [sys.executable, __file__, "--child", variant, "--work", str(work)],
            capture_output=True, text=True, check=True,
        )
        print(result.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
