"""How long a ``kositp`` command takes to start and to exit, as the user runs it.

Every command imports its own module only and its stage libraries when it runs, and the
interpreter's objects are frozen at exit so that its last collections do not walk them
(kositp/gc_pause.py). What the user sees of that is the time of a whole process that does
little work: ``kositp --help``, each command's ``--help``, and ``kositp ingest`` of one small
file. Each is run ``--rounds`` times; the median and the spread are printed.

    .venv/bin/python benchmarks/bench_startup.py [--rounds 9]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ("ingest", "instructions", "eval", "run", "artifacts", "promoted", "serve", "chat", "server", "deploy")
ONE_DOCUMENT = {
    "data": [
        {
            "title": "주민등록증 모바일 확인 서비스",
            "paragraphs": [
                {
                    "context": "행정안전부는 주민등록증 모바일 확인 서비스를 전국으로 확대한다고 밝혔다.",
                    "qas": [
                        {
                            "question": "서비스를 확대하는 부처는?",
                            "answers": [{"text": "행정안전부", "answer_start": 0}],
                            "is_impossible": False,
                        }
                    ],
                }
            ],
        }
    ]
}


def timed(command: list[str], run: int) -> float:
    """One whole process; ``{run}`` in an argument becomes the run's number (a fresh output folder)."""
    started = time.perf_counter()
    subprocess.run(
        [part.format(run=run) for part in command], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    kositp = [sys.executable, "-m", "kositp"]
    scratch = Path(tempfile.mkdtemp(prefix="kositp-bench-startup-"))
    document = scratch / "mrc.json"
    document.write_text(json.dumps(ONE_DOCUMENT, ensure_ascii=False), encoding="utf-8")
    cases = {"kositp --help": [*kositp, "--help"]}
    cases |= {f"kositp {name} --help": [*kositp, name, "--help"] for name in COMMANDS}
    cases["kositp ingest (one document)"] = [*kositp, "ingest", str(document), "--out", f"{scratch}/out{{run}}", "--json"]
    print(describe())
    for name, command in cases.items():
        times = [timed(command, run) for run in range(args.rounds)]
        print(f"{name:32s} median {statistics.median(times):.3f} s (min {min(times):.3f}, max {max(times):.3f})")


if __name__ == "__main__":
    main()
