"""The ``sft`` stage: LoRA SFT on the reformat shards (the recipe is :mod:`kositp.sft.recipe`).

Resumable: a failed attempt leaves its checkpoints in the staging folder and the next attempt of
the same version continues from them; checkpoints are dropped when the adapter is published.
This module is what planning reads (the section, the base model's fingerprint); the recipe is
imported when the stage runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kositp.models.refs import ModelRef
from kositp.sft.config import SftConfig
from kositp.stages import Stage, StageContext, StageOutcome


def fingerprint(config: SftConfig) -> Mapping[str, Any]:
    return ModelRef.parse(config.base_model).fingerprint()


def run(ctx: StageContext) -> StageOutcome:
    from kositp.sft.recipe import run as train

    return train(ctx)


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
