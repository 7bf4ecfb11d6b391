"""The normalized record: the one shape every ingest adapter emits and every builder reads.

Adapters fill what their source has and leave the rest empty (None, [] or False). ``kind`` says
which family a record came from; ``qa_type`` refines MRC and table QA records. Text fields are
NFC-normalized, control characters removed and whitespace tidied by ingest; masked personal
data markers (``***``) are kept as they are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

KINDS = ("mrc", "summary", "paper", "table_qa", "text")
QA_TYPES = ("span", "long", "yes_no", "multiple_choice", "unanswerable", "table")

RECORD_SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),        # sha256[:24] of source_dataset + location + answers + content
        ("source_dataset", pa.string()),   # e.g. aihub_admin_mrc, aihub_summary_law, kisti_paper
        ("source_file", pa.string()),      # the file (or zip) as given
        ("location", pa.string()),         # "a.zip!member.json#/data/0/paragraphs/1/qas/2", "b.jsonl:17"
        ("format", pa.string()),           # the adapter that read it
        ("doc_id", pa.string()),
        ("kind", pa.string()),             # one of KINDS
        ("qa_type", pa.string()),          # one of QA_TYPES, or null
        ("title", pa.string()),
        ("text", pa.string()),             # the passage: MRC context, document body, abstract, table context
        ("sentences", pa.list_(pa.string())),  # sentence-split text where the source provides it
        ("question", pa.string()),
        ("answers", pa.list_(pa.string())),    # yes/no answers normalized to 예 / 아니요
        ("answer_start", pa.int64()),
        ("options", pa.list_(pa.string())),    # multiple-choice options (보기)
        ("clue", pa.string()),             # the supporting passage for an answer (explanation tasks)
        ("is_impossible", pa.bool_()),
        ("summary", pa.string()),          # abstractive summary of ``text``
        ("keywords", pa.list_(pa.string())),
        ("table_html", pa.string()),       # the <table>...</table> part of a table context
    ]
)
RECORD_FIELDS = tuple(RECORD_SCHEMA.names)


# Dictionary-encoded in records.parquet: the columns with few distinct values. Trying it on the
# long unique texts too cost a quarter of the final write, for no smaller file.
DICTIONARY_COLUMNS = ["source_dataset", "source_file", "format", "kind", "qa_type"]


# Min/max statistics only where a reader could filter on them: on the passages, sentences and
# summaries they are a few long strings per row group, and computing them was a sixth of the write.
STATISTICS_COLUMNS = [*DICTIONARY_COLUMNS, "record_id", "doc_id", "answer_start", "is_impossible"]


def records_writer(path: Path) -> pq.ParquetWriter:
    """The writer of ``records.parquet`` (and of ingest's candidates, which become it when no
    duplicate is taken out): one row group per batch written."""
    return pq.ParquetWriter(path, RECORD_SCHEMA, use_dictionary=DICTIONARY_COLUMNS, write_statistics=STATISTICS_COLUMNS)


# The key under which a prepared batch carries :func:`content_digests` (not a column of the record).
CONTENT_DIGEST = "content_digest"
_ANSWER_SEPARATOR = "\x1e"


def content_digests(columns: Mapping[str, Sequence[Any]]) -> list[bytes]:
    """SHA-256 of each record's text, question and summary, for a batch held as columns.

    Both a record's id and its exact-duplicate key (:mod:`kositp.ingest.dedup`) cover this
    content; hashing it once for both saves a pass over every passage.
    """
    return [
        hashlib.sha256(f"{text or ''}\x1f{question or ''}\x1f{summary or ''}".encode()).digest()
        for text, question, summary in zip(columns["text"], columns["question"], columns["summary"], strict=True)
    ]


def record_ids(columns: Mapping[str, Sequence[Any]], digests: Sequence[bytes]) -> list[str]:
    """The id of each record of a batch held as columns: where it was read, its answers and its
    content (:func:`content_digests`), so a rerun gives the same ids."""
    return [
        hashlib.sha256(f"{dataset}\x1f{location}\x1f{_ANSWER_SEPARATOR.join(answers or ())}\x1f".encode() + digest).hexdigest()[:24]
        for dataset, location, answers, digest in zip(columns["source_dataset"], columns["location"], columns["answers"],
                                                      digests, strict=True)
    ]
