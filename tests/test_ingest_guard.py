"""The byte-level guard in front of ijson: its numpy fast path against its exact scanner."""

from __future__ import annotations

import io
import json
import random

import ijson
import pytest

from kositp.ingest import guard
from kositp.ingest.guard import GuardedJson, ValueTooLarge

STRINGS = ["한국어 \"따옴표\" [괄호] {중괄호} \\\\ 끝\\", "가" * 40, "\\\"", "[", "}", "\\", ""]


class ExactOnly(GuardedJson):
    """The reference: every byte through the exact scanner."""

    def _feed(self, buf: bytes) -> None:
        self._scan(buf)


def _value(rnd: random.Random, depth: int):
    roll = rnd.random()
    if depth > 12 or roll < 0.3:
        return rnd.choice([*STRINGS, "x" * rnd.randint(0, 300), 12, 3.5, None, True])
    if roll < 0.65:
        return [_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    return {rnd.choice(["키", "b\"[", "c\\"]) + str(i): _value(rnd, depth + 1) for i in range(rnd.randint(0, 4))}


def _guarded(cls, data: bytes, max_depth: int, max_bytes: int):
    stream = cls(io.BytesIO(data), 2, max_depth, max_bytes)
    try:
        return stream.read(), stream.rejects
    except ValueTooLarge:
        return "too large", []


def test_the_fast_path_hands_on_the_same_bytes_as_the_exact_scanner(monkeypatch):
    """Random documents (escaped quotes and brackets inside strings, units too deep or too long)
    read in random chunk sizes, so strings, escapes and units straddle chunk edges."""
    rnd = random.Random(7)
    for _ in range(600):
        units = [_value(rnd, 2) for _ in range(rnd.randint(0, 6))]
        if rnd.random() < 0.3:
            depth = rnd.randint(5, 40)
            units.insert(rnd.randint(0, len(units)), json.loads("[" * depth + "]" * depth))
        data = json.dumps({"meta": _value(rnd, 1), "data": units}, ensure_ascii=rnd.random() < 0.5,
                          indent=rnd.choice([None, 1])).encode()
        chunk = rnd.randint(1, 200)
        monkeypatch.setattr(guard, "_GUARD_CHUNK", chunk)
        limits = rnd.randint(4, 20), rnd.randint(chunk, 3000)
        fast, exact = _guarded(GuardedJson, data, *limits), _guarded(ExactOnly, data, *limits)
        assert fast == exact, (limits, chunk, data)
        if fast[0] != "too large":
            json.loads(fast[0])


@pytest.mark.parametrize("chunk", [3, 64, 1 << 18])
def test_a_too_deep_unit_becomes_a_marker_and_the_units_after_it_stand(monkeypatch, chunk):
    monkeypatch.setattr(guard, "_GUARD_CHUNK", chunk)
    data = ('{"data": [{"질문": "첫째"}, {"질문": %s}, {"질문": "셋째"}]}' % ("[" * 5000 + "]" * 5000)).encode()
    stream = GuardedJson(io.BytesIO(data), 2, 100, 1 << 20)
    units = list(ijson.items(stream, "data.item"))
    assert units[0] == {"질문": "첫째"} and units[2] == {"질문": "셋째"}
    assert stream.claim(units[1]) == ("too_deep", "nested deeper than 100 levels") and stream.unclaimed() == []
