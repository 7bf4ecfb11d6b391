"""The ``evaluate`` profile section: the one declaration of every evaluation setting.

The stage validates its profile section with it, and ``kositp eval`` builds one command-line
option per field from it (type, default, choices, help), so the two never disagree. It imports
nothing heavy: the command line reads it at start-up.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kositp.config import StageConfig
from kositp.evaluate.backends import Sampling
from kositp.evaluate.loaders import SETS
from kositp.evaluate.prompts import DEFAULT_PROMPT_SET


class EvaluateConfig(StageConfig):
    data_dir: str = Field(
        "data/demo/eval", description="one folder per set: kornli/, kor_question_pair/, korean_hate_speech/, nsmc/"
    )
    sets: list[Literal["kornli", "question_pair", "hate_speech", "nsmc"]] = Field(
        default_factory=lambda: list(SETS), description="the sets to evaluate"
    )
    limit: int | None = Field(default=None, ge=1, description="at most N examples per set (seeded sample)")
    nsmc_sample: bool = Field(False, description="the seed's stratified 20% NSMC sample")
    method: Literal["choice", "generate"] = Field(
        "choice", description="choice: label log-likelihood; generate: the seed's sampling and parsing"
    )
    choice_scoring: Literal["sum", "per_byte"] = Field(
        "sum", description="choice scores: summed log-probability, or per byte (lm-eval's acc_norm)"
    )
    backend: Literal["auto", "hf", "vllm", "openai"] = Field("auto", description="inference backend")
    prompt_set: str = Field(
        DEFAULT_PROMPT_SET, description="a prompt set of prompts/eval_prompts.yaml (seed: the seed's protocol)"
    )
    batch_size: int = Field(default=8, ge=1, description="sequences per forward pass")
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

    @property
    def sampling(self) -> Sampling:
        return Sampling(self.temperature, self.top_k, self.max_new_tokens, self.seed)
