"""Ingest time and peak memory for one very long JSON string, at 1, 16 and 64 MB.

ijson's parser (yajl) scans a string that reaches it in several pieces again from its start for
each piece, so a 64 MB string fed in 64 KiB reads took 270 s. Time should grow linearly with the
string. Each size is one ``kositp ingest`` process on one file, in two shapes: the string inside a
record (an MRC passage) and outside the records (a top-level field before ``data``).

    python benchmarks/bench_long_strings.py                 # 1, 16 and 64 MB
    python benchmarks/bench_long_strings.py --sizes 1 4     # other sizes (MB)
    python benchmarks/bench_long_strings.py --code ../baseline   # another checkout's kositp
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe

SENTENCE = "대한민국의 헌법은 국민 주권과 기본권 보장을 원칙으로 한다. ".encode()
QUESTION = '{"qa_type": 1, "question": "무엇을 원칙으로 하나요?", "answers": {"text": "국민 주권", "answer_start": 13}}'.encode()


def long_text(size: int) -> bytes:
    """About ``size`` bytes of Korean sentences (whole sentences, so the UTF-8 stays valid)."""
    return SENTENCE * max(1, size // len(SENTENCE))


def document(text: bytes, shape: str) -> bytes:
    record = b'{"doc_id": "D1", "paragraphs": [{"context": "%s", "qas": [%s]}]}'
    if shape == "in a record":
        return b'{"data": [' + record % (text, QUESTION) + b"]}"
    return b'{"note": "' + text + b'", "data": [' + record % (SENTENCE.strip(), QUESTION) + b"]}"


def run(path: Path, out: Path, code: Path) -> tuple[float, float, str]:
    """Seconds, peak RSS (MiB, the kernel's high-water mark, polled) and the JSON line of one
    ``kositp ingest`` process."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "kositp", "ingest", str(path), "--out", str(out), "--json",
                                "--format", "mrc", "--max-record-bytes", str(128 << 20)], cwd=code,
                               env={**os.environ, "PYTHONPATH": str(code)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    peak = 0
    while process.poll() is None:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
            peak = max(peak, int(status.split("VmHWM:")[1].split()[0]))
        except (OSError, IndexError):
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    lines = process.stdout.read().strip().splitlines()
    process.stdout.close()
    process.stderr.close()
    return seconds, peak / 1024, lines[-1] if lines else "(no output)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 64], help="string sizes in MB (10^6 bytes)")
    parser.add_argument("--work", type=Path, help="folder for the generated files")
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="checkout whose kositp runs (default: this one), to compare with another commit")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-long-strings-"))
    print(describe())
    print(f"code: {args.code.resolve()}")
    for shape in ("in a record", "outside the records"):
        for size in args.sizes:
            path = work / f"{shape.replace(' ', '_')}-{size}MB.json"
            path.write_bytes(document(long_text(size * 1_000_000), shape))
            seconds, peak, summary = run(path, work / f"out-{path.stem}", args.code)
            print(f"{shape:>20}, {size:>3} MB string: {seconds:7.2f} s, peak RSS {peak:6.0f} MiB  {summary}", flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
