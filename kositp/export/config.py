"""The ``export`` profile section; it imports nothing heavy (planning reads it)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kositp.config import StageConfig
from kositp.train import settings

DEFAULT_CHECK_PROMPTS = (
    "다음 문장의 감정을 긍정 또는 부정으로 분류하세요. 문장: 이 영화 정말 재미있었어요.",
    "대한민국의 수도는 어디인가요?",
    "다음 두 문장이 같은 뜻인지 판단하세요. 문장1: 오늘 날씨가 좋다. 문장2: 오늘은 맑은 날이다.",
)


class ExportConfig(StageConfig):
    """The ``export`` profile section."""

    device: settings.Device = "auto"
    dtype: Literal["bfloat16", "float16", "float32"] = Field(
        "bfloat16",
        description="the merged model's weights: bfloat16 for GPUs that have it, float16 for older cards, float32 "
        "for CPU serving (twice the size); the merge itself runs in float32 and is rounded once",
    )
    check_prompts: list[str] = Field(
        default_factory=lambda: list(DEFAULT_CHECK_PROMPTS),
        min_length=1,
        description="prompts the saved merged model must answer as base + adapter does before the export is "
        "published",
    )
    check_answer_length: int = Field(32, ge=1, description="new tokens per check answer (greedy)")
    check_logprob_tolerance: float = Field(
        0.02,
        ge=0.0,
        description="nats: a check answer that differs still passes when the merged model rates every token of "
        "base + adapter's answer within this of its own best (16-bit rounding flips near-ties); 0: identical "
        "answers only",
    )
    gguf_quantization: str | None = Field(
        "q4_k_m",
        description="llama.cpp quantization of the GGUF files (q4_k_m, q8_0, f16, ...); needs Unsloth on a CUDA GPU, "
        "skipped with the reason otherwise; null: no GGUF",
    )
    hub_repo_id: str | None = Field(
        None, description="push merged/ to this Hugging Face repository (org/name) when HF_TOKEN is set; null: no push"
    )
    hub_private: bool = Field(True, description="create that Hub repository as private")
    license: str = Field(
        "other",
        description="the model card's license; the base model's terms decide it (apache-2.0, gemma, llama3, other)",
    )
