"""The ``evaluate`` profile section: the one declaration of every evaluation setting.

The stage validates its profile section with it, and ``kositp eval`` builds one command-line
option per field from it (type, default, choices, help), so the two never disagree. It imports
nothing heavy: the command line reads it at start-up.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from kositp.config import StageConfig
from kositp.evaluate.backends import Sampling
from kositp.evaluate.prompts import DEFAULT_PROMPT_SET
from kositp.evaluate.sets import EVAL_SETS


class EvaluateConfig(StageConfig):
    data_dir: str = Field(
        "data/demo/eval",
        description="one folder per set: " + ", ".join(f"{row.folder}/" for row in EVAL_SETS.values()),
    )
    sets: list[str] = Field(
        default_factory=lambda: list(EVAL_SETS),
        description="the sets to evaluate",
        json_schema_extra={"choices": list(EVAL_SETS)},
    )
    limit: int | None = Field(default=None, ge=1, description="at most N examples per set (seeded sample)")
    seed_sample: bool = Field(False, description="the seed's subsample of a set where it took one (NSMC: 20%)")
    method: Literal["choice", "generate"] = Field(
        "choice", description="choice: label log-likelihood; generate: the seed's sampling and parsing"
    )
    choice_scoring: Literal["sum", "per_byte"] = Field(
        "sum", description="choice scores: summed log-probability, or per byte (lm-eval's acc_norm)"
    )
    calibration: Literal["none", "batch"] = Field(
        "none",
        description="choice: batch also reports each label's score minus its mean over the set's inputs "
        "(batch calibration; no gold label used), beside the raw scores",
    )
    backend: Literal["auto", "hf", "vllm", "openai"] = Field("auto", description="inference backend")
    prompt_set: str = Field(
        DEFAULT_PROMPT_SET, description="a prompt set of prompts/eval_prompts.yaml (seed: the seed's protocol)"
    )
    batch_size: int = Field(default=8, ge=1, description="prompts per forward pass")
    seed: int = Field(0, description="sampling / bootstrap / --limit seed")
    temperature: float = Field(0.5, ge=0, description="generate: sampling temperature")
    top_k: int = Field(50, ge=0, description="generate: top-k sampling")
    max_new_tokens: int = Field(256, ge=1, description="generate: tokens per answer")
    vllm_python: str | None = Field(None, description="python of the vLLM environment (--backend vllm)")
    tensor_parallel_size: int = Field(
        default=1, ge=1, le=64, description="GPUs one vLLM engine shards the model over (--backend vllm)"
    )
    base_url: str | None = Field(None, description="OpenAI-compatible server (--backend openai)")
    served_model: str | None = Field(None, description="the model name the server knows (--backend openai)")
    held_in: bool = Field(
        False, description="also score the trained tasks' validation split, asked as in training (held-in scores)"
    )
    held_in_limit: int = Field(20, ge=1, le=10_000, description="held-in: at most N examples per task (seeded)")
    held_in_max_new_tokens: int = Field(
        64, ge=1, le=4096, description="held-in: greedy answer length (span and free-text tasks)"
    )
    held_in_base: bool = Field(True, description="held-in: score the base model too, for comparison")

    @field_validator("sets")
    @classmethod
    def _known_sets(cls, sets: list[str]) -> list[str]:
        unknown = [name for name in sets if name not in EVAL_SETS]
        if unknown:
            raise ValueError(f"unknown evaluation set(s) {', '.join(unknown)} (known: {', '.join(EVAL_SETS)})")
        return sets

    @model_validator(mode="after")
    def _calibration_needs_label_scores(self) -> EvaluateConfig:
        if self.calibration == "batch" and self.method != "choice":
            raise ValueError("calibration: batch needs method: choice (generate gives no label scores)")
        if self.calibration == "batch" and self.backend == "openai":
            raise ValueError(
                "calibration: batch needs every label's score; the openai backend's choice scores only the "
                "label it picked"
            )
        return self

    @property
    def sampling(self) -> Sampling:
        return Sampling(self.temperature, self.top_k, self.max_new_tokens, self.seed)
