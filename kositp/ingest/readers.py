"""Finding the raw files (folders, plain files, zips, nested zips and ``.zip.part<N>`` chunks, all
read in place) and opening them as UTF-8 byte streams."""

from __future__ import annotations

import bisect
import codecs
import io
import itertools
import lzma
import os
import queue
import re
import struct
import threading
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path
from typing import BinaryIO

from charset_normalizer import from_bytes

from kositp.input_files import files_under

HEAD_BYTES = 65536
READ_CHUNK = 65536
# Read ahead of a large source (ReadAhead): pieces of this size, at most this many waiting.
AHEAD_BYTES = 1 << 20
AHEAD = 4
READABLE_SUFFIXES = (".json", ".jsonl", ".csv")
MAX_ZIP_DEPTH = 3
_UTF8_FLAG = 0x800
_ENCRYPTED = 0x1
_INFLATE = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
# A local file header: signature and fixed fields, then the name and extra field lengths.
_LOCAL_MAGIC = b"PK\x03\x04"
_LOCAL_HEADER = struct.Struct("<26xHH")
_PART = re.compile(r"^(?P<base>.+\.zip)\.part(?P<number>\d+)$", re.IGNORECASE)
# What a damaged archive raises while it is opened or read: a bad central directory or CRC, a
# stream cut short, a compression method zipfile lacks (Deflate64).
ARCHIVE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)


class UndecodableError(ValueError):
    pass


@dataclass
class Source:
    """One readable unit: a plain file or one zip member.

    ``source_file`` is what the ledger counts by (``a.zip!member.json`` for members,
    ``a.zip!inner.zip!member.json`` inside nested zips); ``source_dataset`` is the folder the user
    put the download in (``aihub_admin_mrc``), or the file's stem when it was given directly.
    ``problem`` is ``(reason, detail)`` for a unit that cannot be opened at all (a broken
    archive, a gapped part set, a zip nested too deep): it becomes one quarantine entry.
    """

    source_file: str
    source_dataset: str
    name: str
    open_raw: Callable[[], BinaryIO] | None
    problem: tuple[str, str] | None = None

    @cached_property
    def suffix(self) -> str:
        """Asked several times per source, and a book download has one source per passage
        (``os.path`` here: building a ``Path`` for each costs more than the rest of the lookup)."""
        return os.path.splitext(self.name)[1].lower()


def member_name(info: zipfile.ZipInfo) -> str:
    """Zip tools on Korean Windows write CP949 names without the UTF-8 flag; zipfile reads them as cp437."""
    name = info.filename
    if not info.flag_bits & _UTF8_FLAG:
        try:
            name = name.encode("cp437").decode("cp949")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return name.lstrip("/")


def _dataset_name(path: Path, root: Path) -> str:
    if path == root:
        return path.name.split(".")[0]
    rel = path.relative_to(root)
    return rel.parts[0].split(".")[0] if len(rel.parts) > 1 else root.name or path.stem


def _open_file(path: Path) -> BinaryIO:
    """Opened here, closed by whoever reads the source."""
    return open(path, "rb")


def iter_sources(paths: list[str | Path]) -> Iterator[Source]:
    """Every plain file and zip member under ``paths``, in a stable order.

    The paths are listed at once, so a missing one or one that is not a file or folder (a FIFO)
    is refused before anything is read or written. ``name.zip.part<N>`` chunks are grouped by
    ``name.zip`` across all given paths (so a shell glob of the parts works too) and read as
    that one zip, at the place of its first part.
    """
    listed: list[tuple[Path, str]] = []
    for given in paths:
        root = Path(given)
        listed.extend((path, _dataset_name(path, root)) for path in files_under(root))
    return _sources(listed)


def _sources(listed: list[tuple[Path, str]]) -> Iterator[Source]:
    parts: dict[Path, list[tuple[int, Path]]] = defaultdict(list)
    for path, _ in listed:
        if match := _PART.match(path.name):
            parts[path.with_name(match["base"])].append((int(match["number"]), path))
    seen: set[Path] = set()
    for path, dataset in listed:
        if match := _PART.match(path.name):
            base = path.with_name(match["base"])
            if base not in seen:
                seen.add(base)
                yield from _part_sources(base, sorted(set(parts[base])), dataset)
        elif path.suffix.lower() == ".zip":
            yield from _zip_sources(partial(_open_file, path), str(path), dataset, "zip")
        else:
            yield Source(str(path), dataset, path.name, partial(_open_file, path))


