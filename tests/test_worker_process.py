"""Worker processes refuse pandas, and pyarrow still converts and writes without it."""

from __future__ import annotations

import subprocess
import sys


def test_a_worker_process_converts_and_writes_with_pyarrow_without_importing_pandas(tmp_path):
    script = f"""
import sys
from kositp.worker_process import refuse_pandas
refuse_pandas()
import pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq
table = pa.table({{"text": pc.fill_null(pa.array(["국회는 법률안을 의결한다", None]), "")}})
pq.write_table(table, {str(tmp_path / "rows.parquet")!r})
assert pq.read_table({str(tmp_path / "rows.parquet")!r}).column("text").to_pylist() == ["국회는 법률안을 의결한다", ""]
assert "pandas" not in sys.modules
try:
    import pandas
except ModuleNotFoundError as exc:
    print(exc)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "pandas is not imported in kositp worker processes"
