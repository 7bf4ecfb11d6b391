"""Finding the raw files (folders, plain files, zips read in place) and opening them as UTF-8 bytes."""

from __future__ import annotations

import codecs
import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from charset_normalizer import from_bytes

HEAD_BYTES = 65536
READABLE_SUFFIXES = (".json", ".jsonl", ".csv")
_UTF8_FLAG = 0x800


class UndecodableError(ValueError):
    pass


@dataclass
class Source:
    """One readable unit: a plain file or one zip member.

    ``source_file`` is what the ledger counts by (``a.zip!member.json`` for members);
    ``source_dataset`` is the folder the user put the download in (``aihub_admin_mrc``), or the
    file's stem when it was given directly.
    """

    source_file: str
    source_dataset: str
    name: str
    open_raw: Callable[[], BinaryIO]

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix.lower()


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


def iter_sources(paths: list[str | Path]) -> Iterator[Source]:
    """Every plain file and zip member under ``paths``, in a stable order."""
    for given in paths:
        root = Path(given)
        if not root.exists():
            raise FileNotFoundError(f"ingest path does not exist: {root}")
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            dataset = _dataset_name(path, root)
            if path.suffix.lower() == ".zip":
                yield from _zip_sources(path, dataset)
            else:
                yield Source(str(path), dataset, path.name, lambda p=path: open(p, "rb"))


def _zip_sources(path: Path, dataset: str) -> Iterator[Source]:
    """Members stream straight out of the archive, which stays open while its members are read."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.is_dir():
                name = member_name(info)
                yield Source(f"{path}!{name}", dataset, name, lambda info=info: archive.open(info))


def detect_encoding(head: bytes) -> str:
    """UTF-8 (with or without BOM) first; otherwise whatever charset-normalizer is sure of (CP949/EUC-KR)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(head).best()
    if best is None:
        raise UndecodableError("bytes match no known encoding")
    encoding = best.encoding.lower().replace("_", "-")
    return "cp949" if encoding in {"euc-kr", "euc_kr", "cp949", "uhc", "johab", "iso2022-kr"} else encoding


def open_utf8(source: Source) -> tuple[BinaryIO, str, str]:
    """A UTF-8 byte stream of the source, the decoded head (for format detection) and the encoding.

    UTF-8 files stream straight through (bounded memory however large); files in another
    encoding are small in practice and are decoded whole, strictly, so bad bytes are an error.
    """
    stream = source.open_raw()
    head = stream.read(HEAD_BYTES)
    encoding = detect_encoding(head)
    if encoding in {"utf-8", "utf-8-sig"}:
        stream.close()
        stream = source.open_raw()
        if encoding == "utf-8-sig":
            stream.read(3)
        text_head = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(head, final=False)
        return stream, text_head.lstrip("\ufeff"), encoding
    data = head + stream.read()
    stream.close()
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise UndecodableError(f"not valid {encoding}: {exc}") from exc
    return io.BytesIO(text.encode("utf-8")), text[:HEAD_BYTES], encoding
