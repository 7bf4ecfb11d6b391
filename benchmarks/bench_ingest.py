"""Ingest throughput and peak memory at the seed's scale (150,000 records) and optionally 10x.

Generates a synthetic corpus across the families (MRC zip, document summaries, paper summaries,
one JSON per passage of book summaries, KISTI papers), then ingests it with the default
settings (exact and near-duplicate search) in a fresh subprocess per scale, so each peak RSS
is measured alone. Peak RSS is the ingest process plus its candidate worker (their peaks
added: an upper bound). Imports happen before the clock starts, as in a pipeline process.

    python benchmarks/bench_ingest.py                 # 150,000 records
    python benchmarks/bench_ingest.py --scale 10      # also 1,500,000 records
    python benchmarks/bench_ingest.py --work DIR  # keep the generated corpora in DIR for reruns
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from machine import describe

BASE_RECORDS = 150_000
WORDS = ["정부는", "지역", "주민", "지원", "사업", "예산", "확대", "계획", "발표", "위원회", "회의", "결과", "법원", "판결", "임차인", "보증금", "반환", "연구진", "실험", "분석", "데이터", "모델", "성능", "향상", "기후", "변화", "대응", "농가", "피해", "보험", "제도", "개선", "청년", "일자리", "주거", "교통", "도서관", "운영", "시간", "연장", "공공기관", "문서", "보존", "형식", "기준", "해양", "쓰레기", "조사", "지진", "감지", "센서", "수면", "학업", "성취", "발효", "식품", "유산균", "다양성"]
# Share of records per family.
MIX = {"mrc": 0.35, "table_qa": 0.05, "doc_summary": 0.2, "paper_summary": 0.2, "passage_summary": 0.1, "kisti_paper": 0.1}


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
        """Five questions per passage, one of each type the MRC tasks need (span with a clue,
        long answer, yes/no, multiple choice, unanswerable)."""
        for d in range(counts["mrc"] // 5):
            sentences = [sentence(rng) for _ in range(4)]
            context = " ".join(sentences)
            words = context.split()
            qas = [
                {"qa_type": 1, "question": f"{sentence(rng, 6)} 무엇인가요?", "is_impossible": False,
                 "answers": {"text": words[3], "answer_start": None, "clue_text": sentences[0]}},
                {"qa_type": 2, "question": f"{sentence(rng, 6)} 설명하시오.", "answers": {"text": sentences[1]}},
                {"qa_type": 5, "question": f"{sentence(rng, 6)} 맞나요?", "answers": {"text": rng.choice(["Yes", "No"]),
                                                                                   "clue_text": sentences[2]}},
                {"qa_type": 6, "question": f"{sentence(rng, 6)} 고르시오.",
                 "answers": {"text": words[5], "options": [words[5], words[7], words[9], words[11]],
                             "clue_text": sentences[0]}},
                {"qa_type": 7, "question": f"{sentence(rng, 6)} 언제인가요?", "is_impossible": True, "answers": {"text": ""}},
            ]
            yield {"doc_id": f"D{d}", "doc_title": sentence(rng, 4), "paragraphs": [{"context": context, "qas": qas}]}

    def table_docs():
        for d in range(counts["table_qa"] // 2):
            cells = [rng.choice(WORDS) for _ in range(4)]
            table = f"<table><tr><th>{cells[0]}</th><th>{cells[1]}</th></tr><tr><td>{cells[2]}</td><td>{cells[3]}</td></tr></table>"
            qas = [{"question": f"{cells[0]} 항목의 값은 무엇인가요?", "answer": {"text": cells[2], "answer_start": None}}
                   for _ in range(2)]
            yield {"doc_id": f"T{d}", "paragraphs": [{"context": f"{sentence(rng)} {table}", "table_title": sentence(rng, 4), "qas": qas}]}

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
    with zipfile.ZipFile(root / "table.zip", "w", zipfile.ZIP_DEFLATED) as z:
        _write_json_member(z, "표_질의응답.json", '{"data": [', table_docs())
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


def corpus(work: Path, records: int) -> Path:
    """The generated corpus for ``records``, generated once per work folder."""
    path = work / f"corpus_{records}"
    done = work / f"corpus_{records}.complete"
    if not done.exists():
        started = time.perf_counter()
        shutil.rmtree(path, ignore_errors=True)
        generate(path, records)
        done.touch()
        print(f"generated {records:,} records in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


def peak_rss_mib() -> float:
    """This process's peak plus its largest finished child's (a worker process): an upper bound."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024


def worker(corpus_dir: str, out: str, near: float | None, processes: int | None) -> None:
    """Runs in its own process: ingest the corpus, print one JSON line with the figures."""
    import pandas  # noqa: F401  (pyarrow imports it on first use; a pipeline process has it already)

    from kositp.ingest.core import IngestSettings, ingest

    start = time.perf_counter()
    result = ingest([corpus_dir], Path(out), IngestSettings(near_dup_threshold=near, processes=processes))
    seconds = time.perf_counter() - start
    total = result.ledger.totals
    print(json.dumps({"read": total.read, "kept": total.kept, "rejected": total.rejected, "seconds": round(seconds, 1),
                      "records_per_s": round(total.read / seconds), "peak_rss_mib": round(peak_rss_mib())}))


def measure(corpus_dir: Path, out: Path, near: float | None, processes: int | None) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, __file__, "--worker", str(corpus_dir), str(out), json.dumps(near), json.dumps(processes)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1, help="also run at this multiple of 150,000 records")
    parser.add_argument("--records", type=int, default=BASE_RECORDS)
    parser.add_argument("--processes", type=int, default=None, help="1 or 2 (default: decided by input size)")
    parser.add_argument("--exact-only", action="store_true", help="turn near-duplicate search off")
    parser.add_argument("--work", type=Path, help="folder to keep generated corpora in (default: a temporary one)")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        corpus_dir, out, near, processes = args.worker
        worker(corpus_dir, out, json.loads(near), json.loads(processes))
        return
    print(f"machine: {describe()}")
    near = None if args.exact_only else 0.9
    label = "exact dedup only" if near is None else f"exact + near-duplicate search (threshold {near})"
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        figures = []
        for scale in sorted({1, args.scale}):
            records = args.records * scale
            result = measure(corpus(work, records), Path(tmp) / "out", near, args.processes)
            figures.append(result)
            print(f"{records:>9,} records, {label}: {result['records_per_s']:,} records/s, peak RSS {result['peak_rss_mib']} MiB "
                  f"({result['seconds']} s; kept {result['kept']:,}, rejected {result['rejected']:,})")
        if len(figures) == 2:
            print(f"peak RSS ratio {args.scale}x / 1x: {figures[1]['peak_rss_mib'] / figures[0]['peak_rss_mib']:.2f}")


if __name__ == "__main__":
    main()
