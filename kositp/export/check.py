"""The saved merged folder must answer like base + adapter before the export is published."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kositp.export.config import ExportConfig
from kositp.models.causal_lm import generate_ids, load_causal_lm, prompt_ids
from kositp.models.prompt_format import cut_at_stop, format_prompt


def check_merged_matches_adapter(
    adapter_dir: Path, base: str, merged_dir: Path, config: ExportConfig, device: str, reporter: Any
) -> dict[str, Any]:
    """Greedy answers of the saved merged folder against base + adapter, both at the export dtype.

    In 16 bits, ``W + BA`` rounded once and ``W x + B(A x)`` rounded per product differ in the
    last bits, which can flip a near-tie between two tokens. So an answer that is not identical
    still passes when, teacher-forced along base + adapter's answer, the merged model rates every
    one of those tokens within ``check_logprob_tolerance`` nats of its own best token; a real
    merge bug (adapter lost, wrong base, quantized merge) misses by far more.
    """
    from peft import PeftModel
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
    base_model, _ = load_causal_lm(base, device, dtype=config.dtype)
    with_adapter = PeftModel.from_pretrained(base_model, str(adapter_dir)).eval()
    merged, _ = load_causal_lm(merged_dir, device, dtype=config.dtype)
    rows = []
    with reporter.progress("merged vs adapter check", len(config.check_prompts)) as advance:
        for prompt in config.check_prompts:
            ids = prompt_ids(tokenizer, format_prompt(prompt))
            expected = generate_ids(with_adapter, tokenizer, [ids], config.check_answer_length)[0]
            actual = generate_ids(merged, tokenizer, [ids], config.check_answer_length)[0]
            gap = 0.0 if expected == actual else logprob_gap(merged, ids, expected)
            rows.append(
                {
                    "prompt": prompt[:60],
                    "identical": expected == actual,
                    "max_logprob_gap": round(gap, 5),
                    "same": gap <= config.check_logprob_tolerance,
                    "merged_output": cut_at_stop(tokenizer.decode(actual, skip_special_tokens=True))[0][:80],
                }
            )
            advance(1)
    differing = sum(not r["same"] for r in rows)
    return {
        "all_equal": differing == 0,
        "differing": differing,
        "tolerance": config.check_logprob_tolerance,
        "prompts": rows,
    }


def logprob_gap(model: Any, prompt: list[int], answer_ids: list[int]) -> float:
    """Largest gap (nats) between the model's best token and ``answer_ids``' token, teacher-forced."""
    import torch

    ids = torch.tensor([prompt + answer_ids], device=model.device)
    with torch.inference_mode():
        logits = model(input_ids=ids, logits_to_keep=len(answer_ids) + 1).logits[0, :-1].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    chosen = logprobs.gather(-1, torch.tensor(answer_ids, device=logits.device).unsqueeze(-1)).squeeze(-1)
    return float((logprobs.max(-1).values - chosen).max())
