"""Interim shared training helpers (replaced by the SFT branch's version on merge)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def select_device(requested: str | None, reporter: Any) -> str:
    device = requested or ("cuda" if cuda_available() else "cpu")
    if device.startswith("cuda") and not cuda_available():
        raise RuntimeError(f"device {device!r} requested but no CUDA GPU is visible")
    reporter.info(f"device: {device}")
    return device


def resolve_backend(requested: str, device: str, reporter: Any) -> str:
    if requested == "unsloth" and not device.startswith("cuda"):
        raise RuntimeError("backend 'unsloth' needs a CUDA GPU; use backend 'hf' or 'auto'")
    if requested != "auto":
        return requested
    if device.startswith("cuda"):
        try:
            import unsloth  # noqa: F401
        except ImportError:
            reporter.info("backend auto -> hf (unsloth is not installed)")
            return "hf"
        reporter.info("backend auto -> unsloth")
        return "unsloth"
    reporter.info("backend auto -> hf (no CUDA GPU)")
    return "hf"


def load_model_and_tokenizer(path: str, device: str, tokenizer_path: Path | None = None, dtype: Any = None) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path or path))
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype) if dtype else AutoModelForCausalLM.from_pretrained(path)
    return model.to(device), tokenizer


def adapter_base_model(adapter_dir: Path) -> str:
    return json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))["base_model_name_or_path"]


def last_checkpoint(folder: Path) -> Path | None:
    from transformers.trainer_utils import get_last_checkpoint

    if not folder.is_dir():
        return None
    found = get_last_checkpoint(str(folder))
    return Path(found) if found else None


def plot_loss(log_path: Path, png_path: Path, title: str = "loss") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    points = [(r["step"], r["loss"]) for r in rows if "loss" in r and "step" in r]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([p[0] for p in points], [p[1] for p in points])
    ax.set_title(title)
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path


def cuda_bf16_supported() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
