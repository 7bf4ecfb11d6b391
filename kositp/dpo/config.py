"""The ``dpo`` profile section, read by planning (:mod:`kositp.dpo.stage`) and by the recipe
(:mod:`kositp.dpo.recipe`); it imports nothing heavy."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kositp.config import StageConfig
from kositp.train.distributed import ScaleOutSettings


class PairsConfig(StageConfig):
    """Where preference pairs come from; both sources may be combined."""

    user_file: str | None = None
    on_policy: bool = True
    on_policy_samples: int = Field(64, ge=1)
    similarity_threshold: float = Field(0.6, ge=0.0, le=1.0)
    max_answer_length: int = Field(128, ge=1)  # new tokens per answer
    generation_batch_size: int = Field(8, ge=1)


class DpoConfig(ScaleOutSettings):
    backend: Literal["auto", "hf", "unsloth"] = "auto"
    device: str = "auto"
    load_in_4bit: bool = False
    pairs: PairsConfig = PairsConfig()
    beta: float = Field(0.1, gt=0)
    loss_type: list[str] = Field(default_factory=lambda: ["sigmoid"], min_length=1)
    max_length: int = Field(1024, ge=1)
    learning_rate: float = Field(5e-6, gt=0)
    num_train_epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, ge=-1)  # -1: num_train_epochs decides
    train_batch_size: int = Field(2, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    warmup_steps: int = Field(0, ge=0)
    optim: str = "adamw_torch"
    use_gradient_checkpointing: bool = False
    save_steps: int = Field(50, ge=1)
    save_total_limit: int | None = Field(2, ge=1)
    logging_steps: int = Field(10, ge=1)
    seed: int = 3407
