"""Text clean-up shared by every adapter, so that equal text from different sources hashes equal."""

from __future__ import annotations

import html
import re
import unicodedata

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2028\u2029\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_SPACE_AROUND_NEWLINE = re.compile(r" *\n *")
_BLANK_LINES = re.compile(r"\n{3,}")
_TAG = re.compile(r"<[^>]+>")
_BLOCK_TAG = re.compile(r"</?(?:p|br|h[1-6]|div|li|tr)\b[^>]*>", re.IGNORECASE)
_TABLE = re.compile(r"<table\b.*?</table>", re.IGNORECASE | re.DOTALL)


def normalize_text(value: object) -> str:
    """NFC, control characters out, whitespace tidied; masks such as ``***`` stay untouched."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFC", str(value)).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _SPACE_AROUND_NEWLINE.sub("\n", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


def html_to_text(value: object) -> str:
    """Abstracts that arrive as HTML (``<h1>요 약</h1><p>...``) become plain paragraphs."""
    text = _BLOCK_TAG.sub("\n", str(value or ""))
    return normalize_text(html.unescape(_TAG.sub("", text)))


def extract_table(context: str) -> str | None:
    """The first ``<table>...</table>`` of a context, which table QA needs on its own."""
    match = _TABLE.search(context)
    return match.group(0) if match else None


def normalize_list(values: object) -> list[str]:
    """A list (or a single value, or a ``;``/``,`` separated string) of non-empty normalized strings."""
    if values is None:
        return []
    if isinstance(values, str):
        values = re.split(r"[;,]", values) if ("," in values or ";" in values) else [values]
    if not isinstance(values, list):
        values = [values]
    return [t for t in (normalize_text(v) for v in values if v is not None) if t]
