"""Limits on JSON bytes enforced before the parser sees them: nesting depth and record size.

ijson keeps a path string per open level, so its memory grows with the square of the nesting
depth (a 200 KB file nested 100,000 levels deep grew past 24 GB), and it holds a whole unit (one
``data`` item) in memory however large. :class:`GuardedJson` sits between the byte stream and
ijson: it holds each value at the depth of the units being streamed until that value closes,
then hands it on. A value that nests deeper than ``max_depth`` or grows past ``max_bytes`` is
never handed on: it is skipped with a depth counter and replaced by a marker string, which the
reader turns into a ``too_deep`` / ``too_large`` reject; the rest of the file is read as usual.
Memory is bounded by ``max_bytes`` plus one read chunk.
"""

from __future__ import annotations

import io
import re
from typing import Any, BinaryIO

import numpy as np

# Read in larger pieces than the parser asks for: the per-read cost of the scan is paid less often.
_GUARD_CHUNK = 1 << 18
# What the parser is handed at a time while no more than a chunk is ready. ijson turns a whole
# read into events before it yields the first unit; a chunk of short units at once was no faster.
_SHORT_READ = 1 << 16

# Defaults: real AIHub/KISTI files nest under 10 levels, and their largest unit is a few MB.
MAX_DEPTH = 100
MAX_RECORD_BYTES = 64 << 20
MARKER = "\x00kositp-rejected:"
_MARKER_JSON = b'"\\u0000kositp-rejected:%d"'
# Everything up to the next bracket or the opening quote of a string that does not close in the
# buffer: plain bytes and whole strings are skipped in one C-level match.
_SKIP = re.compile(rb'(?:[^"\[\]{}]++|"(?:[^"\\]++|\\.)*+")*+')
_STRING_REST = re.compile(rb'(?:[^"\\]++|\\.)*+')
_OPEN = frozenset(b"[{")


class ValueTooLarge(ValueError):
    """A string or number outside any unit is longer than the record size limit."""


