"""The ``export`` profile section; it imports nothing heavy (planning reads it)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kositp.config import StageConfig

DEFAULT_CHECK_PROMPTS = (
    "다음 문장의 감정을 긍정 또는 부정으로 분류하세요. 문장: 이 영화 정말 재미있었어요.",
    "대한민국의 수도는 어디인가요?",
    "다음 두 문장이 같은 뜻인지 판단하세요. 문장1: 오늘 날씨가 좋다. 문장2: 오늘은 맑은 날이다.",
)


class ExportConfig(StageConfig):
    device: str = "auto"
    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    check_prompts: list[str] = Field(default_factory=lambda: list(DEFAULT_CHECK_PROMPTS), min_length=1)
    check_answer_length: int = Field(32, ge=1)  # new tokens per check answer
    check_logprob_tolerance: float = Field(0.02, ge=0.0)
    gguf_quantization: str | None = "q4_k_m"
    hub_repo_id: str | None = None
    hub_private: bool = True
    license: str = "other"  # the card's license: the base model's terms decide it (apache-2.0, gemma, ...)
