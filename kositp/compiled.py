"""Ingest's per-record Python compiled with mypyc, and the guard against running a stale build.

The reader's per-record work (the adapters, normalization, the checks) is Python calling C a
field at a time; compiled with mypyc from the same sources, a whole ``kositp ingest`` of 150,000
records went from a median of 2.75–2.81 s to 2.64 s (two sets of 9 paired runs) and of 1.5M from
22.8 to 20.2–21.4 s (docs/ingest.md). Nothing else changes: the sources stay the truth, the compiled modules are
extension modules beside them, which Python imports in their place, and a machine without a C
compiler runs the sources.

The danger of extension modules beside their sources is a build older than the code: an edited
adapter would not run. So a build records the digest of every source it compiled
(``compiled.json``), and importing :mod:`kositp.ingest` checks them (:func:`prefer_sources_if_stale`):
where a source changed, every compiled module is passed over for its source (the build is all or
nothing: its modules share one library), with one warning line naming the file and the command that
compiles them again. ``make`` builds before it runs anything (``python -m kositp.compiled``: a no-op
while the build is current).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Relative to ROOT. Only modules without Python-level patching in tests or at run time: compiled
# code calls its own functions directly, past any attribute replaced on the module.
SOURCES = (
    "kositp/ingest/normalize.py",
    "kositp/ingest/record_completion.py",
    *sorted(f"kositp/ingest/adapters/{p.name}" for p in (ROOT / "kositp/ingest/adapters").glob("*.py")
            if p.name != "__init__.py"),
)
MANIFEST = "kositp/compiled.json"
# The shared library that mypyc puts the compiled code of all modules in, inside the package so
# that the editable install (which maps packages, not the repository root) finds it.
GROUP = "kositp.ingest.hot_path"
BUILD_DIR = "build/mypyc"
_BUILD = """
import sys
from mypyc.build import mypycify
from setuptools import setup
sources, target, group = sys.argv[1].split(","), sys.argv[2], sys.argv[3]
setup(name="kositp-compiled", script_args=["build_ext", "--inplace", "--build-temp", target + "/temp"],
      ext_modules=mypycify(sources, opt_level="3", target_dir=target, group_name=group))
"""


def digests(root: Path = ROOT) -> dict[str, str]:
    """SHA-256 of every compiled source as it is now."""
    return {source: hashlib.sha256((root / source).read_bytes()).hexdigest() for source in SOURCES}


def built(root: Path = ROOT) -> dict[str, str] | None:
    """The digests the present build was compiled from; None where nothing is compiled, ``{}``
    where the manifest is damaged (then no source matches it)."""
    try:
        recorded = json.loads((root / MANIFEST).read_text(encoding="utf-8"))["sources"]
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def stale(root: Path = ROOT) -> list[str]:
    """What does not match the build: the manifest itself where it is damaged, else the sources
    that changed (or appeared, or went) since; empty where nothing is compiled."""
    recorded = built(root)
    if recorded is None:
        return []
    if not recorded:
        return [MANIFEST]
    now = digests(root)
    return sorted(source for source in recorded.keys() | now.keys() if recorded.get(source) != now.get(source))


# Set once the stale build was reported, so that the worker processes a run starts do not repeat it.
WARNED_VARIABLE = "KOSITP_STALE_BUILD_WARNED"


class SourcesFirst(importlib.abc.MetaPathFinder):
    """Finds the compiled modules' ``.py`` sources, ahead of the extension modules beside them."""

    def __init__(self, root: Path) -> None:
        self.sources = {source.removesuffix(".py").replace("/", "."): root / source for source in SOURCES}

    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        source = self.sources.get(name)
        return importlib.util.spec_from_file_location(name, source) if source is not None else None


def prefer_sources_if_stale(root: Path = ROOT) -> list[str]:
    """Where the build does not match the sources, import the sources instead, and say so once.

    Python would import an extension module older than its source silently, and an edited adapter
    would not run; refusing to start instead stopped a user who edited one until they ran make.
    Returns what changed (empty: the build is current, or there is none).
    """
    changed = stale(root)
    if changed:
        sys.meta_path.insert(0, SourcesFirst(root))
        if not os.environ.get(WARNED_VARIABLE):
            os.environ[WARNED_VARIABLE] = "1"
            logging.getLogger("kositp").warning(
                "%s changed since the ingest modules were compiled: running them from the sources "
                "(slower, same results; `make compiled` compiles them again)",
                changed[0],
            )
    return changed


def extension_files(root: Path = ROOT) -> list[Path]:
    """The compiled modules and their shared library, as they lie beside the sources."""
    stems = [Path(source).with_suffix("") for source in SOURCES] + [Path(GROUP.replace(".", "/") + "__mypyc")]
    return sorted(p for stem in stems for p in (root / stem.parent).glob(f"{stem.name}.*.so"))


def remove(root: Path = ROOT) -> None:
    """Back to the sources: the manifest first, so that no moment has modules it does not describe."""
    (root / MANIFEST).unlink(missing_ok=True)
    for path in extension_files(root):
        path.unlink()


def build(root: Path = ROOT, python: str = sys.executable) -> str:
    """Compile the sources unless the build is current; one line saying what happened.

    A failed build (no C compiler, a type error mypyc cannot compile) leaves the sources to run,
    slower but the same, and says where its log is; it is not an error.
    """
    import subprocess  # as argparse in main: not on the import path of every start

    if built(root) and not stale(root) and len(extension_files(root)) == len(SOURCES) + 1:
        return "compiled ingest modules are current"
    remove(root)
    before = digests(root)
    log = root / BUILD_DIR / "build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        done = subprocess.run([python, "-c", _BUILD, ",".join(SOURCES), BUILD_DIR, GROUP], cwd=root,
                              stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0 or len(extension_files(root)) != len(SOURCES) + 1:
        remove(root)
        said = log.read_text(encoding="utf-8", errors="replace").splitlines()
        why = next((line.strip() for line in said if line.startswith("error:") or ": error:" in line), "see the log")
        return f"warning: compiling the ingest modules failed, they run from source (slower, same results): {why} ({log})"
    (root / MANIFEST).write_text(json.dumps({"sources": before}, indent=1) + "\n", encoding="utf-8")
    return f"compiled {len(SOURCES)} ingest modules with mypyc"


def main(argv: list[str] | None = None) -> None:
    import argparse  # only for the build command: kositp.ingest imports this module at every start

    parser = argparse.ArgumentParser(prog="python -m kositp.compiled", description=__doc__.splitlines()[0])
    parser.add_argument("--remove", action="store_true", help="remove the compiled modules; run from the sources")
    if parser.parse_args(argv).remove:
        remove()
        print("removed the compiled ingest modules")
    else:
        print(build())


if __name__ == "__main__":
    main()
