"""GGUF files of the exported model, for llama.cpp and Ollama; optional."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kositp.export.config import ExportConfig


def export_gguf(adapter_dir: Path, out_dir: Path, config: ExportConfig, device: str) -> dict[str, Any]:
    """GGUF through Unsloth (it bundles the llama.cpp conversion); optional, skipped with a reason."""
    if not config.gguf_quantization:
        return {"skipped": True, "reason": "gguf_quantization is not set"}
    if not device.startswith("cuda"):
        return {"skipped": True, "reason": "GGUF export uses Unsloth, which needs a CUDA GPU"}
    try:
        from unsloth import FastLanguageModel
    except ImportError:
        return {"skipped": True, "reason": "unsloth is not installed (pip install 'kositp[gpu]')"}
    model, tokenizer = FastLanguageModel.from_pretrained(str(adapter_dir))
    model.save_pretrained_gguf(str(out_dir), tokenizer, quantization_method=config.gguf_quantization)
    return {
        "skipped": False,
        "quantization": config.gguf_quantization,
        "files": sorted(p.name for p in out_dir.glob("*.gguf")),
    }
