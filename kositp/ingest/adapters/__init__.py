"""One module per source family; :func:`detect` picks one from the start of a file.

Each adapter module exposes ``NAME``, ``detect(head) -> bool`` (``head`` is the decoded start of
the file), ``prefix(head) -> str`` (the ijson prefix of the units to stream: ``data.item``, or
``""`` for one object per file) and ``parse(unit, path)``, yielding ``(json_path, fields)`` where
``fields`` is a partial record dict or a :class:`~kositp.ingest.adapters.base.Missing`.
"""

from __future__ import annotations

from types import ModuleType

from kositp.ingest.adapters import (
    doc_summary,
    kisti_paper,
    kisti_qa,
    mrc,
    paper_summary,
    passage_summary,
    table_qa,
    tech_mrc,
)

# Most specific first: 71533 (``context_info``) and KISTI QA (``context`` + ``qas`` at the top,
# never ``paragraphs``) before the rest; table QA and paper summaries share wrappers with MRC.
ADAPTERS: tuple[ModuleType, ...] = (
    tech_mrc, kisti_qa, table_qa, paper_summary, doc_summary, passage_summary, kisti_paper, mrc,
)
TABULAR_FORMATS = ("jsonl", "csv")
FORMAT_NAMES = tuple(a.NAME for a in ADAPTERS) + TABULAR_FORMATS


def by_name(name: str) -> ModuleType:
    for adapter in ADAPTERS:
        if adapter.NAME == name:
            return adapter
    raise KeyError(f"unknown format {name!r}; known: auto, {', '.join(FORMAT_NAMES)}")


def detect(head: str) -> ModuleType | None:
    return next((a for a in ADAPTERS if a.detect(head)), None)
