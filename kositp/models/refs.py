"""A model reference, parsed once: what a profile's ``sft.base_model``, ``kositp eval --model`` and
``kositp serve --model`` name, and everything the pipeline asks of it.

The kinds are told apart here and nowhere else:

- ``tiny``: ``tiny-llama[:seed=N,hidden=N,...]``, a tiny Llama built locally (:mod:`kositp.models.tiny`);
- ``gguf``: a ``.gguf`` file, or ``package:NAME`` for an installed package that ships one, converted
  once into a transformers folder (:mod:`kositp.models.gguf`);
- ``local``: a folder on disk;
- ``hub``: a Hugging Face id (``org/name``), loaded by transformers.

A reference that can only be a path (absolute, ``.``/``~``-relative, a backslash, more than one
``/``) and does not exist is refused where it is parsed, naming the path: otherwise transformers
reads it as a malformed Hub id after the upstream stages already ran.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kositp.errors import InputNotFound, PermanentError
from kositp.file_hashes import FileHashes
from kositp.models import gguf, tiny

Kind = Literal["tiny", "gguf", "local", "hub"]


class ModelRefError(PermanentError, ValueError):
    """A reference that names no model (empty, or a tiny-llama spec with an unknown option)."""


def model_cache_dir() -> Path:
    """Where models built or converted outside a pipeline run live (``kositp eval``, ``kositp serve``):
    ``$KOSITP_MODEL_CACHE``, else ``~/.cache/kositp`` (``$XDG_CACHE_HOME`` honoured)."""
    configured = os.environ.get("KOSITP_MODEL_CACHE")
    return Path(configured) if configured else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kositp"


def looks_local(text: str) -> bool:
    """Whether ``text`` can only mean a path: absolute, ``.``/``~``-relative, a backslash, or more
    than one ``/`` (a Hub id has at most one)."""
    return os.path.isabs(text) or text.startswith((".", "~")) or "\\" in text or text.count("/") > 1


@dataclass(frozen=True)
class ModelRef:
    text: str
    kind: Kind

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """The reference's kind; a path that is not there, or a malformed tiny spec, is an error now."""
        text = text.strip()
        if not text:
            raise ModelRefError("empty model reference")
        if tiny.is_tiny(text):
            try:
                tiny.TinySpec.parse(text)
            except ValueError as exc:
                raise ModelRefError(str(exc)) from exc
            return cls(text, "tiny")
        if gguf.is_gguf_ref(text):
            return cls(text, "gguf")
        if looks_local(text) or Path(text).expanduser().exists():
            if not Path(text).expanduser().exists():
                raise InputNotFound(f"model not found: {text} (a local path; a Hub id is written org/name)")
            return cls(text, "local")
        return cls(text, "hub")

    def resolve(self, cache_dir: Path) -> str:
        """A folder or Hub id transformers loads: a tiny model built, a GGUF converted, once per cache."""
        if self.kind == "tiny":
            return str(tiny.cached_tiny_model(tiny.TinySpec.parse(self.text), cache_dir))
        if self.kind == "gguf":
            return str(gguf.converted_model(self.text, cache_dir))
        if self.kind == "local":
            return str(Path(self.text).expanduser())
        return self.text

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the model in an artifact version: a tiny spec or Hub id as written, a GGUF
        file or a local folder by content.

        Every file's sha256, not its size: weights edited in place (a re-quantisation, a fixed
        tokenizer of the same length) must give a new SFT version, never reuse the old adapter. The
        hashes are remembered by each file's stat (:mod:`kositp.file_hashes`), so planning the
        nightly no-op reads no weights.
        """
        if self.kind == "gguf":
            return gguf.gguf_fingerprint(self.text)
        if self.kind != "local" or not Path(self.text).expanduser().is_dir():
            return {"base_model": self.text}
        path = Path(self.text).expanduser()
        config = path / "config.json"
        with FileHashes() as hashes:
            digests = {p.relative_to(path).as_posix(): hashes.sha256(p) for p in sorted(path.rglob("*")) if p.is_file()}
        return {
            "base_model": str(path.resolve()),
            "config": json.loads(config.read_text(encoding="utf-8")) if config.is_file() else None,
            "files": digests,
        }

    def hub_id(self) -> str | None:
        """The Hub model for a card's ``base_model``: a Hub id as is, a GGUF file's source model
        (:func:`kositp.models.gguf.hub_id`); None for a local folder or the tiny model."""
        if self.kind == "hub":
            return self.text if "/" in self.text else None
        return gguf.hub_id(self.text) if self.kind == "gguf" else None
