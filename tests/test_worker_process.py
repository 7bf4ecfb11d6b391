"""Worker processes write with pyarrow while refusing pandas, run this kositp, and deliver their output."""

from __future__ import annotations

import os
import subprocess
import sys

from ingest_fixtures import admin_mrc, every_admin_qa, write_json

from kositp.ingest.core import IngestSettings, ingest


def test_a_worker_that_refuses_pandas_still_converts_and_writes_with_pyarrow(tmp_path):
    script = f"""
from kositp.worker_process import refuse_pandas
refuse_pandas()
import pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq
table = pa.table({{"text": pc.fill_null(pa.array(["국회는 법률안을 의결한다", None]), "")}})
pq.write_table(table, {str(tmp_path / "rows.parquet")!r})
print(pq.read_table({str(tmp_path / "rows.parquet")!r}).column("text").to_pylist())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['국회는 법률안을 의결한다', '']"


def test_workers_run_this_kositp_when_started_inside_another_checkout(tmp_path, monkeypatch):
    """``python -m`` puts the current folder first on a child's path: started inside another
    checkout, the candidate worker would import that checkout's kositp."""
    other = tmp_path / "other_checkout"
    (other / "kositp").mkdir(parents=True)
    (other / "kositp" / "__init__.py").write_text('raise ImportError("another checkout\'s kositp")\n', encoding="utf-8")
    raw = write_json(tmp_path / "raw" / "mrc.json", admin_mrc(every_admin_qa()))
    monkeypatch.chdir(other)
    result = ingest([raw], tmp_path / "out", IngestSettings(processes=2))
    assert (result.ledger.totals.read, result.ledger.totals.kept) == (5, 5)


def test_a_worker_that_exits_at_once_still_delivers_what_it_printed():
    """Workers skip the interpreter's teardown once their result is sent; what sits in the
    buffers of stdout and stderr must still reach the parent."""
    script = """
import sys
from kositp.worker_process import exit_now
sys.stdout.write("결과를 보냈습니다")
sys.stderr.write("작업 기록")
exit_now()
raise SystemExit("not reached")
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as a worker's pipes are
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "결과를 보냈습니다", "작업 기록")


def test_ingest_and_the_workers_start_no_blas_thread_pool_unless_asked(monkeypatch):
    """numpy's OpenBLAS pool would spin beside ingest, which never multiplies matrices: the
    ``kositp ingest`` process and every worker load numpy without it; a user's setting stands."""
    from kositp.worker_process import worker_command

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    assert worker_command("kositp.ingest.candidates")[1]["OPENBLAS_NUM_THREADS"] == "1"
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert worker_command("kositp.ingest.candidates")[1]["OPENBLAS_NUM_THREADS"] == "3"

    script = """
import os, sys
sys.argv = ["kositp", sys.argv[1], "--help"]
from kositp.cli import main
try:
    main()
except SystemExit:
    pass
import numpy
name = open("/proc/self/comm").read()  # pool threads carry the process's name; pyarrow's own threads do not
print(os.environ.get("OPENBLAS_NUM_THREADS"), sum(open(f"/proc/self/task/{t}/comm").read() == name
                                                  for t in os.listdir("/proc/self/task")))
"""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    threads = {}
    for command in ("ingest", "eval"):
        done = subprocess.run([sys.executable, "-c", script, command], capture_output=True, text=True, check=True, env=env)
        threads[command] = done.stdout.split()[-2:]
    assert threads["ingest"] == ["1", "1"], threads  # numpy loaded, no pool beside the main thread
    if (os.cpu_count() or 1) > 1:
        assert threads["eval"][0] == "None" and int(threads["eval"][1]) > 1, threads  # training keeps its BLAS
