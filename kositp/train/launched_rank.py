"""What each process of a launched training stage runs (``accelerate launch -m kositp.train.launched_rank``).

It rebuilds the stage context from the spec the stage process wrote (see
:mod:`kositp.train.distributed`), validates the parameters again and calls the stage's own ``run``:
the same recipe as a one-process run, with the trainer in distributed mode. Rank 0 reports
through event lines on stdout that the stage process replays on its reporter, and writes the
outcome file; any rank that fails writes its error (one line) for the stage process to raise.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import count
from pathlib import Path
from typing import Any

from kositp.artifacts import ArtifactStore
from kositp.errors import PermanentError
from kositp.reporting import Advance
from kositp.stages import StageContext
from kositp.train.distributed import EVENT_PREFIX, LAUNCH_DIR, OUTCOME_FILE, STAGE_MODULES, die_with_parent

_bar_ids = count()


class EventReporter:
    """Rank 0's reporter: every call becomes one JSON event line for the stage process to replay."""

    def _emit(self, kind: str, **fields: Any) -> None:
        print(
            EVENT_PREFIX + json.dumps({"kind": kind, **fields}, ensure_ascii=False, default=str), flush=True
        )

    def info(self, message: str) -> None:
        self._emit("info", message=message)

    def warning(self, message: str) -> None:
        self._emit("warning", message=message)

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Advance]:
        bar = str(next(_bar_ids))
        self._emit("progress_open", id=bar, description=description, total=total)
        try:
            yield lambda n=1: self._emit("progress_advance", id=bar, n=n)
        finally:
            self._emit("progress_close", id=bar)

    def table(self, key: str, rows: Sequence[dict[str, Any]], description: str = "") -> None:
        self._emit("table", key=key, rows=list(rows), description=description)

    def markdown(self, key: str, text: str, description: str = "") -> None:
        self._emit("markdown", key=key, text=text, description=description)

    def image(self, key: str, path: Path, description: str = "") -> None:
        self._emit("image", key=key, path=str(path), description=description)


class QuietReporter:
    """The other ranks' reporter: they run the same code as rank 0, so what they would say, it says."""

    def info(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        pass

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Advance]:
        yield lambda n=1: None

    def table(self, key: str, rows: Sequence[dict[str, Any]], description: str = "") -> None:
        pass

    def markdown(self, key: str, text: str, description: str = "") -> None:
        pass

    def image(self, key: str, path: Path, description: str = "") -> None:
        pass


def load_onto_cpu_rank_device() -> None:
    """Let ``torch.load(map_location=cpu:N)`` load onto the CPU, so a CPU rank can resume.

    accelerate names a CPU rank's device ``cpu:<local rank>`` and the trainer passes it as
    ``map_location`` when a multi-process run resumes its optimizer; torch only knows ``cpu``.
    """
    import torch

    torch.serialization.register_package(
        50,
        lambda storage: None,
        lambda storage, location: storage if re.fullmatch(r"cpu:\d+", location) else None,
    )


def context(spec: dict[str, Any], config_class: Any, rank: int, local_rank: int) -> StageContext:
    """The stage context of this rank: parameters validated again, inputs opened (verified by the parent)."""
    params = dict(spec["params"])
    if params["device"] == "cuda":
        import torch

        torch.cuda.set_device(local_rank)
        params["device"] = f"cuda:{local_rank}"
    else:
        load_onto_cpu_rank_device()
    inputs = {}
    for name, item in spec["inputs"].items():
        path = Path(item["path"])
        inputs[name] = ArtifactStore(path.parent.parent).open(item["stage"], item["version"], verify=False)
    return StageContext(
        out_dir=Path(spec["out_dir"]),
        params=params,
        inputs=inputs,
        reporter=EventReporter() if rank == 0 else QuietReporter(),
        resumed=bool(spec["resumed"]),
        profile_name=spec["profile_name"],
        config=config_class(**params),
        cache_dir=Path(spec["cache_dir"]) if spec["cache_dir"] else None,
    )


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(value, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)


def main(spec_path: str) -> int:
    die_with_parent()
    if os.getppid() == 1:  # orphaned already: the launcher died before the line above took effect
        return 1
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    launch_dir = Path(spec["out_dir"]) / LAUNCH_DIR
    try:
        stage = importlib.import_module(STAGE_MODULES[spec["stage"]]).STAGE
        outcome = stage.run(context(spec, stage.config, rank, local_rank))
    except Exception as exc:  # noqa: BLE001 - any failure of a rank is reported to the stage process, then exits 1
        traceback.print_exc()
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:2000]
        _write_json(
            launch_dir / f"error-rank{rank}.json",
            {
                "rank": rank,
                "error": message,
                "permanent": isinstance(exc, PermanentError),
                "time": time.time(),
            },
        )
        return 1
    if rank == 0:
        _write_json(
            launch_dir / OUTCOME_FILE,
            {"rows": outcome.rows, "report": outcome.report, "exclude": list(outcome.exclude)},
        )
    _leave_process_group()
    return 0


def _leave_process_group() -> None:
    """Shut the ranks' process group down before the interpreter exits. Left to exit, a gloo
    thread still running aborted one rank in about five (``terminate called without an active
    exception``, SIGABRT) after its training had finished, failing the stage."""
    import torch.distributed as dist  # loaded already by the stage; imported here to keep this module light

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m kositp.train.launched_rank SPEC_JSON (run by kositp.train.distributed)")
    sys.exit(main(sys.argv[1]))
