"""Reformat throughput and peak memory on a generated corpus at the seed's scale.

Generates normalized records (the test shapes, with varied ids, documents and text) into
``records.parquet``, publishes it with an instruction bank as fake ingest/instructions artifacts,
then runs the reformat stage through the pipeline runner in a fresh subprocess per scale, so the
peak RSS of one scale is not inflated by another (or by generation).

    python benchmarks/bench_reformat.py            # 150,000 records
    python benchmarks/bench_reformat.py --large    # 150,000 and 1,500,000 records
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks"), str(REPO / "tests")]

from bench_ingest import peak_rss_mib
from machine import describe
from reformat_data import sample_records, write_bank

from kositp.records import RECORD_SCHEMA

CHUNK = 20_000


def generate(path: Path, n: int) -> None:
    """``n`` records cycling through the sample shapes; every ten records share a document."""
    templates = sample_records()
    with pq.ParquetWriter(path, RECORD_SCHEMA) as writer:
        for start in range(0, n, CHUNK):
            rows = []
            for i in range(start, min(n, start + CHUNK)):
                row = dict(templates[i % len(templates)])
                row["record_id"] = f"r{i:09d}"
                row["doc_id"] = f"doc{i // 10:08d}"
                row["text"] = f"{row['text']} (문서 {i // 10}번)"
                rows.append(row)
            writer.write_table(pa.Table.from_pylist(rows, schema=RECORD_SCHEMA))


def measure(root: Path) -> dict:
    """Run the stage once (in this process) and report time and peak RSS."""
    from kositp.artifacts import ArtifactStore, compute_version
    from kositp.pipeline import PlannedStage, execute
    from kositp.reformat.config import ReformatConfig
    from kositp.reformat.stage import STAGE
    from kositp.reporting import ConsoleReporter

    store = ArtifactStore(root)
    config = ReformatConfig(validation_ratio=0.05, per_task_min=1)
    inputs = {"ingest": "bench", "instructions": "bench"}
    params = config.model_dump(mode="json")
    item = PlannedStage(STAGE, config, params, inputs, compute_version("reformat", "1", params, inputs, {}))
    started = time.perf_counter()
    result = execute(item, store, "bench", ConsoleReporter(show_progress=False))
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 2),
        "instances": result.rows.get("train", 0) + result.rows.get("validation", 0),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


def prepare(root: Path, n: int) -> None:
    from kositp.artifacts import ArtifactStore

    store = ArtifactStore(root)
    with store.build("ingest", "bench") as staging:
        generate(staging.path / "records.parquet", n)
        store.publish(staging, inputs={}, params={"n": n}, code_version="bench")
    with store.build("instructions", "bench") as staging:
        write_bank(staging.path / "bank.parquet")
        store.publish(staging, inputs={}, params={}, code_version="bench")


def run_scale(n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-reformat-") as tmp:
        root = Path(tmp)
        subprocess.run([sys.executable, __file__, "--prepare", str(n), "--root", str(root)], check=True)
        out = subprocess.run(
            [sys.executable, __file__, "--measure", "--root", str(root)],
            check=True,
            capture_output=True,
            text=True,
        )
        figures = json.loads(out.stdout.strip().splitlines()[-1])
    figures["records"] = n
    figures["records_per_s"] = round(n / figures["seconds"])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--large", action="store_true", help="also run 1,500,000 records")
    parser.add_argument("--prepare", type=int)
    parser.add_argument("--measure", action="store_true")
    parser.add_argument("--root", type=Path)
    args = parser.parse_args()
    if args.prepare:
        prepare(args.root, args.prepare)
        return
    if args.measure:
        print(json.dumps(measure(args.root)))
        return
    print(f"machine: {describe()} | pyarrow {pa.__version__}")
    results = [run_scale(n) for n in ([150_000, 1_500_000] if args.large else [150_000])]
    for r in results:
        print(
            f"{r['records']:>9,} records -> {r['instances']:>9,} instances in {r['seconds']:7.1f} s: "
            f"{r['records_per_s']:>7,} records/s, peak RSS {r['peak_rss_mib']:.0f} MiB"
        )
    if len(results) == 2:
        print(f"peak RSS ratio 1.5M / 150k: {results[1]['peak_rss_mib'] / results[0]['peak_rss_mib']:.2f}")


if __name__ == "__main__":
    main()