def part_gap(parts: list[tuple[int, Path]]) -> str | None:
    """Why a part set cannot be one zip, or None when it follows on.

    The number after ``.part`` is either an index (``0, 1, 2`` or ``1, 2, 3``) or the byte offset
    of the part in the whole file (``0, 1048576, ...``: each part starts where the previous ended).
    """
    numbers = [n for n, _ in parts]
    if len(set(numbers)) != len(numbers):
        return f"two parts carry the same number: {', '.join(p.name for _, p in parts)}"
    if numbers[0] in (0, 1) and numbers == list(range(numbers[0], numbers[0] + len(numbers))):
        return None
    if numbers[0] != 0:
        return f"the first part is {parts[0][1].name}; .part0 (or .part1) is missing"
    offset = 0
    for (n, path), (previous_n, previous) in zip(parts[1:], parts, strict=False):
        offset += previous.stat().st_size
        if n != offset:
            return (f"{path.name} does not follow {previous.name} ({previous.stat().st_size} bytes): expected "
                    f".part{offset} (byte offset) or .part{previous_n + 1} (index); a part is missing")
    return None


def _part_sources(base: Path, parts: list[tuple[int, Path]], dataset: str) -> Iterator[Source]:
    gap = part_gap(parts)
    if gap:
        yield Source(str(base), dataset, base.name, None, ("broken_archive", f"{base.name} from {len(parts)} parts: {gap}"))
        return
    paths = [p for _, p in parts]
    yield from _zip_sources(lambda: io.BufferedReader(ConcatenatedFile(paths), READ_CHUNK), str(base), dataset,
                            f"zip joined from {len(paths)} parts")


def _zip_sources(open_archive: Callable[[], BinaryIO], label: str, dataset: str, what: str, depth: int = 1) -> Iterator[Source]:
    """Members stream straight out of the archive, which stays open while its members are read.

    A ``.zip`` member is opened in place as a zip of its own (up to ``MAX_ZIP_DEPTH`` levels);
    an archive that cannot be opened is one ``broken_archive`` source.
    """
    try:
        stream = open_archive()
    except ARCHIVE_ERRORS as exc:
        yield Source(label, dataset, Path(label).name, None, ("broken_archive", f"{what} cannot be opened: {exc}"))
        return
    with stream:
        try:
            archive = zipfile.ZipFile(stream)
        except (*ARCHIVE_ERRORS, ValueError) as exc:
            yield Source(label, dataset, Path(label).name, None, ("broken_archive", f"{what} is not a readable zip: {exc}"))
            return
        with archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                name = member_name(info)
                member = f"{label}!{name}"
                source = Source(member, dataset, name, lambda info=info: open_member(archive, info))
                if source.suffix != ".zip":
                    yield source
                elif depth >= MAX_ZIP_DEPTH:
                    yield Source(member, dataset, name, None,
                                 ("unsupported_member", f"zip nested deeper than {MAX_ZIP_DEPTH} levels is not opened"))
                else:
                    yield from _zip_sources(lambda info=info: MemberStream(archive.open(info)), member, dataset, "nested zip",
                                            depth + 1)


def open_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> BinaryIO:
    """A member to read, opened by ``zipfile`` or, when short, read here at once.

    A book download holds one short file per passage, and ``ZipFile.open`` costs more than
    reading and inflating such a file: its local header is skipped and the rest inflated in one
    call, its length and CRC checked as ``zipfile`` checks them.
    """
    if info.file_size >= HEAD_BYTES or info.flag_bits & _ENCRYPTED or info.compress_type not in _INFLATE:
        return MemberStream(archive.open(info))
    archive.fp.seek(info.header_offset)
    header = archive.fp.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or header[:4] != _LOCAL_MAGIC:
        raise zipfile.BadZipFile(f"bad local file header for {info.filename}")
    archive.fp.seek(sum(_LOCAL_HEADER.unpack(header)), io.SEEK_CUR)
    data = archive.fp.read(info.compress_size)
    if info.compress_type == zipfile.ZIP_DEFLATED:
        data = zlib.decompressobj(-zlib.MAX_WBITS).decompress(data, HEAD_BYTES)
    if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
        raise zipfile.BadZipFile(f"bad length or CRC-32 for file {info.filename}")
    return io.BytesIO(data)


