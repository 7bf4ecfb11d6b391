"""Planning an all-cached run over a large raw tree: the first plan, and the plans after it.

Planning computes every stage's version, and the ingest version covers the content of every raw
file. Without a cache each plan reads the whole corpus (and ``kositp run`` plans twice: the CLI,
then the flow). With :mod:`kositp.file_hashes`, a file whose size, mtime, ctime and inode are
unchanged costs one ``stat``. This generates ``--gb`` GB of raw files as sparse files (a few KB
of real JSON at the start of each, the rest a hole: almost no disk is used, but every byte is
read and hashed as a real file's would be), then plans the demo profile over them in a fresh
process three times, with an empty hash cache first. The files and the cache are removed at the
end.

    python benchmarks/bench_plan_hashes.py            # 10 GB in 200 files
    python benchmarks/bench_plan_hashes.py --gb 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from machine import describe

# Stage modules are imported before the clock starts (their imports cost the same either way).
PLAN = """
import sys, time
from kositp.config import load_profile
from kositp.pipeline import plan
from kositp.stages import registry
registry()
profile = load_profile("demo", ["ingest.paths=[%s]" % sys.argv[1]], root=sys.argv[2])
start = time.perf_counter()
plan(profile)
print(time.perf_counter() - start)
"""


def make_tree(folder: Path, total_bytes: int, files: int) -> None:
    size = total_bytes // files
    for i in range(files):
        path = folder / f"TL_{i:04d}.json"
        head = json.dumps({"data": [{"doc_id": f"D{i}", "paragraphs": [{"context": f"문서 {i}의 본문", "qas": []}]}]},
                          ensure_ascii=False).encode()
        with open(path, "wb") as handle:
            handle.write(head)
            handle.truncate(size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gb", type=float, default=10.0, help="total size of the raw tree")
    parser.add_argument("--files", type=int, default=200)
    args = parser.parse_args()
    print(describe())
    work = Path(tempfile.mkdtemp(prefix="kositp-plan-bench-"))
    try:
        raw, cache = work / "raw", work / "cache"
        raw.mkdir()
        make_tree(raw, int(args.gb * 1e9), args.files)
        # the racy-clean window: files written within two seconds are not remembered
        time.sleep(2.5)
        env = {**os.environ, "KOSITP_CACHE_DIR": str(cache)}
        for label in ("first plan (empty cache)", "second plan", "third plan"):
            done = subprocess.run([sys.executable, "-c", PLAN, str(raw), str(work / "artifacts")], env=env,
                                  capture_output=True, text=True, check=True, cwd=REPO)
            print(f"  {args.gb:g} GB in {args.files} files, {label}: {float(done.stdout.split()[-1]):.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
