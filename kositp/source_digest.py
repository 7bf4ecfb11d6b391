"""A digest of the source of a module and of every module of this package it imports.

A cache keyed by one function's source (``inspect.getsource``) goes stale when a helper that
function calls changes, or when the function is a lambda. Reading the import statements
instead (every ``import kositp...`` and ``from kositp... import``, also inside functions, also
relative) and hashing each reached file covers the helpers wherever they live.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "kositp"
PACKAGE_ROOT = Path(__file__).resolve().parent


def _module_file(name: str, root: Path) -> Path | None:
    """The file of module ``name`` (``kositp.a.b``) under the package folder ``root``."""
    parts = name.split(".")[1:]
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(name: str, tree: ast.AST, is_package: bool) -> set[str]:
    """Names of this package's modules that ``tree`` (the module ``name``) imports."""
    found: set[str] = set()
    here = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = here[: len(here) - node.level + 1]
                module = ".".join(anchor + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != PACKAGE:
                continue
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)  # ``from pkg import submodule``
    return found


def module_closure(roots: Iterable[str], root: Path = PACKAGE_ROOT) -> dict[str, Path]:
    """Every module of this package reachable by imports from ``roots``, with its file."""
    files: dict[str, Path] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in files:
            continue
        path = _module_file(name, root)
        if path is None:
            continue  # a name imported from a module, not a module
        files[name] = path
        for parent in range(2, name.count(".") + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
            pending.append(".".join(name.split(".")[:parent]))
        tree = ast.parse(path.read_bytes(), filename=str(path))
        pending.extend(_imported(name, tree, path.name == "__init__.py"))
    return dict(sorted(files.items()))


def source_digest(roots: Iterable[str], root: Path = PACKAGE_ROOT) -> str:
    """sha256 over the names and bytes of every module in :func:`module_closure`."""
    digest = hashlib.sha256()
    for name, path in module_closure(roots, root).items():
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
