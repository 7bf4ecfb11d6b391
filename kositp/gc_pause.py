"""Python's cycle collector paused around the bulk loops of ingest and reformat, and skipped at exit.

The loops make and drop millions of small dicts, lists and tuples. Each 700 of them start a
collection, and the batches that live a little longer get promoted, so full collections keep
walking every object the process has imported as well: 0.4 s of a 5 s ingest. None of these
objects form cycles (reference counting frees them), so nothing is left for the collector to do.
Whatever cycles appear meanwhile are collected once the loop ends.
"""

from __future__ import annotations

import atexit
import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Disable automatic collection for the block; nested blocks leave it to the outermost."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def frozen_at_exit() -> None:
    """At exit, move every object to the collector's permanent generation once the other exit
    handlers have run (handlers run last-registered first, so register this early).

    The interpreter's last collections walk every object its imports made (pyarrow, numpy,
    typer, pandas), a pause at every exit that freezing them removes. Frozen objects are not
    walked; the operating system takes the memory back. Files and child processes are closed by
    the commands themselves, not left to the collector.
    """
    atexit.register(gc.freeze)
