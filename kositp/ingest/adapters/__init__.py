"""One module per source family; :func:`detect` picks one from the start of a file.

Each adapter module exposes ``NAME``, ``detect(head) -> bool`` (``head`` is the decoded start of
the file), ``prefix(head) -> str`` (the ijson prefix of the units to stream: ``data.item``, or
``""`` for one object per file) and ``parse(unit, path)``, yielding ``(json_path, fields)`` where
``fields`` is a partial record dict or a :class:`~kositp.ingest.adapters.base.Missing`.

Registration is the module itself: every module of this package with a ``detect`` is an adapter.
Detection tries them in an order derived from what they declare, never from where they are
listed: an adapter whose files another adapter's ``detect`` also accepts (table QA files have MRC's
``paragraphs`` and ``qas``) names that adapter in ``MORE_SPECIFIC_THAN`` and is tried before it;
otherwise by name. ``tests/test_ingest_adapters.py`` checks, on one document of every family, that
every other adapter that accepts it is named so.
"""

from __future__ import annotations

import importlib
import pkgutil
from graphlib import TopologicalSorter
from types import ModuleType


def ordered(adapters: list[ModuleType]) -> tuple[ModuleType, ...]:
    """Each adapter before the ones it names in ``MORE_SPECIFIC_THAN``; by name where nothing is declared."""
    by_name = {adapter.NAME: adapter for adapter in adapters}
    graph: TopologicalSorter[str] = TopologicalSorter()
    for name in sorted(by_name):
        graph.add(name)
        for general in getattr(by_name[name], "MORE_SPECIFIC_THAN", ()):
            if general not in by_name:
                raise ValueError(f"adapter {name!r} is more specific than {general!r}, which is not an adapter")
            graph.add(general, name)
    graph.prepare()
    order: list[str] = []
    while graph.is_active():
        ready = sorted(graph.get_ready())
        order += ready
        graph.done(*ready)
    return tuple(by_name[name] for name in order)


def _discovered() -> list[ModuleType]:
    modules = (importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__))
    return [module for module in modules if hasattr(module, "detect")]


ADAPTERS: tuple[ModuleType, ...] = ordered(_discovered())
TABULAR_FORMATS = ("jsonl", "csv")
FORMAT_NAMES = tuple(a.NAME for a in ADAPTERS) + TABULAR_FORMATS


def by_name(name: str) -> ModuleType:
    for adapter in ADAPTERS:
        if adapter.NAME == name:
            return adapter
    raise KeyError(f"unknown format {name!r}; known: auto, {', '.join(FORMAT_NAMES)}")


def detect(head: str) -> ModuleType | None:
    return next((a for a in ADAPTERS if a.detect(head)), None)
