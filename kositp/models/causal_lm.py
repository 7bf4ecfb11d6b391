"""One way to find, load and generate from a causal LM, for every stage that needs one.

SFT and DPO load a base model, DPO answers training prompts with it, export loads base + adapter
and the merged folder and compares their answers, evaluation scores and samples. When each did
this its own way, they disagreed on the beginning-of-sequence token, padding side and dtype, so
the model was asked questions in a form it was never trained on. Here a prompt is always
tokenized as TRL's SFT tokenizes it (the tokenizer's own special tokens, BOS where the model has
one), left-padded for batches.

Heavy libraries are imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("kositp")

Advance = Callable[[int], None]


def default_dtype(device: str) -> Any:
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_causal_lm(
    path: str | Path,
    device: str = "cpu",
    *,
    dtype: str | None = None,
    load_in_4bit: bool = False,
    gradient_checkpointing: bool = False,
) -> tuple[Any, Any]:
    """Model + tokenizer from a folder or Hub id, on ``device``.

    ``dtype`` (``"bfloat16"``, ``"float32"``, ...) defaults to 16 bits on a GPU and float32 on the
    CPU; 4-bit loading (bitsandbytes) only on a GPU, prepared for k-bit training.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    on_gpu = device.startswith("cuda")
    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype) if dtype else default_dtype(device)}
    if load_in_4bit and on_gpu:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=kwargs["dtype"]
        )
    elif load_in_4bit:
        log.info("load_in_4bit ignored on %s (4-bit loading needs a CUDA GPU)", device)
    if on_gpu:
        kwargs["device_map"] = {"": device}
    model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
    if load_in_4bit and on_gpu:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    if gradient_checkpointing:
        model.config.use_cache = False
    return model, tokenizer


def prompt_ids(tokenizer: Any, text: str) -> list[int]:
    """``text`` as the model saw prompts in training: with the tokenizer's own special tokens."""
    return tokenizer(text)["input_ids"]


def left_padded(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    """``input_ids`` and ``attention_mask`` for rows padded on the left, so that every row ends at
    the last position (rotary positions are relative: the padding does not shift what a row sees)."""
    import torch

    width = max(map(len, rows))
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for row, ids in enumerate(rows):
        input_ids[row, width - len(ids) :] = torch.tensor(list(ids), dtype=torch.long)
        mask[row, width - len(ids) :] = 1
    return input_ids, mask


def pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def generate_ids(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    *,
    batch_size: int = 8,
    temperature: float | None = None,
    top_k: int | None = None,
    advance: Advance = lambda n: None,
) -> list[list[int]]:
    """New token ids per prompt, up to and including the first EOS; greedy unless ``temperature``.

    Callers that sample seed torch themselves, so that a run is reproducible end to end.
    """
    import torch

    model.eval()
    eos, pad = tokenizer.eos_token_id, pad_id(tokenizer)
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_k": top_k}
        if temperature
        else {"do_sample": False}
    )
    out: list[list[int]] = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        input_ids, mask = left_padded(chunk, pad)
        with torch.inference_mode():
            generated = model.generate(
                input_ids=input_ids.to(model.device),
                attention_mask=mask.to(model.device),
                max_new_tokens=max_new_tokens,
                pad_token_id=pad,
                eos_token_id=eos,
                **sampling,
            )
        for row in generated[:, input_ids.shape[1] :].tolist():
            out.append(row[: row.index(eos) + 1] if eos in row else row)
        advance(len(chunk))
    return out


def generate_text(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    max_new_tokens: int,
    *,
    batch_size: int = 8,
    temperature: float | None = None,
    top_k: int | None = None,
    advance: Advance = lambda n: None,
) -> list[str]:
    """:func:`generate_ids` on text prompts, decoded without special tokens."""
    ids = generate_ids(
        model,
        tokenizer,
        [prompt_ids(tokenizer, p) for p in prompts],
        max_new_tokens,
        batch_size=batch_size,
        temperature=temperature,
        top_k=top_k,
        advance=advance,
    )
    return tokenizer.batch_decode(ids, skip_special_tokens=True)


def label_logprobs(
    model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]], labels: Sequence[Sequence[int]]
) -> list[list[float]]:
    """Per prompt, the summed log-probability of each label's tokens after it; each prompt runs once.

    The prompts run as one left-padded batch that keeps its attention cache and the logits of its
    last position (which score every label's first token); the cache is then repeated once per
    label and only the labels' remaining tokens run on it, right-padded to the longest. With two or
    three label words this is one pass over each prompt instead of one per label, and with a
    262k vocabulary the output layer runs at the label positions only.
    """
    import torch

    count, width = len(prompts), len(labels)
    input_ids, mask = left_padded(prompts, pad_id(tokenizer))
    input_ids, mask = input_ids.to(model.device), mask.to(model.device)
    with torch.inference_mode():
        out = model(input_ids=input_ids, attention_mask=mask, use_cache=True, logits_to_keep=1)
        first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
        scores = first[:, [ids[0] for ids in labels]].cpu()
        rest = max(len(ids) for ids in labels) - 1
        if rest:
            cache = out.past_key_values
            cache.batch_repeat_interleave(width)
            follow = torch.full((width, rest), pad_id(tokenizer), dtype=torch.long)
            follow_mask = torch.zeros_like(follow)
            for k, ids in enumerate(labels):
                follow[k, : len(ids) - 1] = torch.tensor(list(ids[:-1]), dtype=torch.long)
                follow_mask[k, : len(ids) - 1] = 1
            logits = model(
                input_ids=follow.repeat(count, 1).to(model.device),
                attention_mask=torch.cat(
                    [mask.repeat_interleave(width, dim=0), follow_mask.repeat(count, 1).to(model.device)], dim=1
                ),
                past_key_values=cache,
                use_cache=True,
            ).logits
            logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
            for k, ids in enumerate(labels):
                if len(ids) > 1:
                    steps = torch.arange(len(ids) - 1)
                    targets = torch.tensor(list(ids[1:]), dtype=torch.long)
                    scores[:, k] += logprobs[k::width, steps, targets].sum(-1)
    return scores.tolist()