class MemberStream(io.RawIOBase):
    """A zip member whose damaged compressed data reads as ``BadZipFile``, whatever its compression.

    Damaged deflate data raises ``zlib.error``, but bzip2 raises a bare ``OSError`` and LZMA its
    own error, which would otherwise end the whole run. Seekable as the member is, so a nested
    zip can be opened on it.
    """

    def __init__(self, member: BinaryIO):
        super().__init__()
        self._member = member

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._member.read(len(buffer))
        except (OSError, lzma.LZMAError) as exc:
            raise zipfile.BadZipFile(f"damaged compressed data: {exc}") from exc
        buffer[: len(data)] = data
        return len(data)

    def seekable(self) -> bool:
        return self._member.seekable()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._member.seek(offset, whence)

    def tell(self) -> int:
        return self._member.tell()

    def close(self) -> None:
        self._member.close()
        super().close()


class ConcatenatedFile(io.RawIOBase):
    """The byte-wise concatenation of several files as one seekable, read-only file.

    ``zipfile`` needs to seek (the central directory is at the end), so ``.zip.part<N>`` chunks
    are read where they lie instead of being joined on disk first; one part is open at a time.
    """

    def __init__(self, paths: list[Path]):
        super().__init__()
        self._paths = paths
        self._sizes = [p.stat().st_size for p in paths]
        self._starts = list(itertools.accumulate(self._sizes[:-1], initial=0))
        self._size = sum(self._sizes)
        self._pos = 0
        self._index = -1
        self._file: BinaryIO | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer) -> int:
        if self._pos >= self._size or not len(buffer):
            return 0
        index = bisect.bisect_right(self._starts, self._pos) - 1
        if index != self._index:
            if self._file:
                self._file.close()
            self._file, self._index = open(self._paths[index], "rb"), index  # noqa: SIM115 - closed in close()
        self._file.seek(self._pos - self._starts[index])
        room = self._starts[index] + self._sizes[index] - self._pos
        n = self._file.readinto(memoryview(buffer)[:room]) or 0
        self._pos += n
        return n

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None
        super().close()


