"""The SFT loss two ways on one batch: the trainer's (output layer at the completion positions only)
and the model's own causal-LM loss over full logits, each with the LoRA gradients it gives.

Shared by the tiny-model test (tests/test_sft.py) and the Gemma one (tests/test_real_model.py).
"""

from __future__ import annotations

from typing import Any

# Korean prompt/answer pairs of different lengths, so a batch has padding and prompts of its own size.
PAIRS = [
    ("다음 영화 리뷰의 감정을 분류하세요. 배우들의 연기가 훌륭했고 마지막 장면에서 눈물이 났다.", "긍정"),
    ("질문에 답하세요. 훈민정음을 반포한 해는 언제입니까?", "1446년에 반포되었습니다."),
    (
        "다음 문장을 요약하세요. 정부는 올해 하반기부터 청년 주택 공급을 늘리고 전세 대출 한도를 높이기로 했다.",
        "정부가 청년 주택 공급과 전세 대출을 늘린다.",
    ),
    ("다음 두 질문이 같은 의미인지 판단하세요. 질문1: 서울 맛집 추천해 주세요 질문2: 서울에서 맛있는 식당은?", "긍정"),
]


def losses_and_gradients(model_path: str, max_length: int = 128) -> dict[str, Any]:
    """``{"trainer": (loss, grads), "full_logits": (loss, grads)}`` on the first training batch."""
    import tempfile

    import torch
    from datasets import Dataset
    from trl import SFTConfig as TrlConfig

    from kositp.models.prompt_format import format_completion, format_prompt
    from kositp.sft.config import SftConfig
    from kositp.sft.recipe import build_model
    from kositp.train.trl_compat import sft_trainer_class

    torch.manual_seed(0)
    config = SftConfig(base_model=model_path, device="cpu", lora_target_modules="auto", max_seq_length=max_length)
    model, tokenizer = build_model(config, "hf", "cpu", model_path)
    dataset = Dataset.from_dict(
        {
            "prompt": [format_prompt(p) for p, _ in PAIRS],
            "completion": [format_completion(a, tokenizer.eos_token) for _, a in PAIRS],
        }
    )
    with tempfile.TemporaryDirectory() as scratch:
        args = TrlConfig(
            output_dir=scratch,
            use_cpu=True,
            report_to="none",
            max_length=max_length,
            per_device_train_batch_size=len(PAIRS),
        )
        trainer = sft_trainer_class("hf")(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
        batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    model.train()

    def lora_grads() -> dict[str, Any]:
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        model.zero_grad(set_to_none=True)
        return grads

    loss = trainer.compute_loss(model, dict(batch))
    loss.backward()
    ours = (float(loss.detach()), lora_grads())
    full = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"], use_cache=False
    ).loss
    full.backward()
    return {"trainer": ours, "full_logits": (float(full.detach()), lora_grads())}


def relative_gradient_errors(result: dict[str, Any]) -> dict[str, float]:
    """Per LoRA tensor, |trainer - full logits| / |full logits| (Frobenius norms)."""
    ours, full = result["trainer"][1], result["full_logits"][1]
    assert ours.keys() == full.keys() and any(float(g.norm()) > 0 for g in full.values())
    return {name: float((ours[name] - g).norm() / g.norm().clamp(min=1e-30)) for name, g in full.items()}