class GuardedJson(io.IOBase):
    """The JSON bytes of ``raw`` with values at ``unit_depth`` nesting too deep or too large
    replaced by a marker (``MARKER`` + the index of its entry in :attr:`rejects`).

    ``unit_depth`` is how many containers enclose a unit: 2 for ``data.item``, 0 when the whole
    document is one unit. It offers ``read`` and no ``readinto``: given ``readinto``, ijson reads
    into a buffer of its own fixed size (64 KiB by default), whatever is ready.
    """

    def __init__(self, raw: BinaryIO, unit_depth: int, max_depth: int, max_bytes: int):
        super().__init__()
        if max_depth <= unit_depth:
            raise ValueError(f"max_depth {max_depth} must exceed the unit depth {unit_depth}")
        self._raw = raw
        self._unit_depth = unit_depth
        self._max_depth = max_depth
        self._max_bytes = max_bytes
        self.rejects: list[tuple[str, str]] = []
        self._claimed: set[int] = set()
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._loose_string = 0  # length so far of a string outside any held unit
        self._held: bytearray | None = None  # the open unit's bytes, None when no unit is open
        self._skipping = False  # inside a unit already rejected
        self._out = bytearray()
        self._error: BaseException | None = None
        self._eof = False
        self._slow = False  # the exact scanner is in charge (a unit broke a limit and is being skipped)
        self._pending = bytearray()  # fast path: bytes of the open unit, held until it closes
        self._rest = (0, False, False)  # depth, in a string, escape pending: where the held bytes start

    def readable(self) -> bool:
        return True

    def claim(self, unit: object) -> tuple[str, str] | None:
        """``(reason, detail)`` when ``unit`` is a marker this guard wrote, else None."""
        if not isinstance(unit, str) or not unit.startswith(MARKER):
            return None
        index = unit[len(MARKER):]
        if not index.isdigit() or int(index) >= len(self.rejects) or int(index) in self._claimed:
            return None
        self._claimed.add(int(index))
        return self.rejects[int(index)]

    def unclaimed(self) -> list[tuple[str, str]]:
        """Rejected values the parser never reached as units (they sat outside the streamed list)."""
        return [r for i, r in enumerate(self.rejects) if i not in self._claimed]

    @property
    def largest_read(self) -> int:
        """The most :meth:`read` ever has ready: a unit or a string at the limit, and a chunk on either side."""
        return self._max_bytes + 2 * _GUARD_CHUNK

    def read(self, size: int = -1) -> bytes | bytearray:
        """The bytes ready for the parser, at most ``size`` (to the end when ``size`` is negative).

        ijson's parser (yajl) scans a string that reaches it in several reads again from its
        start at each read (quadratic in the string's length). So a long value
        is handed on whole: a unit once it closed (it is held until then anyway), a string
        outside the units once it closed; both are bounded by ``max_bytes``. Read with ``size``
        of at least :attr:`largest_read`, the parser gets each in one read; a string split
        between reads is shorter than a chunk, so its scans cost at most a few chunks.
        """
        if size < 0:
            return b"".join(iter(lambda: self.read(self.largest_read), b""))
        if size == 0:  # ijson's check that this is a byte stream
            return b""
        while (not self._out or self._in_loose_string()) and not self._eof:
            if self._error is not None:
                if self._out:  # what was read before the error goes first
                    break
                error, self._error = self._error, None
                self._eof = True
                raise error
            try:
                data = self._raw.read(_GUARD_CHUNK)
                if data:
                    self._feed(data)
            except (ValueError, OSError, EOFError) as exc:  # undecodable bytes, a damaged member, a string too long
                self._error = exc
                continue
            if not data:
                self._eof = True
                self._out += self._held or self._pending  # a unit cut short: the parser reports it
                self._held, self._pending = None, bytearray()
                break
        if len(self._out) <= _GUARD_CHUNK:  # short units only: what ijson reads by default
            size = min(size, _SHORT_READ)
        if size >= len(self._out):  # handed over as it is, not copied: it can be a 64 MB unit
            ready, self._out = self._out, bytearray()
            return ready
        ready = self._out[:size]
        del self._out[:size]
        return ready

    def _in_loose_string(self) -> bool:
        """Whether the bytes ready so far end inside a string outside any unit."""
        return self._in_string and not self._pending and self._held is None and not self._skipping

    def _feed(self, buf: bytes) -> None:
        """The fast path: where every bracket outside strings sits and at what depth, found with
        numpy; bytes up to the last point outside any unit go out, the open unit's rest is held.
        A chunk that breaks a limit is scanned again, from that point, by :meth:`_scan`, which
        stays in charge until the offending unit has closed."""
        if self._slow:
            self._scan(buf)
            self._slow = self._held is not None or self._skipping
            if not self._slow:
                self._mark_rest()
            return
        was_loose = self._in_string and not self._pending
        arr = np.frombuffer(buf, np.uint8)
        quotes = np.flatnonzero(arr == 0x22)
        # a backslash anywhere (one memchr) before looking for escaped quotes: searching for the
        # two bytes took 200 µs of each 256 KiB chunk of Korean text, half of the scan
        if quotes.size and (self._escape or b"\\" in buf):
            quotes = self._unescaped(buf, quotes)
        folded = arr | 0x20  # [ and ] fold onto { and }
        brackets = np.flatnonzero((folded == 0x7B) | (folded == 0x7D))
        outside = brackets[((np.searchsorted(quotes, brackets) + self._in_string) & 1) == 0]
        depths = self._depth + np.cumsum(np.where(folded[outside] == 0x7B, 1, -1))
        in_string = bool((self._in_string + quotes.size) & 1)
        n = len(buf)
        depth = int(depths[-1]) if depths.size else self._depth
        ends = np.flatnonzero(depths <= self._unit_depth)
        cuts = outside[ends] + 1  # just after each bracket that leaves no unit open
        cut = n if depth <= self._unit_depth else int(cuts[-1]) if cuts.size else 0
        # each unit with what precedes it since the last one: at least its size
        largest = int(np.diff(cuts, prepend=-len(self._pending), append=n).max())
        if (depths.size and int(depths.max()) > self._max_depth) or largest > self._max_bytes:
            self._depth, self._in_string, self._escape = self._rest
            self._pending, pending = bytearray(), bytes(self._pending)
            self._slow = True
            self._feed(pending + buf)
            return
        if cut:
            self._out += self._pending
            self._out += buf[:cut]
            self._pending = bytearray(buf[cut:])
        else:
            self._pending += buf
        tail = n - len(buf.rstrip(b"\\"))
        self._depth, self._in_string = depth, in_string
        self._escape = in_string and bool((tail - (tail == n and self._escape)) & 1)
        self._loose_check(n, quotes, was_loose, cut == n and in_string)
        if cut == n:
            self._mark_rest()
        elif cut:
            self._rest = (int(depths[ends[-1]]), False, False)

    def _mark_rest(self) -> None:
        """Remember the state at the last byte handed on (nothing is held): the slow path restarts there."""
        self._rest = (self._depth, self._in_string, self._escape)

    def _loose_check(self, n: int, quotes: np.ndarray, was_loose: bool, is_loose: bool) -> None:
        """A string outside any unit, open across chunks, is counted (ijson would hold all of it);
        one that opens and closes within a chunk is shorter than a chunk, and so than the limit."""
        if was_loose:
            self._loose_string += int(quotes[0]) if quotes.size else n
            if self._loose_string > self._max_bytes:
                raise ValueTooLarge(f"a string outside any record is longer than {self._max_bytes} bytes")
        if is_loose and quotes.size:
            self._loose_string = n - int(quotes[-1]) - 1
        elif not is_loose:
            self._loose_string = 0

    def _unescaped(self, buf: bytes, quotes: np.ndarray) -> np.ndarray:
        """The quotes that end or start a string: one after an odd run of backslashes is escaped
        (a run from the chunk's start continues the escape the last chunk left open)."""
        arr = np.frombuffer(buf, np.uint8)
        after_backslash = arr[np.maximum(quotes - 1, 0)] == 0x5C
        after_backslash[quotes == 0] = self._escape
        keep = np.ones(quotes.size, dtype=bool)
        for i in np.flatnonzero(after_backslash).tolist():
            q, run = int(quotes[i]), 0
            while run < q and buf[q - run - 1] == 0x5C:
                run += 1
            keep[i] = not (run + (run == q and self._escape)) & 1
        return quotes[keep]

    def _scan(self, buf: bytes) -> None:
        n, pos, start = len(buf), 0, 0
        while pos < n:
            if self._in_string:
                if self._escape:
                    pos, self._escape = pos + 1, False
                    continue
                end = _STRING_REST.match(buf, pos).end()
                if self._held is None and not self._skipping:
                    self._loose_string += end - pos
                    if self._loose_string > self._max_bytes:
                        raise ValueTooLarge(f"a string outside any record is longer than {self._max_bytes} bytes")
                if end < n and buf[end] == 0x22:
                    pos, self._in_string, self._loose_string = end + 1, False, 0
                else:
                    self._escape = end < n  # the chunk ends inside an escape sequence
                    pos = n
                continue
            pos = _SKIP.match(buf, pos).end()
            if pos == n:
                break
            byte = buf[pos]
            if byte == 0x22:
                self._in_string = True
                pos += 1
                continue
            if byte in _OPEN:
                self._depth += 1
                if self._depth == self._unit_depth + 1:
                    self._out += buf[start:pos]
                    start, self._held = pos, bytearray()
                elif self._depth > self._max_depth and not self._skipping:
                    self._reject("too_deep", f"nested deeper than {self._max_depth} levels")
            else:
                self._depth -= 1
                if self._depth == self._unit_depth:
                    start = self._close_unit(buf, start, pos + 1)
            pos += 1
        if self._held is not None:
            self._held += buf[start:n]
            if len(self._held) > self._max_bytes:
                self._reject("too_large", f"a record longer than {self._max_bytes} bytes")
        elif not self._skipping:
            self._out += buf[start:n]

    def _reject(self, reason: str, detail: str) -> None:
        """The open unit is dropped and a marker takes its place; its rest is skipped."""
        self._out += _MARKER_JSON % len(self.rejects)
        self.rejects.append((reason, detail))
        self._held, self._skipping = None, True

    def _close_unit(self, buf: bytes, start: int, end: int) -> int:
        """The unit ending at ``end`` is handed on whole (or, past the size limit, rejected)."""
        if self._skipping:
            self._skipping = False
        elif self._held is not None:
            self._held += buf[start:end]
            if len(self._held) > self._max_bytes:
                self._reject("too_large", f"a record longer than {self._max_bytes} bytes")
                self._skipping = False
            else:
                self._out += self._held
        self._held = None
        return end

    def close(self) -> None:
        self._raw.close()
        super().close()


def deeper_than(value: Any, limit: int) -> bool:
    """Whether containers nest more than ``limit`` levels in ``value`` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
