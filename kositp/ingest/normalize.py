"""Text clean-up shared by every adapter, so that equal text from different sources hashes equal."""

from __future__ import annotations

import html
import re
import unicodedata

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2028\u2029\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_SPACE_AROUND_NEWLINE = re.compile(r" *\n *")
_BLANK_LINES = re.compile(r"\n{3,}")
# What the clean-up below would change: characters it removes or turns into a space, and runs of
# spaces and newlines it shortens. A lone newline stays, so multi-line text that is already tidy
# is returned as it is, as one-line text is.
_UNTIDY_CHARS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u00a0\u200b-\u200d\u2028\u2029\u3000\ufeff]")
_UNTIDY_RUNS = ("  ", " \n", "\n ", "\n\n\n")
_TAG = re.compile(r"<[^>]+>")
_BLOCK_TAG = re.compile(r"</?(?:p|br|h[1-6]|div|li|tr)\b[^>]*>", re.IGNORECASE)
_TABLE = re.compile(r"<table\b.*?</table>", re.IGNORECASE | re.DOTALL)


def _normalize_str(text: str) -> str:
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return (text if _is_tidy(text) else _clean(text)).strip()


def _clean(text: str) -> str:
    text = _SPACES.sub(" ", _CONTROL.sub("", text))
    if "\n" in text:
        text = _BLANK_LINES.sub("\n\n", _SPACE_AROUND_NEWLINE.sub("\n", text))
    return text


def _is_tidy(text: str) -> bool:
    """Whether :func:`_clean` would leave ``text`` as it is: a C scan or two instead of four regex passes."""
    if text.isprintable():  # every character of ``_UNTIDY_CHARS`` and the newline are unprintable
        return "  " not in text
    return not any(run in text for run in _UNTIDY_RUNS) and not _UNTIDY_CHARS.search(text)


# The last string normalized and its result: MRC files repeat one passage object for every
# question asked about it, and a document's title and id for each of its records. One identity
# check catches those repeats; an LRU cache hashed every unique string too, a third of the cost.
_last: tuple[object, str] = (None, "")


def normalize_text(value: object) -> str:
    """NFC, control characters out, whitespace tidied; masks such as ``***`` stay untouched."""
    global _last
    if value is None:
        return ""
    if not isinstance(value, str):
        return _normalize_str(str(value))
    last = _last
    if value is last[0]:
        return last[1]
    result = _normalize_str(value)
    _last = (value, result)
    return result


def html_to_text(value: object) -> str:
    """Abstracts that arrive as HTML (``<h1>요 약</h1><p>...``) become plain paragraphs."""
    text = _BLOCK_TAG.sub("\n", str(value or ""))
    return normalize_text(html.unescape(_TAG.sub("", text)))


def extract_table(context: object) -> str | None:
    """The first ``<table>...</table>`` of a context, which table QA needs on its own (none in a non-string)."""
    match = _TABLE.search(context) if isinstance(context, str) else None
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
