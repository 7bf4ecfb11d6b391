"""Set-up shared by the pipeline's own worker processes (``python -m kositp...`` children).

pyarrow, on its first conversion of Python values, imports pandas (when installed) only to ask
whether those values are pandas objects: 0.8 s of a worker's start on two cores. The workers
never hold pandas objects, so they refuse the import and pyarrow goes on without pandas.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
from collections.abc import Callable, MutableMapping
from pathlib import Path

# The folder holding this kositp package: where a worker must import kositp from.
_KOSITP_ROOT = str(Path(__file__).resolve().parents[1])
OPENBLAS_THREADS = "OPENBLAS_NUM_THREADS"


def worker_command(module: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """``python -m module args`` and its environment, for a worker that runs this very kositp.

    ``-m`` alone would put the current folder first on the child's path, so a run started inside
    another kositp checkout would hand its batches to that checkout's code. ``-P`` leaves the
    folder out, and this package's folder goes first on ``PYTHONPATH`` instead.
    """
    path = os.pathsep.join(filter(None, (_KOSITP_ROOT, os.environ.get("PYTHONPATH"))))
    env = {**os.environ, "PYTHONPATH": path}
    single_threaded_blas(env)
    return [sys.executable, "-P", "-m", module, *args], env


def single_threaded_blas(env: MutableMapping[str, str] = os.environ) -> None:
    """No OpenBLAS thread pool in the process ``env`` is for (this one by default, before numpy
    loads) unless the user asked for one.

    numpy's OpenBLAS starts a thread per core at import, and those threads spin a while before
    they sleep. Ingest and the workers use numpy elementwise only (scans, hashing), never BLAS,
    so on two cores the spinning only took CPU from them (``docs/results.md``, ingest). Not set
    for the whole CLI: where torch uses OpenBLAS (ARM builds), the variable would slow training.
    """
    env.setdefault(OPENBLAS_THREADS, "1")


class _RefusePandas(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"{name} is not imported in kositp worker processes", name=name)


def refuse_pandas() -> None:
    """Make ``import pandas`` fail in this process; call before pyarrow converts anything."""
    if not any(isinstance(finder, _RefusePandas) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RefusePandas())


def run_worker(serve: Callable[[], None]) -> None:
    """A worker's ``__main__``: pandas refused before anything converts, then ``serve``, then an
    exit without the interpreter's teardown (:func:`exit_now`). A failure in ``serve`` raises as
    usual, so the parent sees its traceback in the log and a non-zero exit code."""
    refuse_pandas()
    serve()
    exit_now()


def exit_now() -> None:
    """End a worker whose result is sent and whose files are closed, without the interpreter's
    teardown: freeing every module's objects is time the waiting parent pays for."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
