"""Names that become parts of file paths: profile names, stage names, artifact version prefixes.

A profile name is written into ``<root>/promoted-<profile>.json`` and ``<root>/<stage>/latest-<profile>.json``,
a stage name and a version are folders under the root. Each comes from a user (a profile's
``name``, ``--profile``, ``--set``, a command's argument), so each is checked before it is
joined to a path: letters (any script), digits, ``_``, ``-`` and ``.``, starting with a letter,
digit or ``_``: no separator, no ``..``, never empty.
"""

from __future__ import annotations

import re

from kositp.errors import PermanentError

MAX_NAME_CHARS = 128
_SAFE = re.compile(r"\w[\w.-]*")


class UnsafeName(PermanentError, ValueError):
    """A name that would not stay one plain file or folder name under the root."""


def is_safe_name(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_NAME_CHARS and _SAFE.fullmatch(value) is not None


def safe_name(value: str, what: str, error: type[Exception] = UnsafeName) -> str:
    """``value`` itself when it is a safe name; otherwise ``error`` saying which ``what`` (the
    caller's own error class, so its command reports it as it reports its other errors)."""
    if not is_safe_name(value):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise error(f"{what} {shown} is not a safe name: use 1 to {MAX_NAME_CHARS} letters, digits, '_', '-' "
                    "or '.', starting with a letter, digit or '_'")
    return value
