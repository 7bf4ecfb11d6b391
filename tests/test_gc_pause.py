import gc

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
