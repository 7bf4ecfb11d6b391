"""The ``dpo`` profile section, read by planning (:mod:`kositp.dpo.stage`) and by the recipe
(:mod:`kositp.dpo.recipe`); it imports nothing heavy."""

from __future__ import annotations

from pydantic import Field

from kositp.config import StageConfig
from kositp.train import settings
from kositp.train.distributed import ScaleOutSettings


class PairsConfig(StageConfig):
    """Where preference pairs come from; both sources may be combined."""

    user_file: str | None = Field(
        None,
        description="a JSONL file of {prompt, chosen, rejected} objects; bad lines are skipped and reported by "
        "number; its content is part of the version; null: none",
    )
    on_policy: bool = Field(
        True,
        description="also pair the SFT model's own greedy answers to training prompts with the references: "
        "reference chosen, the model's answer rejected, where they differ",
    )
    on_policy_samples: int = Field(
        64, ge=1, description="training prompts drawn (seeded) for the SFT model to answer; each gives at most one pair"
    )
    similarity_threshold: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="an answer at least this similar to its reference (character-level difflib ratio) carries no "
        "preference and is counted, not paired; higher keeps more pairs",
    )
    max_answer_length: int = Field(128, ge=1, description="new tokens per on-policy answer")
    generation_batch_size: int = Field(
        8, ge=1, description="prompts answered per generation batch: faster when larger, as memory allows"
    )


class DpoConfig(ScaleOutSettings):
    """The ``dpo`` profile section."""

    backend: settings.Backend = "auto"
    device: settings.Device = "auto"
    load_in_4bit: settings.LoadIn4bit = False
    pairs: PairsConfig = Field(
        PairsConfig(), description="where the preference pairs come from: a user file, on-policy pairs, or both"
    )
    beta: float = Field(
        0.1,
        gt=0,
        description="how far the policy may move from the SFT reference: higher stays closer (TRL's beta; the "
        "regularisation tau for ipo)",
    )
    loss_type: list[str] = Field(
        default_factory=lambda: ["sigmoid"],
        min_length=1,
        description="TRL's DPO losses: sigmoid (the DPO paper's), hinge, ipo, robust, apo_zero, ...; several are "
        "combined with equal weights",
    )
    max_length: int = Field(
        1024, ge=1, description="tokens of prompt + answer per example; longer ones are cut at the end"
    )
    learning_rate: settings.LearningRate = 5e-6
    num_train_epochs: settings.TrainEpochs = 1.0
    max_steps: settings.MaxSteps = -1
    train_batch_size: settings.TrainBatchSize = 2
    gradient_accumulation_steps: settings.GradientAccumulation = 1
    warmup_steps: settings.WarmupSteps = 0
    optim: str = Field("adamw_torch", description="a transformers optimizer name (adamw_torch; adamw_8bit on a GPU)")
    use_gradient_checkpointing: bool = Field(
        False,
        description="recompute activations in the backward pass instead of keeping them: much less memory for "
        "about a third more compute",
    )
    save_steps: int = Field(
        50, ge=1, description="optimizer steps between checkpoints in the staging folder, from which a failed attempt "
        "resumes"
    )
    save_total_limit: settings.SaveTotalLimit = 2
    logging_steps: settings.LoggingSteps = 10
    seed: int = Field(3407, description="seeds the trainer and the draw of on-policy prompts")
