"""Pieces every training stage shares: device and backend choice, loading, resume, loss plots.

Written for the DPO and export stages; the SFT stage owns the same concerns, so when both land
the lead keeps one copy of this module (the names here are what ``dpo.py`` and ``export.py`` call).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kositp.reporting import Reporter


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def cuda_bf16_supported() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def select_device(requested: str | None, reporter: Reporter) -> str:
    """The profile's device, else the first GPU the worker's environment exposes, else the CPU.

    Pinning to a card is the worker's job (its ``CUDA_VISIBLE_DEVICES``); nothing is hard-coded here.
    """
    device = requested or ("cuda" if cuda_available() else "cpu")
    if device.startswith("cuda") and not cuda_available():
        raise RuntimeError(f"device {device!r} was requested but no CUDA GPU is visible to this worker")
    reporter.info(f"device: {device}")
    return device


def resolve_backend(requested: str, device: str, reporter: Reporter) -> str:
    """``hf`` or ``unsloth``; ``auto`` picks Unsloth only on a CUDA device with the package installed."""
    if requested == "unsloth" and not device.startswith("cuda"):
        raise RuntimeError(f"backend 'unsloth' needs a CUDA GPU (device is {device!r}); use backend 'hf' or 'auto'")
    if requested != "auto":
        return requested
    if not device.startswith("cuda"):
        reporter.info("backend auto -> hf (no CUDA GPU)")
        return "hf"
    try:
        import unsloth  # noqa: F401
    except ImportError:
        reporter.info("backend auto -> hf (unsloth is not installed; pip install 'kositp[gpu]')")
        return "hf"
    reporter.info("backend auto -> unsloth (CUDA GPU and package present)")
    return "unsloth"


def load_model_and_tokenizer(
    path: str, device: str, tokenizer_path: Path | None = None, dtype: Any = None
) -> tuple[Any, Any]:
    """A causal LM on ``device`` and its tokenizer (from ``tokenizer_path`` when an adapter carries one)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path or path))
    model = AutoModelForCausalLM.from_pretrained(path, **({"dtype": dtype} if dtype is not None else {}))
    return model.to(device), tokenizer


def adapter_base_model(adapter_dir: Path) -> str:
    """The base model a saved PEFT adapter was trained on (its ``adapter_config.json`` names it)."""
    config_path = adapter_dir / "adapter_config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{adapter_dir}: no adapter_config.json; is this a PEFT adapter folder?")
    return json.loads(config_path.read_text(encoding="utf-8"))["base_model_name_or_path"]


def last_checkpoint(folder: Path) -> Path | None:
    """The newest ``checkpoint-N`` under ``folder``, or None when training has not saved one yet."""
    from transformers.trainer_utils import get_last_checkpoint

    if not folder.is_dir():
        return None
    found = get_last_checkpoint(str(folder))
    return Path(found) if found else None


def plot_loss(log_path: Path, png_path: Path, title: str = "loss") -> Path:
    """Loss and learning rate per step from a ``training_log.jsonl`` (one trainer log entry a line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    logged = [r for r in rows if "loss" in r and "step" in r]
    fig, loss_axis = plt.subplots(figsize=(6, 3.5))
    loss_axis.plot([r["step"] for r in logged], [r["loss"] for r in logged], color="tab:blue")
    loss_axis.set_xlabel("step")
    loss_axis.set_ylabel("loss", color="tab:blue")
    rate_axis = loss_axis.twinx()
    rate_axis.plot([r["step"] for r in logged], [r.get("learning_rate", float("nan")) for r in logged], color="tab:orange")
    rate_axis.set_ylabel("learning rate", color="tab:orange")
    loss_axis.set_title(title)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path
