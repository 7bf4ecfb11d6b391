"""The ``dpo`` stage: DPO on the SFT adapter, with reformat's shards as the on-policy prompt pool.

The recipe is :mod:`kositp.dpo.recipe`; like the section, it imports no heavy library before the
stage runs, so planning may read both.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kositp.artifacts import file_sha256
from kositp.dpo.config import DpoConfig
from kositp.dpo.recipe import run
from kositp.stages import Stage


def fingerprint(config: DpoConfig) -> Mapping[str, Any]:
    """A user preference file is an external input: its content is part of the version."""
    if not config.pairs.user_file:
        return {}
    path = Path(config.pairs.user_file)
    return {"user_pairs_sha256": file_sha256(path) if path.is_file() else "missing"}


STAGE = Stage(
    name="dpo", code_version="1", config=DpoConfig, run=run, inputs=("sft", "reformat"),
    fingerprint=fingerprint, gpu=True, resumable=True,
    description="DPO on the SFT adapter from user and/or on-policy preference pairs",
)
