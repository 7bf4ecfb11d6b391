"""An artifact root that cannot be written: a file in its place, a read-only disk, a full disk, no
permission. Each is one line and no retry; a read command never fails over a cache stamp.

The disks are real: a small or read-only tmpfs mounted in a private mount namespace (``unshare``,
no root needed where user namespaces are allowed), and a folder the process does not own (its
user mapped to no one); the tests skip where ``unshare`` cannot do that.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KOSITP = [sys.executable, "-m", "kositp"]


def _unshare(*flags: str) -> list[str]:
    if subprocess.run(["unshare", *flags, "true"], check=False, capture_output=True).returncode != 0:
        pytest.skip(f"unshare {' '.join(flags)} is not allowed here")
    return ["unshare", *flags]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "KOSITP_CACHE_DIR": str(tmp_path / "hashes"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONPATH": str(ROOT)}


def _on_tmpfs(tmp_path: Path, options: str, commands: str) -> subprocess.CompletedProcess:
    """``commands`` in a mount namespace where ``tmp_path/disk`` is a fresh tmpfs mounted with ``options``."""
    disk = tmp_path / "disk"
    disk.mkdir()
    script = f"mount -t tmpfs -o {options} tmpfs {shlex.quote(str(disk))} && {commands}"
    return subprocess.run([*_unshare("-rm"), "sh", "-c", script], check=False, capture_output=True, text=True,
                          env=_env(tmp_path), cwd=tmp_path, timeout=300)


def _run_into(root: Path) -> str:
    return shlex.join([*KOSITP, "run", "--until", "ingest", "--root", str(root)])


def _fill(disk: Path) -> str:
    return f"(cat /dev/zero > {shlex.quote(str(disk / 'filler'))} 2>/dev/null; true)"


@pytest.mark.parametrize("kind", ["a file in its place", "read-only", "full", "not ours"])
def test_an_unwritable_root_is_one_line_before_prefect_starts(tmp_path, kind):
    """A file in place of the root, and a full disk, were retried once and printed Prefect's tracebacks
    before the clear last line."""
    root = tmp_path / "disk" / "결과"
    if kind == "a file in its place":
        root = tmp_path / "결과"
        root.write_text("이 자리는 파일입니다", encoding="utf-8")
        done = subprocess.run(shlex.split(_run_into(root)), check=False, capture_output=True, text=True,
                              env=_env(tmp_path), cwd=tmp_path, timeout=300)
        says = "is a file, not a folder"
    elif kind == "read-only":
        done, says = _on_tmpfs(tmp_path, "ro,size=1m", _run_into(root)), "cannot be written: Read-only file system"
    elif kind == "full":
        done = _on_tmpfs(tmp_path, "size=64k", f"{_fill(root.parent)} && {_run_into(root)}")
        says = "cannot be written: No space left on device"
    else:
        root = tmp_path / "남의 폴더" / "결과"
        root.parent.mkdir(mode=0o555)
        done = subprocess.run([*_unshare("-U"), *shlex.split(_run_into(root))], check=False, capture_output=True,
                              text=True, env=_env(tmp_path), cwd=tmp_path, timeout=300)
        says = "cannot be written: Permission denied"
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip().splitlines() == [f"error: the artifact root {root} {says}"]


def test_a_disk_that_fills_during_a_stage_fails_it_at_once_without_tracebacks(tmp_path):
    root = tmp_path / "disk" / "결과"
    done = _on_tmpfs(tmp_path, "size=128k", _run_into(root))
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Retry" not in done.stderr, done.stderr[-3000:]
    [failed] = [line for line in done.stderr.splitlines() if line.startswith("ingest failed: ")]
    assert failed.endswith(f"ArtifactRootError: the artifact root {root} cannot be written: No space left on device")


_PUBLISH_AND_FILL = """
import json, sys
from pathlib import Path
from kositp.artifacts import ArtifactStore
store = ArtifactStore(sys.argv[1])
with store.build("ingest", "0123456789abcdef") as staging:
    (staging.path / "records.jsonl").write_text(json.dumps({"text": "가득 찬 디스크의 기록"}, ensure_ascii=False), encoding="utf-8")
    store.publish(staging, inputs={}, params={"paths": ["원천"]}, code_version="1", rows={"kept": 1})
for stamp in Path(sys.argv[1]).rglob(".verified/*"):
    stamp.unlink()
"""


def test_artifacts_show_on_a_full_disk_answers_and_leaves_no_stamp_files(tmp_path):
    """It failed with a traceback and left 0-byte ``.tmp`` stamp files: a checksum stamp is a cache."""
    root = tmp_path / "disk" / "결과"
    show = shlex.join([*KOSITP, "artifacts", "show", "ingest/0123", "--root", str(root)])
    publish = shlex.join([sys.executable, "-c", _PUBLISH_AND_FILL, str(root)])
    done = _on_tmpfs(tmp_path, "size=256k", f"{publish} && {_fill(root.parent)} && {show} && find {shlex.quote(str(root))}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == ""
    shown, _, listing = done.stdout.partition("\n}\n")
    assert json.loads(shown + "}")["params"] == {"paths": ["원천"]}
    assert not [line for line in listing.splitlines() if ".tmp" in line], listing
