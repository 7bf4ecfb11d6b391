"""The mypyc build of ingest's per-record modules: passed over for the sources when stale, and the same records."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ingest_fixtures import spoiled_corpus

from kositp import compiled

ROOT = Path(__file__).resolve().parents[1]


def _sources_only(root: Path) -> None:
    """The package's sources at ``root``, nothing compiled."""
    shutil.copytree(ROOT / "kositp", root / "kositp",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__", Path(compiled.MANIFEST).name))


def _package_copy(root: Path) -> None:
    """The package's sources and mypy's settings, with a manifest that matches them."""
    _sources_only(root)
    shutil.copyfile(ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / compiled.MANIFEST).write_text(json.dumps({"sources": compiled.digests(root)}), encoding="utf-8")


_WHICH_MRC = "import kositp.ingest.adapters.mrc as m, kositp.ingest.normalize as n; print(m.__file__, n.__file__)"


def _imported(root: Path) -> tuple[list[str], list[str]]:
    """The files ``kositp.ingest``'s mrc adapter and normalize came from, and the warning lines, run from ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("KOSITP_STALE_BUILD_WARNED", None)
    run = subprocess.run([sys.executable, "-c", _WHICH_MRC], cwd=root, env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    return run.stdout.split(), run.stderr.splitlines()


def test_a_build_older_than_its_sources_is_passed_over_for_them_with_one_warning(tmp_path):
    """An edited adapter runs (from source) without a rebuild; a damaged manifest likewise."""
    assert compiled.prefer_sources_if_stale(tmp_path / "nothing_compiled") == []
    _package_copy(tmp_path)
    (tmp_path / compiled.MANIFEST).unlink()
    assert compiled.build(tmp_path) == f"compiled {len(compiled.SOURCES)} ingest modules with mypyc"
    files, said = _imported(tmp_path)
    assert all(f.endswith(".so") for f in files) and said == []
    edited = tmp_path / "kositp/ingest/adapters/mrc.py"
    edited.write_text(edited.read_text(encoding="utf-8") + "\n# 질문 유형을 하나 더 읽는다\n", encoding="utf-8")
    files, said = _imported(tmp_path)
    assert files == [str(edited), str(tmp_path / "kositp/ingest/normalize.py")]
    warning = (
        "kositp/ingest/adapters/mrc.py changed since the ingest modules were compiled: running them from the "
        "sources (slower, same results; `make compiled` compiles them again)"
    )
    assert said == [warning]
    (tmp_path / compiled.MANIFEST).write_bytes(b'{"sources": {"kositp/ingest/norm')
    files, said = _imported(tmp_path)
    assert all(f.endswith(".py") for f in files) and said[0].startswith("kositp/compiled.json changed since")


def test_a_build_is_redone_when_a_compiled_module_is_missing_and_not_otherwise(tmp_path):
    _package_copy(tmp_path)
    (tmp_path / compiled.MANIFEST).unlink()
    assert compiled.build(tmp_path) == f"compiled {len(compiled.SOURCES)} ingest modules with mypyc"
    assert compiled.built(tmp_path) == compiled.digests(tmp_path)
    assert compiled.build(tmp_path) == "compiled ingest modules are current"
    next(p for p in compiled.extension_files(tmp_path) if p.name.startswith("mrc.")).unlink()
    assert compiled.build(tmp_path) == f"compiled {len(compiled.SOURCES)} ingest modules with mypyc"
    assert len(compiled.extension_files(tmp_path)) == len(compiled.SOURCES) + 1


def test_a_failed_build_leaves_the_sources_to_run_and_says_so(tmp_path):
    """A machine without a working C compiler: one warning line, and nothing compiled left behind."""
    _package_copy(tmp_path)
    for stem in ("kositp/ingest/normalize", "kositp/ingest/hot_path__mypyc"):  # a previous build's modules
        (tmp_path / f"{stem}.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    (tmp_path / compiled.MANIFEST).write_text(json.dumps({"sources": {}}), encoding="utf-8")
    no_compiler = tmp_path / "python_without_a_compiler"
    no_compiler.write_text(f"#!/bin/sh\nCC=/bin/false exec {sys.executable} \"$@\"\n", encoding="utf-8")
    no_compiler.chmod(0o755)
    said = compiled.build(tmp_path, str(no_compiler))
    assert said.startswith("warning: compiling the ingest modules failed, they run from source (slower, same results): "
                           "error: Command '['/bin/false'")
    assert compiled.built(tmp_path) is None and compiled.extension_files(tmp_path) == []


# The reader's process and the candidate worker's both run compiled modules (the worker completes records).
_INGEST_BOTH_PROCESSES = """
import sys
from pathlib import Path
import kositp.ingest.normalize
from kositp.ingest.core import IngestSettings, ingest
print(kositp.ingest.normalize.__file__, file=sys.stderr)
ingest([Path(sys.argv[1])], Path(sys.argv[2]), IngestSettings(processes=2))
"""


def _ingest(corpus: Path, out: Path, cwd: Path, pythonpath: Path | None = None) -> dict[str, bytes]:
    env = {**os.environ, **({"PYTHONPATH": str(pythonpath)} if pythonpath else {})}
    run = subprocess.run([sys.executable, "-c", _INGEST_BOTH_PROCESSES, str(corpus), str(out)],
                         cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    used = run.stderr.splitlines()[0]
    return {"module": used.encode(), **{name: (out / name).read_bytes()
                                         for name in ("records.parquet", "quarantine.parquet", "files.parquet")}}


def test_the_compiled_modules_give_the_sources_records_byte_for_byte(tmp_path):
    if compiled.built() is None:
        pytest.skip("the ingest modules are not compiled here (make compiled; a C compiler is needed)")
    corpus = spoiled_corpus(tmp_path)
    sources_only = tmp_path / "sources"
    _sources_only(sources_only)
    built = _ingest(corpus, tmp_path / "compiled", ROOT)
    source = _ingest(corpus, tmp_path / "source", sources_only, pythonpath=sources_only)
    assert built.pop("module").endswith(b".so") and source.pop("module").endswith(b"normalize.py")
    assert built == source
