"""Short zip members: kositp's one-call read (``readers.open_member``) against ``ZipFile.open``.

Times only the member path, on the zips of ``bench_ingest.py``'s generated corpus (its book
download holds one short JSON file per passage): for every member under 64 KiB, open it and read
all its bytes, once through :func:`kositp.ingest.readers.open_member` and once through
``ZipFile.open``, best of ``--repeat`` rounds each, in alternating order.

    python benchmarks/bench_zip_members.py                   # the 150,000-record corpus
    python benchmarks/bench_zip_members.py --work DIR        # reuse bench_ingest.py's corpora
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import BASE_RECORDS, corpus
from machine import describe

from kositp.ingest.readers import HEAD_BYTES, open_member


def read_all(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], opener) -> int:
    total = 0
    for info in members:
        with opener(archive, info) as handle:
            total += len(handle.read())
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=BASE_RECORDS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work", type=Path, help="folder with (or for) the generated corpus")
    args = parser.parse_args()
    root = corpus(args.work or Path(tempfile.mkdtemp(prefix="bench-zip-")), args.records)
    print(describe())
    openers = {"open_member": open_member, "ZipFile.open": lambda archive, info: archive.open(info)}
    for path in sorted(root.rglob("*.zip")):
        with zipfile.ZipFile(path) as archive:
            members = [i for i in archive.infolist() if not i.is_dir() and i.file_size < HEAD_BYTES]
            if not members:
                continue
            best = {name: float("inf") for name in openers}
            sizes = set()
            for _ in range(args.repeat):
                for name, opener in openers.items():
                    started = time.perf_counter()
                    sizes.add(read_all(archive, members, opener))
                    best[name] = min(best[name], time.perf_counter() - started)
            assert len(sizes) == 1, "both paths must read the same bytes"
            rates = {name: len(members) / seconds for name, seconds in best.items()}
            print(
                f"{path.name}: {len(members):,} short members; "
                + "; ".join(f"{name} {rate:,.0f} members/s" for name, rate in rates.items())
                + f"; open_member / ZipFile.open = {rates['open_member'] / rates['ZipFile.open']:.2f}x"
            )


if __name__ == "__main__":
    main()
