"""What ``kositp run`` shows in a terminal: one line per stage, the summary, and what to do next.

A demo printed almost 300 lines: Prefect's logs, every library's progress bars, per-step training
dictionaries, raw model output. By default all of that goes to a log file under the artifact root
(file descriptors 1 and 2, so the stage workers' and Prefect's server's output too); the terminal
gets the stage lines. ``--verbose`` shows everything in the terminal instead, and the Prefect UI
has each run's logs, tables and plots either way.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

LOG_DIR = "_logs"
KEEP_LOGS = 20  # the newest run logs kept under <root>/_logs


def new_log_path(root: Path) -> Path:
    """A fresh log file under ``<root>/_logs``; the oldest beyond :data:`KEEP_LOGS` are removed."""
    folder = root / LOG_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for old in sorted(folder.glob("run-*.log"))[: -(KEEP_LOGS - 1)]:
        old.unlink(missing_ok=True)
    return folder / f"run-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"


@contextlib.contextmanager
def details_to(log_path: Path) -> Iterator[TextIO]:
    """Send this process's output, and its children's, to ``log_path``; yields the terminal's stderr.

    Where stderr is not a file descriptor (a test's captured stream), only Python's streams move.
    """
    try:
        terminal_fd = sys.stderr.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        terminal_fd = None
    with open(log_path, "a", encoding="utf-8", buffering=1) as log:
        if terminal_fd is None:
            console = sys.stderr
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield console
            return
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        saved = {fd: os.dup(fd) for fd in (1, 2)}
        console = os.fdopen(os.dup(saved[2]), "w", encoding="utf-8", errors="replace", buffering=1)
        try:
            for fd in saved:
                os.dup2(log.fileno(), fd)
            yield console
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            console.close()


class StageLines(logging.Handler):
    """One line per stage from the flow's stage events (``stage_event`` on its log records).

    In a terminal the line appears when the stage starts and is completed in place when it ends;
    elsewhere it is written once, when the stage ends.
    """

    def __init__(self, stream: TextIO):
        super().__init__(logging.INFO)
        self.stream = stream
        self.interactive = stream.isatty()
        self.started: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        event: dict[str, Any] | None = getattr(record, "stage_event", None)
        if event is None:
            return
        head = f"[{event['index']}/{event['total']}] {event['stage']:<12} {event['version']}"
        if event["status"] == "started":
            self.started[event["stage"]] = time.monotonic()
            if self.interactive:
                self.stream.write(f"{head}  running ...")
                self.stream.flush()
            return
        seconds = time.monotonic() - self.started.pop(event["stage"], time.monotonic())
        line = f"{head}  {event['status']:<6} {seconds:6.1f} s"
        self.stream.write(f"\r\x1b[K{line}\n" if self.interactive else f"{line}\n")
        self.stream.flush()


@contextlib.contextmanager
def terminal(log_path: Path | None) -> Iterator[TextIO]:
    """While the flow runs: the stream for lines meant for the user, and everything else out of the way.

    With a ``log_path`` (the default) the rest goes to that file, named on stderr first, and each
    stage's start and end (the flow's ``kositp.stage_events``) become one line. Without (verbose),
    everything shows on stderr as it comes. Either way stdout stays for the results.
    """
    if log_path is None:
        with contextlib.redirect_stdout(sys.stderr):
            yield sys.stderr
        return
    print(f"details: {log_path} (`--verbose` shows them here; the Prefect UI has each run's logs)", file=sys.stderr)
    with details_to(log_path) as console:
        lines = StageLines(console)
        events = logging.getLogger("kositp.stage_events")
        events.addHandler(lines)
        try:
            yield console
        finally:
            events.removeHandler(lines)
            # Prefect logs its temporary server's stop at exit, below the summary: the log has it
            prefect_logger = logging.getLogger("prefect")
            prefect_logger.setLevel(max(prefect_logger.getEffectiveLevel(), logging.WARNING))


def next_steps(results: Sequence[dict[str, Any]], profile: str, root_given: bool, tiny_model: bool) -> list[str]:
    """The closing lines of a run that did not fail: where results are, the UI, the chat page."""
    paths = {r["stage"]: Path(r["path"]).resolve() for r in results if r["status"] in ("ran", "cached")}
    if not paths:
        return []
    root = next(iter(paths.values())).parent.parent
    scores = [f"{paths[s].relative_to(root)}/{name}" for s, name in (("evaluate", "report.md"), ("promote", "decision.md"))
              if s in paths]
    lines = [f"Artifacts: {root}" + (f" (scores: {', '.join(scores)})" if scores else "")
             + f"; list them with `kositp artifacts list --root {root}`."]
    api_url = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    lines.append(f"Runs, tables and plots in the Prefect UI: {api_url.removesuffix('/api')}." if api_url else
                 "Runs, tables and plots in the Prefect UI: `make ui` (or `kositp server`), then http://127.0.0.1:4200.")
    if "export" in paths:
        serve = f"--model {paths['export'] / 'merged'}" if root_given else f"--profile {profile}"
        chat = f"Chat with the model: `kositp serve {serve}`, then `kositp chat` in another terminal"
        lines.append(chat + (" (the demo's tiny model writes nonsense by design)." if tiny_model else "."))
    return lines