def detect_encoding(head: bytes) -> str:
    """UTF-8 (with or without BOM), then CP949 (a superset of EUC-KR), each when the head decodes
    strictly; otherwise whatever charset-normalizer is sure of.

    CP949 is tried before charset-normalizer because on repetitive Korean text it can prefer a
    single-byte code page (ISO-8859-5 was seen) that decodes anything into the wrong letters.
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    for encoding in ("utf-8", "cp949"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(head, final=False)
            return encoding
        except UnicodeDecodeError:
            pass
    best = from_bytes(head).best()
    if best is None:
        raise UndecodableError("bytes match no known encoding")
    encoding = best.encoding.lower().replace("_", "-")
    return "cp949" if encoding in {"euc-kr", "euc_kr", "cp949", "uhc", "johab", "iso2022-kr"} else encoding


class HeadThenRest(io.RawIOBase):
    """A stream whose first bytes were already read (for detection), from its start again.

    Reopening the source instead would seek backwards, which inside a deflated nested zip means
    decompressing the inner zip again from its start for every member (quadratic). ``whole`` is
    the file's bytes when the head already held all of them (a short file), else None.
    """

    def __init__(self, head: bytes, rest: BinaryIO, whole: bool = False):
        super().__init__()
        self._head = memoryview(head)
        self._rest = rest
        self.whole = head if whole else None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self._rest.close()
        super().close()


class ReadAhead(io.RawIOBase):
    """The bytes of ``raw``, read ahead in large pieces on a thread while the parser works.

    Inflating a zip member and its CRC run in C without the GIL, so on a second core they cost
    the parsing thread nothing. An error reading ``raw`` is raised after the bytes read before
    it. At most ``AHEAD`` pieces wait, so memory stays bounded.
    """

    def __init__(self, raw: BinaryIO):
        super().__init__()
        self._raw = raw
        self._pieces: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=AHEAD)
        self._stop = threading.Event()
        self._piece = memoryview(b"")
        self._done = False
        self._thread = threading.Thread(target=self._fill, name="ingest-read-ahead", daemon=True)
        self._thread.start()

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while not self._stop.is_set():
            try:
                piece: bytes | BaseException = self._raw.read(AHEAD_BYTES)
            except BaseException as exc:  # noqa: BLE001 (handed to the reader in order; a thread that died would leave it waiting)
                piece = exc
            while not self._stop.is_set():
                try:
                    self._pieces.put(piece, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if not isinstance(piece, bytes) or not piece:
                return

    def readinto(self, buffer) -> int:
        if not self._piece and not self._done:
            piece = self._pieces.get()
            if isinstance(piece, BaseException):
                self._done = True
                raise piece
            self._done = not piece
            self._piece = memoryview(piece)
        n = min(len(buffer), len(self._piece))
        buffer[:n], self._piece = self._piece[:n], self._piece[n:]
        return n

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._raw.close()
        super().close()


class Utf8Transcoder(io.RawIOBase):
    """A stream in another encoding (CP949) as UTF-8 bytes, decoded strictly one chunk at a time.

    Memory stays bounded however large the file. Bytes that do not decode raise
    :class:`UndecodableError`, but only on the read after everything before them has been handed
    on, so the JSON parser keeps the records that precede the bad bytes. Not wrapped in a
    ``BufferedReader``: that would fill its buffer across the error and drop the good prefix.
    """

    def __init__(self, raw: BinaryIO, encoding: str, head: bytes = b""):
        super().__init__()
        self._raw = raw
        self._encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        self._head = head
        self._fed = 0
        self._out = b""
        self._pos = 0
        self._eof = False
        self._error: UndecodableError | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self._pos >= len(self._out) and not (self._eof and self._error is None):
            self._fill()
        n = min(len(buffer), len(self._out) - self._pos)
        buffer[:n] = self._out[self._pos:self._pos + n]
        self._pos += n
        return n

    def _fill(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            self._eof = True
            raise error
        data, self._head = (self._head or self._raw.read(READ_CHUNK)), b""
        self._eof = not data
        try:
            text = self._decoder.decode(data, final=self._eof)
        except UnicodeDecodeError as exc:
            held = len(exc.object) - len(data)  # bytes the decoder carried over from the last chunk
            at = self._fed - held + exc.start
            self._error = UndecodableError(f"not valid {self._encoding} at byte {at}: {exc.reason}")
            self._eof = False
            text = codecs.decode(exc.object[:exc.start], self._encoding, "replace")
        self._fed += len(data)
        self._out, self._pos = text.encode("utf-8"), 0

    def close(self) -> None:
        self._raw.close()
        super().close()


def open_utf8(source: Source) -> tuple[BinaryIO, str, str]:
    """A UTF-8 byte stream of the source, the decoded head (for format detection) and the encoding.

    UTF-8 files stream straight through; files in another encoding (CP949/EUC-KR) stream through
    :class:`Utf8Transcoder`. Either way memory stays bounded however large the file, the source
    is opened once, and past its head it is read ahead on a thread (:class:`ReadAhead`).
    """
    stream = source.open_raw()
    try:
        head = stream.read(HEAD_BYTES)
        encoding = detect_encoding(head)
    except BaseException:
        stream.close()
        raise
    # read(n) of a zip member or a buffered file returns fewer than n bytes only at the end
    whole = len(head) < HEAD_BYTES
    if encoding in {"utf-8", "utf-8-sig"}:
        text_head = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(head, final=False)
        body = head[len(codecs.BOM_UTF8):] if encoding == "utf-8-sig" else head
        return HeadThenRest(body, stream if whole else ReadAhead(stream), whole=whole), text_head.lstrip("\ufeff"), encoding
    try:
        text_head = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=False)
    except LookupError as exc:
        stream.close()
        raise UndecodableError(f"unknown encoding {encoding}: {exc}") from exc
    return Utf8Transcoder(stream if whole else ReadAhead(stream), encoding, head), text_head, encoding
