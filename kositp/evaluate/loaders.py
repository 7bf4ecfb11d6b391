"""Loaders for the official file layouts of the evaluation sets, one function per set.

Each loader reads the set's own folder (``kornli/xnli.test.ko.tsv``, ``kor_question_pair/*.csv``,
``korean_hate_speech/{train,dev}.tsv``, ``nsmc/ratings_test*.txt``) and returns :class:`Example`
rows whose ``gold`` is already the label word, so the rest of the evaluation never sees a
set-specific encoding. Bad files raise :class:`EvalDataError` naming the file and line. Which sets
exist, and where their folders are, is the table in :mod:`kositp.evaluate.sets`.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kositp.errors import PermanentError

NSMC_SAMPLE_FRACTION = 0.2
NSMC_SAMPLE_SEED = 42


class EvalDataError(PermanentError, ValueError):
    """A missing or malformed evaluation file; the message names it (no retry reads it better)."""


@dataclass(frozen=True)
class Example:
    set: str
    id: str
    text: str
    gold: str


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text.strip())


def _read_rows(path: Path, delimiter: str, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """Rows as dicts keyed by header, with the file's line number; BOM and trailing commas tolerated."""
    if not path.is_file():
        raise EvalDataError(f"{path}: file not found")
    try:
        text = path.read_bytes().decode("utf-8-sig")  # not read_text: it turns a bare "\r" into a line break
    except UnicodeDecodeError as exc:
        raise EvalDataError(f"{path}: not UTF-8 ({exc})") from exc
    if delimiter == ",":
        reader = csv.reader(io.StringIO(text, newline=""))
    else:  # TSVs are unquoted and some documents hold a bare carriage return: only "\n" ends a line
        reader = iter([line.removesuffix("\r").split("\t") for line in text.split("\n")])
    header = next(reader, None)
    if header is None:
        raise EvalDataError(f"{path}: empty file")
    header = [h.strip() for h in header]
    width = len(header)  # a trailing comma in the header makes an unnamed column; its cells are ignored
    while header and header[-1] == "":
        header.pop()
    missing = [c for c in required if c not in header]
    if missing:
        raise EvalDataError(f"{path}: header {header} lacks column(s) {', '.join(missing)}")
    rows = []
    for line_no, cells in enumerate(reader, start=2):
        if not cells or all(not c.strip() for c in cells):
            continue
        while len(cells) > width and cells[-1] == "":
            cells = cells[:-1]
        if not len(header) <= len(cells) <= width:
            raise EvalDataError(f"{path}:{line_no}: expected {len(header)} fields, got {len(cells)}")
        rows.append((line_no, dict(zip(header, cells))))
    return rows


def _rows_of_every(
    folder: Path, pattern: str, delimiter: str, required: tuple[str, ...]
) -> Iterator[tuple[Path, int, dict[str, str]]]:
    """The rows of every file in ``folder`` that matches ``pattern`` (the seed read all of them), each
    with its file and line number; a folder without one is an error."""
    paths = sorted(folder.glob(pattern))
    if not paths:
        raise EvalDataError(f"{folder}: no {pattern} file")
    for path in paths:
        for line_no, row in _read_rows(path, delimiter, required):
            yield path, line_no, row


def _label(path: Path, line_no: int, value: str, mapping: dict[str, str]) -> str:
    key = value.strip()
    if key not in mapping:
        raise EvalDataError(f"{path}:{line_no}: unknown label {value!r} (expected one of {sorted(mapping)})")
    return mapping[key]


def load_kornli(folder: Path, labels: dict[str, str]) -> list[Example]:
    """KorNLI's XNLI test file; ``labels`` maps entailment/neutral/contradiction to label words."""
    path = folder / "xnli.test.ko.tsv"
    rows = _read_rows(path, "\t", ("sentence1", "sentence2", "gold_label"))
    return [
        Example(
            "kornli",
            str(line_no - 1),
            f"전제: {_nfc(row['sentence1'])}\n가설: {_nfc(row['sentence2'])}",
            _label(path, line_no, row["gold_label"], labels),
        )
        for line_no, row in rows
    ]


def load_question_pair(folder: Path, labels: dict[str, str]) -> list[Example]:
    """Every CSV in the folder; ``is_duplicate`` 0 means the same meaning."""
    examples = []
    for path, line_no, row in _rows_of_every(folder, "*.csv", ",", ("question1", "question2", "is_duplicate")):
        row_id = row.get("test_id") or row.get("id")
        if not row_id:
            raise EvalDataError(f"{path}:{line_no}: neither test_id nor id is set")
        examples.append(
            Example(
                "question_pair",
                f"{path.stem}:{row_id.strip()}",
                f"질문1: {_nfc(row['question1'])}\n질문2: {_nfc(row['question2'])}",
                _label(path, line_no, row["is_duplicate"], labels),
            )
        )
    return examples


def load_hate_speech(folder: Path, labels: dict[str, str]) -> list[Example]:
    """Labeled train + dev; ``labels`` maps "present"/"absent" (``bias != none``) to label words."""
    examples = []
    for split in ("train", "dev"):
        path = folder / f"{split}.tsv"
        for line_no, row in _read_rows(path, "\t", ("comments", "bias")):
            bias = row["bias"].strip()
            if bias not in {"none", "gender", "others"}:
                raise EvalDataError(
                    f"{path}:{line_no}: unknown bias {bias!r} (expected none, gender, others)"
                )
            gold = labels["present" if bias != "none" else "absent"]
            examples.append(Example("hate_speech", f"{split}:{line_no - 1}", _nfc(row["comments"]), gold))
    return examples


def stratified_sample(examples: list[Example], fraction: float, seed: int) -> list[Example]:
    """The seed's stratified test split (sklearn ``train_test_split(stratify=..., random_state=42)``)."""
    from sklearn.model_selection import train_test_split

    if not examples:
        return examples
    try:
        _, sample = train_test_split(
            examples, test_size=fraction, random_state=seed, stratify=[e.gold for e in examples]
        )
    except ValueError as exc:  # too few examples of a label to split them
        raise EvalDataError(f"{examples[0].set}: cannot take the stratified {fraction:.0%} sample: {exc}") from exc
    return sample


def load_nsmc(folder: Path, labels: dict[str, str]) -> list[Example]:
    """Every ``ratings_test*.txt`` in the folder."""
    return [
        Example("nsmc", row["id"].strip(), _nfc(row["document"]), _label(path, line_no, row["label"], labels))
        for path, line_no, row in _rows_of_every(folder, "ratings_test*.txt", "\t", ("id", "document", "label"))
    ]


def nsmc_seed_sample(examples: list[Example]) -> list[Example]:
    """The seed's NSMC test split: a stratified 20% (sklearn, ``random_state=42``)."""
    return stratified_sample(examples, NSMC_SAMPLE_FRACTION, NSMC_SAMPLE_SEED)
