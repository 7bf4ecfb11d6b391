"""Small helpers the adapters share: a missing-field marker and tolerant field access."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Missing:
    """A unit lacked a field its family requires; becomes a ``missing_field`` reject."""

    field: str


def first(obj: Any, *keys: str) -> Any:
    """The first present, non-null value among ``keys`` (AIHub releases rename fields); none where
    ``obj`` is not an object at all (a damaged file can hold anything where one is expected)."""
    if not isinstance(obj, dict):
        return None
    for key in keys:
        value = obj.get(key)
        if value is not None:
            return value
    return None


def ko(value: Any) -> Any:
    """KISTI and 71533 give some fields as ``{"ko": ..., "en": ...}`` (or ``kor``/``eng``)."""
    if isinstance(value, dict):
        return first(value, "ko", "kor", "korean", "en", "eng")
    return value


def as_id(value: Any) -> str | None:
    return None if value is None else str(value)


def top_list_prefix(head: str, key: str) -> str:
    """``key.item``, or ``item.key.item`` for releases that wrap the file in a top-level list."""
    return f"item.{key}.item" if head.lstrip().startswith("[") else f"{key}.item"


def passages(items: list[Any], path: str) -> Iterator[tuple[str, Any, Any]]:
    """A document's passages as ``(json path, passage, its context)``; the context is
    ``Missing("context")`` where the passage has none (MRC's paragraphs, 71533's context_info)."""
    for j, item in enumerate(items):
        context = item.get("context") if isinstance(item, dict) else None
        yield f"{path}/{j}", item, Missing("context") if context is None else context
