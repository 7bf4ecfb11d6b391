"""The ``sft`` stage: LoRA SFT on the reformat shards (recipe in :mod:`kositp.train.sft`).

Resumable: a failed attempt leaves its checkpoints in the staging folder and the next attempt of
the same version continues from them; checkpoints are dropped when the adapter is published.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kositp.models.refs import ModelRef
from kositp.stages import Stage
from kositp.train.sft import SftConfig, run


def fingerprint(config: SftConfig) -> Mapping[str, Any]:
    return ModelRef.parse(config.base_model).fingerprint()


STAGE = Stage(
    name="sft",
    code_version="1",
    config=SftConfig,
    run=run,
    inputs=("reformat",),
    fingerprint=fingerprint,
    gpu=True,
    resumable=True,
    description="LoRA SFT of the base model on the task shards (Unsloth on a GPU, transformers+PEFT+TRL elsewhere)",
)
