"""The one loader and the one generation/scoring helper every stage uses, on the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

from kositp.models.causal_lm import (
    generate_ids,
    label_logprobs,
    load_causal_lm,
    prompt_ids,
)
from kositp.models.prompt_format import format_prompt

PROMPTS = [
    "이 영화 정말 재미있었어요.",
    "다음 두 문장이 같은 뜻인지 판단하세요. 문장1: 오늘 날씨가 좋다. 문장2: 오늘은 맑은 날이다.",
    "대한민국의 수도는?",
]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path):
    import torch

    torch.set_num_threads(1)
    return load_causal_lm(tiny_model_dir, "cpu")


def plain_label_logprob(model, prompt: list[int], label: list[int]) -> float:
    """One (prompt + label) sequence, unpadded, through the whole model: the reference score."""
    import torch

    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([prompt + label])).logits[0]
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    return sum(float(logprobs[len(prompt) - 1 + i, t]) for i, t in enumerate(label))


def test_label_logprobs_equal_a_plain_forward_pass_per_prompt_and_label(tiny):
    """Prompts run once (left-padded, cached), labels of 1 to n tokens on the repeated cache."""
    model, tokenizer = tiny
    prompts = [prompt_ids(tokenizer, format_prompt(p)) for p in PROMPTS]
    labels = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in ("긍정", "사회적 편견 없음", "중립")]
    assert len({len(p) for p in prompts}) > 1 and len({len(ids) for ids in labels}) > 1
    expected = [[plain_label_logprob(model, p, ids) for ids in labels] for p in prompts]
    scores = label_logprobs(model, tokenizer, prompts, labels)
    assert [row == pytest.approx(want, abs=1e-4) for row, want in zip(scores, expected)] == [True] * len(prompts)


def test_batched_greedy_generation_equals_one_prompt_at_a_time(tiny):
    model, tokenizer = tiny
    ids = [prompt_ids(tokenizer, format_prompt(p)) for p in PROMPTS]
    one_by_one = [generate_ids(model, tokenizer, [row], 8)[0] for row in ids]
    assert generate_ids(model, tokenizer, ids, 8, batch_size=3) == one_by_one
    assert all(0 < len(row) <= 8 for row in one_by_one)


def test_prompts_carry_the_tokenizers_special_tokens_as_in_training(tiny):
    _, tokenizer = tiny
    assert (
        prompt_ids(tokenizer, "안녕하세요") == tokenizer(text="안녕하세요")["input_ids"]
    )  # what TRL's SFT uses
