import gc
import subprocess
import sys
from pathlib import Path

import pytest

from kositp.gc_pause import collector_paused


def test_the_collector_is_off_inside_and_back_on_after():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled(), "an inner block must not turn collection back on"
    assert gc.isenabled()


def test_the_collector_comes_back_after_an_error():
    @collector_paused()
    def fails() -> None:
        assert not gc.isenabled()
        raise RuntimeError("읽기 실패")

    with pytest.raises(RuntimeError):
        fails()
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_command_leaves_its_objects_frozen_for_the_interpreters_exit():
    """The last collections at exit would walk every imported object; a probe registered before the
    command runs after its handlers and sees them frozen."""
    script = ("import atexit, gc, sys\n"
              "atexit.register(lambda: print('frozen', gc.get_freeze_count()))\n"
              "sys.argv = ['kositp', 'ingest', '--help']\n"
              "from kositp.cli import main\n"
              "main()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    word, count = done.stdout.splitlines()[-1].split()
    assert word == "frozen" and int(count) > 10_000
