"""The settings both training sections (``sft``, ``dpo``) take, declared once: their limits and the
help text the profile form and ``--help`` show. Each section sets its own defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

Backend = Annotated[
    Literal["auto", "unsloth", "hf"],
    Field(
        description="auto: unsloth on a CUDA GPU where it is installed, else hf (the choice and why are logged "
        "and kept in the manifest); unsloth: Unsloth's faster kernels, one CUDA GPU; hf: transformers + PEFT "
        "+ TRL on any device"
    ),
]
Device = Annotated[
    str,
    Field(
        description="auto: the first CUDA GPU visible to the worker, else the CPU; or cpu, cuda, cuda:N "
        "(pinning cards is the worker's CUDA_VISIBLE_DEVICES)"
    ),
]
LoadIn4bit = Annotated[
    bool,
    Field(
        description="load the base model's weights in 4 bits (bitsandbytes NF4, QLoRA): about a quarter of "
        "the memory, so a larger model fits a card; CUDA GPU only (ignored on the CPU)"
    ),
]
TrainEpochs = Annotated[
    float, Field(gt=0, description="passes over the training data; a max_steps above 0 takes precedence")
]
MaxSteps = Annotated[
    int,
    Field(ge=-1, description="optimizer steps to train, overriding num_train_epochs; -1: num_train_epochs decides"),
]
TrainBatchSize = Annotated[
    int,
    Field(
        ge=1,
        description="training examples per device per forward pass (memory grows with it); the effective batch "
        "is train_batch_size x gradient_accumulation_steps x num_processes",
    ),
]
GradientAccumulation = Annotated[
    int,
    Field(
        ge=1,
        description="forward passes whose gradients add up to one optimizer step: a larger effective batch "
        "without more memory",
    ),
]
LearningRate = Annotated[float, Field(gt=0, description="the optimizer's peak learning rate")]
WarmupSteps = Annotated[
    int, Field(ge=0, description="optimizer steps over which the learning rate rises from 0 to learning_rate")
]
SaveTotalLimit = Annotated[
    int | None,
    Field(ge=1, description="checkpoints kept in the staging folder, older ones deleted (disk); null: all"),
]
LoggingSteps = Annotated[
    int,
    Field(ge=1, description="optimizer steps between rows of training_log.jsonl (loss, learning rate) and loss.png"),
]


def trainer_arguments(section: Any, output_dir: Path) -> dict[str, Any]:
    """The settings above and the section's seed under the names of transformers' ``TrainingArguments``
    (TRL's ``SFTConfig`` and ``DPOConfig`` extend it), checkpointing every ``save_steps``."""
    return {
        "output_dir": str(output_dir),
        "seed": section.seed,
        "num_train_epochs": section.num_train_epochs,
        "max_steps": section.max_steps,
        "per_device_train_batch_size": section.train_batch_size,
        "gradient_accumulation_steps": section.gradient_accumulation_steps,
        "learning_rate": section.learning_rate,
        "warmup_steps": section.warmup_steps,
        "save_strategy": "steps",
        "save_total_limit": section.save_total_limit,
        "logging_steps": section.logging_steps,
    }
