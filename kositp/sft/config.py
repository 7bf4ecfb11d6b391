"""The ``sft`` profile section, read by planning (:mod:`kositp.sft.stage`) and by the recipe
(:mod:`kositp.sft.recipe`); it imports nothing heavy."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from kositp.train.distributed import ScaleOutSettings

SEED_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class SftConfig(ScaleOutSettings):
    """The ``sft`` profile section; defaults are the seed's ``config.json`` values."""

    base_model: str = "tiny-llama"
    backend: Literal["auto", "unsloth", "hf"] = "auto"
    device: str = "auto"
    load_in_4bit: bool = True
    max_seq_length: int = Field(2048, ge=1)
    lora_r: int = Field(8, ge=1)
    lora_alpha: float = Field(32, gt=0)
    lora_target_modules: list[str] | Literal["auto"] = SEED_TARGET_MODULES  # auto: the architecture's own
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    use_gradient_checkpointing: bool | Literal["unsloth"] = True
    seed: int = 3407
    use_rslora: bool = False
    num_train_epochs: float = Field(3, gt=0)
    max_steps: int = Field(-1, ge=-1)  # -1: num_train_epochs decides
    train_batch_size: int = Field(4, ge=1)
    eval_batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(4, ge=1)
    weight_decay: float = Field(0.01, ge=0)
    learning_rate: float = Field(2e-4, gt=0)
    lr_scheduler_type: str = "linear"
    warmup_steps: int = Field(0, ge=0)
    logging_steps: int = Field(100, ge=1)
    optim: str = "adamw_8bit"
    eval_strategy: Literal["no", "steps", "epoch"] = "steps"
    save_steps: int = Field(9811, ge=1)
    eval_steps: int = Field(9811, ge=1)
    checkpoint_steps: int | None = Field(None, ge=1)
    load_best_model_at_end: bool = True
    save_total_limit: int | None = Field(3, ge=1)
    packing: bool = False
    padding_free: bool = False
    completion_only_loss: bool = True

    @model_validator(mode="after")
    def _checkpoints_line_up_with_evals(self) -> SftConfig:
        if (
            self.load_best_model_at_end
            and self.eval_strategy == "steps"
            and self.checkpoint_interval % self.eval_steps
        ):
            raise ValueError(
                f"load_best_model_at_end needs the checkpoint interval ({self.checkpoint_interval}) to be a "
                f"multiple of eval_steps ({self.eval_steps})"
            )
        if self.load_best_model_at_end and self.eval_strategy == "no":
            raise ValueError("load_best_model_at_end needs an eval_strategy other than 'no'")
        return self

    @property
    def checkpoint_interval(self) -> int:
        """Steps between checkpoints: ``checkpoint_steps`` when set, else the seed's ``save_steps``."""
        return self.checkpoint_steps or self.save_steps
