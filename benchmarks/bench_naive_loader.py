"""``kositp ingest`` against a naive loader on the same AIHub-shaped corpus.

The naive loader is what a notebook does: ``json.load`` each file (zip members read whole),
Python loops over the known shapes, one list of dicts, a pandas DataFrame, ``to_parquet``. No
validation, no normalization, no dedup, no quarantine. The corpus is the one
``bench_ingest.py`` generates, with this issue's mix: a third each MRC, document summaries and
paper summaries. Each loader runs in its own process; wall time, CPU time (user + system, which
other jobs on a shared machine disturb less; for ingest, also its candidate worker's share) and
peak RSS are printed for the load itself, with imports outside the clock. "Whole process" is the
time from starting to the end of the process, as a user times it: ``python -m kositp ingest
CORPUS --out OUT --json`` against the naive loader's script, imports included.

    python benchmarks/bench_naive_loader.py                   # 150,000 records
    python benchmarks/bench_naive_loader.py --records 1500000 --work DIR
    python benchmarks/bench_naive_loader.py --duplicates      # 2.5% exact duplicates for ingest to take out
    python benchmarks/bench_naive_loader.py --repeat 9 --against ../base   # also another checkout's ingest

``--against`` times another checkout's ``kositp ingest`` (its ``.venv``) as a whole process in the
same alternation, so a change and its base meet the same load on a shared machine. The last lines
give each side's median and range of whole-process times.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

import bench_ingest
from machine import describe

MIX = {"mrc": 1 / 3, "table_qa": 0, "doc_summary": 1 / 3, "paper_summary": 1 / 3, "passage_summary": 0, "kisti_paper": 0}
# With --duplicates: 5% table QA in place of MRC, whose two equal questions per table make 2.5% of
# the records exact duplicates, so ingest takes them out and rewrites its candidates.
MIX_WITH_DUPLICATES = MIX | {"mrc": 1 / 3 - 0.05, "table_qa": 0.05}


def naive_rows(document) -> list[dict]:
    """Every record of one parsed file, by the three shapes the corpus holds."""
    rows: list[dict] = []
    for wrapper in document if isinstance(document, list) else [document]:
        for doc in wrapper.get("data", []):
            for paragraph in doc.get("paragraphs", []):
                for qa in paragraph.get("qas", []):
                    answers = qa.get("answers") or {}
                    rows.append({"kind": "mrc", "text": paragraph["context"], "question": qa["question"],
                                 "answer": answers.get("text"), "doc_id": doc.get("doc_id")})
            for section in ("summary_entire", "summary_section"):
                for pair in doc.get(section, []):
                    rows.append({"kind": "summary", "text": pair["orginal_text"], "summary": pair["summary_text"],
                                 "doc_id": doc.get("doc_id")})
        for doc in wrapper.get("documents", []):
            sentences = sorted((s["index"], s["sentence"]) for paragraph in doc["text"] for s in paragraph)
            rows.append({"kind": "summary", "text": " ".join(s for _, s in sentences),
                         "summary": " ".join(doc["abstractive"]), "doc_id": doc.get("id")})
    return rows


def naive(corpus_dir: Path, out: Path) -> int:
    import pandas as pd

    rows: list[dict] = []
    for path in sorted(corpus_dir.rglob("*")):
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    rows.extend(naive_rows(json.loads(archive.read(name))))
        elif path.suffix == ".json":
            with open(path, encoding="utf-8") as handle:
                rows.extend(naive_rows(json.load(handle)))
    pd.DataFrame(rows).to_parquet(out / "records.parquet", index=False)
    return len(rows)


def kositp_ingest(corpus_dir: Path, out: Path) -> int:
    from kositp.ingest.core import IngestSettings, ingest

    return ingest([corpus_dir], out, IngestSettings()).ledger.totals.read


def worker(which: str, corpus_dir: str, out: str) -> None:
    import pandas  # noqa: F401  (imports outside the clock, as in a pipeline process)
    import pyarrow.parquet  # noqa: F401

    if which == "kositp":
        import kositp.ingest.core  # noqa: F401

    start, cpu = time.perf_counter(), time.process_time()
    records = {"naive": naive, "kositp": kositp_ingest}[which](Path(corpus_dir), Path(out))
    seconds = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own_cpu = time.process_time() - cpu
    print(json.dumps({"records": records, "seconds": round(seconds, 1), "records_per_s": round(records / seconds),
                      "cpu_s": round(own_cpu + children.ru_utime + children.ru_stime, 1),
                      "worker_cpu_s": round(children.ru_utime + children.ru_stime, 1), "peak_rss_mib": round(own / 1024)}))


def measure(which: str, corpus_dir: Path, work: Path) -> dict:
    """The load timed inside the process, then the whole process (the naive script, or the CLI) timed from outside."""
    out = work / f"out_{which}"
    loader = [sys.executable, __file__, "--worker", which, str(corpus_dir), str(out)]
    whole = {"naive": loader, "kositp": [sys.executable, "-m", "kositp", "ingest", str(corpus_dir), "--out", str(out), "--json"]}
    _fresh(out)
    result = json.loads(_run(loader).stdout.strip().splitlines()[-1])
    _fresh(out)
    start = time.perf_counter()
    _run(whole[which])
    result["whole_process_s"] = round(time.perf_counter() - start, 2)
    shutil.rmtree(out, ignore_errors=True)
    return result


def measure_against(checkout: Path, corpus_dir: Path, work: Path) -> float:
    """Seconds of ``kositp ingest`` from another checkout, its own environment, as a whole process."""
    out = work / "out_against"
    _fresh(out)
    start = time.perf_counter()
    _run([str(checkout / ".venv" / "bin" / "python"), "-m", "kositp", "ingest", str(corpus_dir), "--out", str(out), "--json"],
         checkout)
    seconds = time.perf_counter() - start
    shutil.rmtree(out, ignore_errors=True)
    return seconds


def summary(name: str, seconds: list[float]) -> str:
    return (f"  {name:24} whole process median {statistics.median(seconds):.2f} s, "
            f"range {min(seconds):.2f}-{max(seconds):.2f} s ({len(seconds)} runs)")


def _fresh(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


def _run(cmd: list[str], checkout: Path = REPO) -> subprocess.CompletedProcess:
    """``cmd`` run inside ``checkout``, importing that checkout's kositp."""
    return subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=checkout,
                          env={**os.environ, "PYTHONPATH": str(checkout)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=bench_ingest.BASE_RECORDS)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each loader, alternating")
    parser.add_argument("--work", type=Path, help="folder to keep the generated corpus in (default: a temporary one)")
    parser.add_argument("--duplicates", action="store_true", help="make 2.5%% of the records exact duplicates")
    parser.add_argument("--against", type=Path, help="another kositp checkout (with .venv) whose ingest is timed alongside")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    print(describe())
    work = args.work or Path(tempfile.mkdtemp(prefix="kositp-naive-bench-"))
    bench_ingest.MIX = MIX_WITH_DUPLICATES if args.duplicates else MIX
    try:
        corpus_dir = bench_ingest.corpus(work / ("third_each_duplicates" if args.duplicates else "third_each"), args.records)
        against = f"against {args.against}"
        whole: dict[str, list[float]] = {"naive": [], "kositp": [], against: []}
        sides = ["naive", "kositp", against] if args.against else ["naive", "kositp"]
        for repeat in range(args.repeat):
            for which in sides[repeat % len(sides):] + sides[: repeat % len(sides)]:  # each side goes first in turn
                if which == against:
                    whole[against].append(seconds := measure_against(args.against.resolve(), corpus_dir, work))
                    print(f"  {against}: whole process {seconds:.2f} s")
                    continue
                r = measure(which, corpus_dir, work)
                whole[which].append(r["whole_process_s"])
                in_worker = f" of which {r['worker_cpu_s']} s in the worker" if r["worker_cpu_s"] else ""
                print(f"  {which:6} {r['records']:>9,} records: {r['records_per_s']:>7,} records/s ({r['seconds']} s wall, "
                      f"{r['cpu_s']} s CPU{in_worker}), peak RSS {r['peak_rss_mib']:,} MiB; whole process {r['whole_process_s']} s")
        for name, seconds in whole.items():
            if seconds:
                print(summary(name, seconds))
        ratio = statistics.median(whole["naive"]) / statistics.median(whole["kositp"])
        print(f"  naive / kositp, medians of whole processes: {ratio:.2f}x")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
