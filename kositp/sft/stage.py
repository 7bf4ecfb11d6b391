"""The ``sft`` stage: LoRA SFT on the reformat shards (the recipe is :mod:`kositp.sft.recipe`).

Resumable: a failed attempt leaves its checkpoints in the staging folder and the next attempt of
the same version continues from them; checkpoints are dropped when the adapter is published.
Planning reads this module, the section and the recipe: none of them imports a heavy library
before the stage runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kositp.models.refs import ModelRef
from kositp.sft.config import SftConfig
from kositp.sft.recipe import run
from kositp.stages import Stage


def fingerprint(config: SftConfig) -> Mapping[str, Any]:
    return ModelRef.parse(config.base_model).fingerprint()


STAGE = Stage(
    name="sft", code_version="1", config=SftConfig, run=run, inputs=("reformat",), fingerprint=fingerprint,
    gpu=True, resumable=True,
    description="LoRA SFT of the base model on the task shards (Unsloth on a GPU, transformers+PEFT+TRL "
    "elsewhere)",
)
