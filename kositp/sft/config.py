"""The ``sft`` profile section, read by planning (:mod:`kositp.sft.stage`) and by the recipe
(:mod:`kositp.sft.recipe`); it imports nothing heavy."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from kositp.train import settings
from kositp.train.distributed import ScaleOutSettings

SEED_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class SftConfig(ScaleOutSettings):
    """The ``sft`` profile section; defaults are the seed's ``config.json`` values."""

    base_model: str = Field(
        "tiny-llama",
        description="the model to tune: a Hugging Face id (org/name), a local folder, tiny-llama[:opts] (a tiny "
        "Llama built locally, for the demo and tests), a .gguf file or package:NAME; a local model's files are "
        "part of the version",
    )
    backend: settings.Backend = "auto"
    device: settings.Device = "auto"
    load_in_4bit: settings.LoadIn4bit = True
    max_seq_length: int = Field(
        2048,
        ge=1,
        description="tokens per training sequence (prompt + answer, or a pack); longer examples are cut at the "
        "end; memory grows with it",
    )
    lora_r: int = Field(
        8, ge=1, description="rank of the LoRA matrices: trainable parameters, and capacity, per adapted layer"
    )
    lora_alpha: float = Field(
        32, gt=0, description="LoRA scale: the update is multiplied by lora_alpha / lora_r (/ sqrt(lora_r) with use_rslora)"
    )
    lora_target_modules: list[str] | Literal["auto"] = Field(
        SEED_TARGET_MODULES,
        description="the layers LoRA adapts, by short name (checked against the model before training; the seed's "
        "seven Llama projections by default); auto: the architecture's own (kositp/train/lora_targets.py)",
    )
    lora_dropout: float = Field(
        0.0, ge=0, lt=1, description="dropout on the LoRA branch while training; a regulariser for small data sets"
    )
    use_gradient_checkpointing: bool | Literal["unsloth"] = Field(
        True,
        description="recompute activations in the backward pass instead of keeping them: much less memory for "
        "about a third more compute; true and unsloth both mean Unsloth's variant on unsloth, the trainer's on hf",
    )
    seed: int = Field(3407, description="seeds the trainer, the data order and the LoRA initialisation")
    use_rslora: bool = Field(
        False, description="rank-stabilised LoRA: scale by lora_alpha / sqrt(lora_r), which keeps higher ranks learning"
    )
    num_train_epochs: settings.TrainEpochs = 3
    max_steps: settings.MaxSteps = -1
    train_batch_size: settings.TrainBatchSize = 4
    eval_batch_size: int = Field(4, ge=1, description="validation examples per device per forward pass")
    gradient_accumulation_steps: settings.GradientAccumulation = 4
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay on the trained (LoRA) weights")
    learning_rate: settings.LearningRate = 2e-4
    lr_scheduler_type: str = Field(
        "linear",
        description="how the learning rate falls after warm-up: a transformers scheduler name (linear, cosine, "
        "constant, ...)",
    )
    warmup_steps: settings.WarmupSteps = 0
    logging_steps: settings.LoggingSteps = 100
    optim: str = Field(
        "adamw_8bit",
        description="a transformers optimizer name (adamw_8bit, paged_adamw_8bit, adamw_torch, ...); the 8-bit ones "
        "need a CUDA GPU and become adamw_torch on the CPU (logged)",
    )
    eval_strategy: Literal["no", "steps", "epoch"] = Field(
        "steps",
        description="when the validation loss is computed: every eval_steps, every epoch, or no; off when the "
        "shards have no validation rows",
    )
    save_steps: int = Field(
        9811, ge=1, description="the seed's checkpoint interval in optimizer steps, used when checkpoint_steps is unset"
    )
    eval_steps: int = Field(9811, ge=1, description="optimizer steps between validation losses (eval_strategy: steps)")
    checkpoint_steps: int | None = Field(
        None,
        ge=1,
        description="optimizer steps between checkpoints in the staging folder, from which a failed attempt "
        "resumes: lower loses less work to a crash, at some time and disk; null: save_steps",
    )
    load_best_model_at_end: bool = Field(
        True,
        description="publish the checkpoint with the lowest validation loss instead of the last; needs evaluation "
        "and a checkpoint interval that is a multiple of eval_steps",
    )
    save_total_limit: settings.SaveTotalLimit = 3
    packing: bool = Field(
        False,
        description="pack several examples into each max_seq_length sequence (TRL packing, padding-free): fewer "
        "wasted tokens on a GPU with FlashAttention, slower on a CPU",
    )
    padding_free: bool = Field(
        False,
        description="batches as one flattened sequence without pad tokens (TRL padding_free); pays off with "
        "FlashAttention on a GPU",
    )
    completion_only_loss: bool = Field(
        True, description="loss on the answer tokens only, the prompt masked, as the seed trained; false: the whole text"
    )

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
