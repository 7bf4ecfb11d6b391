"""Telling a missing local model apart from a Hub id, before anything tries to load it.

A profile or ``--model`` names a model either by Hub id (``org/name``) or by a local folder. A
folder that does not exist otherwise reaches ``transformers``, which reads it as a malformed Hub
id ("Repo id must be in the form ...") after the upstream stages already ran. Checked where the
reference is resolved and fingerprinted, it fails at planning time with the path in the message.
"""

from __future__ import annotations

import os
from pathlib import Path

from kositp.errors import InputNotFound
from kositp.tiny_model import is_tiny


def looks_local(ref: str) -> bool:
    """Whether ``ref`` can only mean a path: absolute, ``.``/``~``-relative, a backslash, or more
    than one ``/`` (a Hub id has at most one)."""
    return (
        os.path.isabs(ref)
        or ref.startswith((".", "~"))
        or "\\" in ref
        or ref.count("/") > 1
    )


def require_model(ref: str) -> None:
    """Raise :class:`InputNotFound` when ``ref`` names a local model folder that is not there.

    Hub ids and ``tiny-llama`` references pass unchecked (the Hub is asked when the model loads).
    """
    if is_tiny(ref) or not looks_local(ref):
        return
    path = Path(ref).expanduser()
    if not path.exists():
        raise InputNotFound(f"base model not found: {ref} (a local path; a Hub id is written org/name)")
