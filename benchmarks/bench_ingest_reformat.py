"""Ingest + reformat throughput and peak memory on a generated raw corpus, 150,000 records and 10x.

The raw corpus is the one ``bench_ingest.py`` generates (zips of AIHub-shaped JSON across the
families). In a fresh subprocess per scale, the two stages run through the pipeline runner into
a temporary artifact store, exactly as ``kositp run --until reformat`` runs them: the raw-file
fingerprint, ingest (exact and near-duplicate search), then reformat into the 22 task shards
(with 13-gram decontamination against the demo's evaluation sets). Prints raw records per
second over both stages, each stage's time, and peak RSS (the process plus its ingest candidate
worker, peaks added: an upper bound).

    python benchmarks/bench_ingest_reformat.py                 # 150,000 records
    python benchmarks/bench_ingest_reformat.py --scale 10      # also 1,500,000 records
    python benchmarks/bench_ingest_reformat.py --work DIR  # keep the generated corpora in DIR
    python benchmarks/bench_ingest_reformat.py --per-task-max 5000   # with a per-task cap
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks"), str(REPO / "tests")]

from bench_ingest import BASE_RECORDS, corpus, peak_rss_mib
from machine import describe


def run_stages(corpus_dir: Path, root: Path, per_task_max: int | None) -> dict:
    """Runs in its own process: fingerprint + ingest + reformat, timed stage by stage."""
    import pandas  # noqa: F401  (pyarrow imports it on first use; a pipeline process has it already)
    from reformat_data import write_bank

    from kositp.artifacts import ArtifactStore, compute_version
    from kositp.ingest.stage import STAGE as INGEST
    from kositp.ingest.stage import IngestConfig, raw_fingerprint
    from kositp.pipeline import PlannedStage, execute
    from kositp.reformat.config import ReformatConfig
    from kositp.reformat.stage import STAGE as REFORMAT
    from kositp.reporting import ConsoleReporter

    store = ArtifactStore(root)
    with store.build("instructions", "bench") as staging:
        write_bank(staging.path / "bank.parquet")
        store.publish(staging, inputs={}, params={}, code_version="bench")
    reporter = ConsoleReporter(show_progress=False)
    seconds = {}

    started = time.perf_counter()
    ingest_config = IngestConfig(paths=[str(corpus_dir)])
    fingerprint = raw_fingerprint(ingest_config)
    params = ingest_config.model_dump(mode="json")
    ingest_version = compute_version("ingest", INGEST.code_version, params, {}, fingerprint)
    ingested = execute(PlannedStage(INGEST, ingest_config, params, {}, ingest_version), store, "bench", reporter)
    seconds["ingest"] = time.perf_counter() - started

    started = time.perf_counter()
    reformat_config = ReformatConfig(
        validation_ratio=0.05, decontaminate_against="data/demo/eval", per_task_max=per_task_max
    )
    params = reformat_config.model_dump(mode="json")
    inputs = {"ingest": ingest_version, "instructions": "bench"}
    version = compute_version("reformat", REFORMAT.code_version, params, inputs, {})
    reformatted = execute(PlannedStage(REFORMAT, reformat_config, params, inputs, version), store, "bench", reporter)
    seconds["reformat"] = time.perf_counter() - started

    report = store.open("ingest", ingest_version).manifest["report"]
    return {
        "read": report["read"],
        "kept": ingested.rows["records"],
        "instances": reformatted.rows.get("train", 0) + reformatted.rows.get("validation", 0),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "peak_rss_mib": round(peak_rss_mib()),
    }


def measure(corpus_dir: Path, per_task_max: int | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-reformat-") as root:
        proc = subprocess.run([sys.executable, __file__, "--worker", str(corpus_dir), root, json.dumps(per_task_max)],
                              capture_output=True, text=True,
                              check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1, help="also run at this multiple of 150,000 records")
    parser.add_argument("--records", type=int, default=BASE_RECORDS)
    parser.add_argument("--work", type=Path, help="folder to keep generated corpora in (default: a temporary one)")
    parser.add_argument("--per-task-max", type=int, help="reformat's per-task cap (default: none, every instance)")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_stages(Path(args.worker[0]), Path(args.worker[1]), json.loads(args.worker[2]))))
        return
    print(f"machine: {describe()}")
    print(f"reformat per_task_max: {args.per_task_max or 'none'}")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-reformat-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        figures = []
        for scale in sorted({1, args.scale}):
            records = args.records * scale
            result = measure(corpus(work, records), args.per_task_max)
            figures.append(result)
            total = sum(result["seconds"].values())
            print(f"{records:>9,} raw records -> {result['kept']:,} kept -> {result['instances']:,} task instances: "
                  f"{round(result['read'] / total):,} records/s over both stages ({total:.1f} s: ingest "
                  f"{result['seconds']['ingest']} s, reformat {result['seconds']['reformat']} s), peak RSS {result['peak_rss_mib']} MiB")
        if len(figures) == 2:
            print(f"peak RSS ratio {args.scale}x / 1x: {figures[1]['peak_rss_mib'] / figures[0]['peak_rss_mib']:.2f}")


if __name__ == "__main__":
    main()
