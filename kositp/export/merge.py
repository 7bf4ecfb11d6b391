"""The adapter merged into its base as a folder a server loads, and the adapter alone beside it;
both tokenizers carry the seed format as their chat template."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from kositp.models.causal_lm import load_causal_lm
from kositp.models.prompt_format import CHAT_TEMPLATE, STOP_MARKER

EXPORT_INFO = "kositp_export.json"


def save_merged(adapter_dir: Path, merged_dir: Path, dtype: str, base: str) -> dict[str, Any]:
    """Merged weights (safetensors), tokenizer with the seed chat template, stop-aware generation config.

    The generation config carries no ``stop_strings``: transformers then refuses ``generate``
    without a tokenizer argument, which breaks plain reloads. The stop marker goes into the EOS
    ids when it is one token, and always into ``kositp_export.json`` for servers to pass as ``stop``.
    The merge itself runs in float32 on the CPU and is rounded to ``dtype`` once, at the end.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoTokenizer, GenerationConfig

    base_model, _ = load_causal_lm(base, "cpu")
    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
    merged = PeftModel.from_pretrained(base_model, str(adapter_dir)).merge_and_unload()
    merged = merged.to(getattr(torch, dtype))
    stop_ids = stop_token_ids(tokenizer)
    merged.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=stop_ids,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    merged.save_pretrained(merged_dir)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(merged_dir)
    info = {
        "prompt_format": "seed",
        "stop": [STOP_MARKER],
        "eos_token_ids": stop_ids,
        "dtype": dtype,
        "base_model": base,
    }
    (merged_dir / EXPORT_INFO).write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
    return info


def stop_token_ids(tokenizer: Any) -> list[int]:
    """EOS, plus the stop marker when it is a single token (so vLLM stops on it without stop strings)."""
    marker = tokenizer.encode(STOP_MARKER, add_special_tokens=False)
    return [tokenizer.eos_token_id, *marker] if len(marker) == 1 else [tokenizer.eos_token_id]


def save_adapter(adapter_dir: Path, out_dir: Path) -> None:
    """The adapter alone, with the chat template in its tokenizer as in the merged model."""
    from transformers import AutoTokenizer

    shutil.copytree(adapter_dir, out_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(out_dir)
