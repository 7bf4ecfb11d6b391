"""The files under a path a user named: a folder's regular files, or the named file itself.

A walk of a folder skips what is not a regular file, but a FIFO or a device named directly
would be opened and read, and a FIFO with no writer blocks that read forever: such a path is
refused at once, in one line.
"""

from __future__ import annotations

from pathlib import Path

from kositp.errors import InputNotAFile, InputNotFound


def files_under(root: Path) -> list[Path]:
    """Every regular file under ``root`` in a stable order, or ``[root]`` when it is one."""
    if root.is_dir():
        return sorted(p for p in root.rglob("*") if p.is_file())
    if root.is_file():
        return [root]
    if not root.exists():
        raise InputNotFound(f"input path does not exist: {root}")
    raise InputNotAFile(f"input path is not a regular file or a folder (a FIFO, a device or a socket is not read): {root}")
