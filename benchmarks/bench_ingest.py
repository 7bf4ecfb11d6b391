"""Ingest throughput and peak memory at the seed's scale (150,000 records) and optionally 10x.

Generates a synthetic corpus across the families (MRC zip, document summaries, paper summaries,
per-passage book summaries, KISTI papers), then ingests it in a fresh subprocess per scale so
that each peak RSS is measured alone. Prints records/s, peak RSS and the machine.

    python benchmarks/bench_ingest.py            # 150,000 records
    python benchmarks/bench_ingest.py --scale 10 # also 1,500,000 records
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import psutil

BASE_RECORDS = 150_000
WORDS = ["정부는", "지역", "주민", "지원", "사업", "예산", "확대", "계획", "발표", "위원회", "회의", "결과", "법원", "판결", "임차인", "보증금", "반환", "연구진", "실험", "분석", "데이터", "모델", "성능", "향상", "기후", "변화", "대응", "농가", "피해", "보험", "제도", "개선", "청년", "일자리", "주거", "교통", "도서관", "운영", "시간", "연장", "공공기관", "문서", "보존", "형식", "기준", "해양", "쓰레기", "조사", "지진", "감지", "센서", "수면", "학업", "성취", "발효", "식품", "유산균", "다양성"]
# Share of records per family: mrc, doc_summary, paper_summary, passage_summary, kisti_paper.
MIX = {"mrc": 0.4, "doc_summary": 0.2, "paper_summary": 0.2, "passage_summary": 0.1, "kisti_paper": 0.1}


def sentence(rng: random.Random, n: int = 12) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + f" {rng.randrange(10**9)}번 항목이다."


def _write_json_member(archive: zipfile.ZipFile, name: str, head: str, items, tail: str = "]}") -> None:
    """Writes one large JSON member item by item, as big AIHub files are, without holding it in memory."""
    with archive.open(name, "w", force_zip64=True) as out:
        out.write(head.encode())
        for i, item in enumerate(items):
            out.write((("," if i else "") + json.dumps(item, ensure_ascii=False)).encode())
        out.write(tail.encode())


def generate(root: Path, records: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    counts = {k: int(records * v) for k, v in MIX.items()}

    def mrc_docs():
        for d in range(counts["mrc"] // 5):
            context = " ".join(sentence(rng) for _ in range(4))
            words = context.split()
            qas = [{"qa_type": 1, "question": f"{sentence(rng, 6)} 무엇인가요?", "is_impossible": False,
                    "answers": {"text": words[k * 3], "answer_start": None}} for k in range(5)]
            yield {"doc_id": f"D{d}", "doc_title": sentence(rng, 4), "paragraphs": [{"context": context, "qas": qas}]}

    def summary_docs():
        for d in range(counts["doc_summary"]):
            text = [[{"index": p * 3 + s, "sentence": sentence(rng)} for s in range(3)] for p in range(2)]
            yield {"id": str(d), "title": sentence(rng, 4), "text": text, "extractive": [0, 2, 4], "abstractive": [sentence(rng)]}

    def paper_docs():
        for d in range(counts["paper_summary"] // 2):
            pair = lambda: {"orginal_text": " ".join(sentence(rng) for _ in range(3)), "summary_text": sentence(rng)}
            yield {"doc_id": f"P{d}", "title": sentence(rng, 4), "summary_entire": [pair()], "summary_section": [pair()]}

    def kisti_docs():
        for d in range(counts["kisti_paper"]):
            yield {"doc_id": f"K{d}", "title": {"ko": sentence(rng, 4)}, "abstract": {"ko": f"<p>{sentence(rng)} {sentence(rng)}</p>"},
                   "keywords": {"ko": [rng.choice(WORDS) for _ in range(3)]}}

    (root / "mrc").mkdir()
    with zipfile.ZipFile(root / "mrc" / "TL_span_extraction.zip", "w", zipfile.ZIP_DEFLATED) as z:
        _write_json_member(z, "TL_span_extraction.json", '{"Dataset": {"name": "bench"}, "data": [', mrc_docs())
    with zipfile.ZipFile(root / "summary.zip", "w", zipfile.ZIP_DEFLATED) as z:
        _write_json_member(z, "신문기사_train_original.json", '{"name": "bench", "documents": [', summary_docs())
    with zipfile.ZipFile(root / "paper.zip", "w", zipfile.ZIP_DEFLATED) as z:
        _write_json_member(z, "논문요약.json", '[{"data": [', paper_docs(), "]}]")
    with zipfile.ZipFile(root / "book.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for d in range(counts["passage_summary"]):
            z.writestr(f"도서_{d:07d}.json", json.dumps({"metadata": {"doc_name": sentence(rng, 3)}, "passage": sentence(rng, 30),
                                                        "summary": sentence(rng)}, ensure_ascii=False))
    with open(root / "kisti.json", "w", encoding="utf-8") as out:
        out.write("[")
        out.writelines(("," if i else "") + json.dumps(doc, ensure_ascii=False) for i, doc in enumerate(kisti_docs()))
        out.write("]")


def worker(corpus: str, out: str, near: float | None) -> None:
    """Runs in its own process: ingest the corpus, print one JSON line with the figures."""
    from kositp.ingest.core import IngestSettings, ingest

    start = time.perf_counter()
    result = ingest([corpus], Path(out), IngestSettings(near_dup_threshold=near))
    seconds = time.perf_counter() - start
    total = result.ledger.totals
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"read": total.read, "kept": total.kept, "rejected": total.rejected, "seconds": round(seconds, 1),
                      "records_per_s": round(total.read / seconds), "peak_rss_mib": round(peak_mib)}))


def measure(records: int, near: float | None, work: Path) -> dict:
    corpus = work / f"corpus_{records}"
    if not corpus.exists():
        started = time.perf_counter()
        generate(corpus, records)
        print(f"generated {records:,} records in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    cmd = [sys.executable, __file__, "--worker", str(corpus), str(work / f"out_{records}_{near}"), str(near)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1],
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1, help="also run at this multiple of 150,000 records")
    parser.add_argument("--records", type=int, default=BASE_RECORDS)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        corpus, out, near = args.worker
        worker(corpus, out, None if near == "None" else float(near))
        return
    print(f"machine: {platform.platform()}, python {platform.python_version()}, {psutil.cpu_count()} CPUs, "
          f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM")
    scales = sorted({1, args.scale})
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        for near in (None, 0.9):
            for scale in scales:
                figures = measure(args.records * scale, near, Path(tmp))
                label = "exact dedup only" if near is None else f"exact + MinHash LSH near-dup (threshold {near})"
                print(f"{args.records * scale:>9,} records, {label}: {figures['records_per_s']:,} records/s, "
                      f"peak RSS {figures['peak_rss_mib']} MiB ({figures['seconds']} s; kept {figures['kept']:,}, rejected {figures['rejected']:,})")


if __name__ == "__main__":
    main()
