"""Pieces every training stage shares: device and backend choice, loading the base model through
Unsloth (:mod:`kositp.models.causal_lm` loads it everywhere else), resuming from checkpoints, the
training log and its loss curve.

SFT and DPO differ in their data and trainer; everything around the trainer (which card, which
backend, where checkpoints live, what gets logged) must behave identically, so it lives here.
Heavy libraries (torch, transformers, peft, unsloth) are imported inside the functions that need
them: importing this module costs nothing and never touches a GPU.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kositp.artifacts import Artifact, ArtifactError, ArtifactStore
from kositp.models.refs import ModelRef

log = logging.getLogger("kositp")

CHECKPOINT_DIR = "checkpoints"
# Scratch space in a staging folder (Arrow files of the shards, a tiny base model); never published.
SCRATCH_DIR = "_cache"
TRAINING_LOG = "training_log.jsonl"
LOSS_PLOT = "loss.png"
ADAPTER_DIR = "adapter"
BACKENDS = ("auto", "unsloth", "hf")
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


class BackendError(RuntimeError):
    """The requested training backend cannot run on this machine."""


@dataclass(frozen=True)
class BackendChoice:
    name: str
    reason: str


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def unsloth_importable() -> bool:
    """Whether the package is installed, checked without importing it (importing patches torch)."""
    import importlib.util

    return importlib.util.find_spec("unsloth") is not None


def resolve_device(requested: str = "auto") -> str:
    """``auto|cpu|cuda|cuda:N`` -> a torch device string.

    ``auto`` takes the worker's environment as it is: the first visible CUDA device (whatever
    ``CUDA_VISIBLE_DEVICES`` the worker was started with) or the CPU. Nothing here sets
    ``CUDA_VISIBLE_DEVICES``; pinning a card is the worker's (or the profile's) decision.
    """
    requested = (requested or "auto").strip().lower()
    if requested == "auto":
        return "cuda:0" if cuda_available() else "cpu"
    if requested == "cpu":
        return "cpu"
    if requested == "cuda" or re.fullmatch(r"cuda:\d+", requested):
        if not cuda_available():
            raise BackendError(f"device {requested!r} requested but no CUDA GPU is visible to this worker")
        import torch

        index = int(requested.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise BackendError(
                f"device {requested!r} requested but only {torch.cuda.device_count()} GPU(s) are visible"
            )
        return f"cuda:{index}"
    raise BackendError(f"unknown device {requested!r}; use auto, cpu, cuda or cuda:N")


def resolve_backend(requested: str, device: str) -> BackendChoice:
    """Pick the training backend; ``auto`` says why it chose what it chose."""
    if requested not in BACKENDS:
        raise BackendError(f"unknown backend {requested!r}; use one of {', '.join(BACKENDS)}")
    on_gpu = device.startswith("cuda")
    if requested == "hf":
        return BackendChoice("hf", "backend forced to hf by the profile")
    if requested == "unsloth":
        if not on_gpu:
            raise BackendError(
                f"backend 'unsloth' needs a CUDA GPU but the device is {device!r}"
                " (no GPU visible, or device: cpu in the profile); use backend: hf or auto"
            )
        if not unsloth_importable():
            raise BackendError(
                "backend 'unsloth' requested but the unsloth package is not installed (pip install unsloth)"
            )
        return BackendChoice("unsloth", "backend forced to unsloth by the profile")
    if not on_gpu:
        return BackendChoice("hf", f"auto picked hf: no CUDA GPU on device {device!r}")
    if not unsloth_importable():
        return BackendChoice("hf", "auto picked hf: a CUDA GPU is present but unsloth is not installed")
    return BackendChoice("unsloth", "auto picked unsloth: a CUDA GPU is present and unsloth is installed")


def import_unsloth():
    """The unsloth module, imported on demand (never at module import: it patches torch on load)."""
    try:
        import unsloth
    except ImportError as exc:
        raise BackendError("backend 'unsloth' needs the unsloth package (pip install unsloth)") from exc
    return unsloth


def load_unsloth_model(model_path: str, max_seq_length: int, load_in_4bit: bool):
    """Base model + tokenizer through Unsloth (GPU only)."""
    FastLanguageModel = import_unsloth().FastLanguageModel
    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=model_path, max_seq_length=max_seq_length, dtype=None, load_in_4bit=load_in_4bit
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def last_checkpoint(out_dir: Path) -> Path | None:
    """The newest complete ``checkpoints/checkpoint-N`` in a (resumed) staging folder."""
    folder = out_dir / CHECKPOINT_DIR
    if not folder.is_dir():
        return None
    found = []
    for child in folder.iterdir():
        match = _CHECKPOINT_RE.match(child.name)
        if match and child.is_dir() and (child / "trainer_state.json").is_file():
            found.append((int(match.group(1)), child))
    return max(found)[1] if found else None


def checkpoint_state(checkpoint: Path) -> dict[str, Any]:
    """The trainer state saved with a checkpoint (``global_step``, ``num_input_tokens_seen``, ...)."""
    return json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))


def checkpoint_step(checkpoint: Path) -> int:
    return int(checkpoint_state(checkpoint).get("global_step", 0))


def read_training_log(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not a JSON line ({exc})") from exc
    return rows


def make_log_callback(log_path: Path, reporter: Any | None = None, total_steps: int | None = None):
    """A ``TrainerCallback`` appending every ``on_log`` record (step, loss, lr, tokens/s) as JSON.

    The file is appended to, so a resumed run continues the same curve; tokens/s is measured
    from the trainer's ``num_input_tokens_seen`` between consecutive log calls.
    """
    from transformers import TrainerCallback

    class TrainingLogCallback(TrainerCallback):
        def __init__(self) -> None:
            self._last: tuple[float, int] | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            self._last = (time.perf_counter(), int(getattr(state, "num_input_tokens_seen", 0) or 0))
            if reporter is not None:
                reporter.info(f"training from step {state.global_step} of {state.max_steps}")

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs:
                return
            now, tokens = time.perf_counter(), int(getattr(state, "num_input_tokens_seen", 0) or 0)
            row: dict[str, Any] = {"step": state.global_step, "epoch": state.epoch}
            row.update({k: v for k, v in logs.items() if isinstance(v, (int, float, str))})
            if self._last is not None and now > self._last[0] and tokens > self._last[1]:
                row["tokens_per_s"] = (tokens - self._last[1]) / (now - self._last[0])
            row["tokens_seen"] = tokens
            self._last = (now, tokens)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    return TrainingLogCallback()


def plot_loss(rows: list[dict[str, Any]], path: Path, title: str = "training") -> Path | None:
    """Loss (train and eval) and learning rate against step, as a PNG; None when nothing was logged."""
    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    evals = [(r["step"], r["eval_loss"]) for r in rows if "eval_loss" in r]
    rates = [(r["step"], r["learning_rate"]) for r in rows if "learning_rate" in r]
    if not (train or evals):
        return None
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, loss_axis = plt.subplots(figsize=(7, 4))
    if train:
        loss_axis.plot(*zip(*train), label="train loss", color="tab:blue")
    if evals:
        loss_axis.plot(*zip(*evals), label="eval loss", color="tab:orange", marker="o")
    loss_axis.set_xlabel("step")
    loss_axis.set_ylabel("loss")
    if rates:
        lr_axis = loss_axis.twinx()
        lr_axis.plot(*zip(*rates), label="learning rate", color="tab:gray", linestyle="--")
        lr_axis.set_ylabel("learning rate")
    loss_axis.legend(loc="upper right")
    loss_axis.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def base_model_of(trained: Artifact, cache_dir: Path) -> str:
    """The loadable base model an adapter was trained on: the reference its SFT artifact's manifest
    names (``sft.base_model``), resolved in the run's model cache. DPO and export read it here, from
    the lineage, not from the path PEFT wrote into ``adapter_config.json``."""
    sft = trained
    if trained.stage != "sft":
        sft = ArtifactStore(trained.path.parent.parent).open("sft", trained.manifest["inputs"]["sft"], verify=False)
    reference = sft.manifest.get("params", {}).get("base_model")
    if not reference:
        raise ArtifactError(f"sft/{sft.version}: its manifest names no base_model; it cannot be built upon")
    return ModelRef.parse(reference).resolve(cache_dir)


def trim_training_log(path: Path, step: int) -> None:
    """Drop log rows past ``step``: a resumed run replays them from the checkpoint."""
    rows = [r for r in read_training_log(path) if r.get("step", 0) <= step]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def full_run_train_loss(trainer_loss: float, global_step: int, resumed_step: int, rows: list[dict[str, Any]]) -> float:
    """The mean training loss over every step of the run, a resumed one included.

    The trainer divides the loss it accumulated itself by the global step, so a run resumed at
    step k reports (loss of steps k+1..n) / n: 4.46 where the whole run had 6.69. The steps up to
    k are in the training log, one ``loss`` per logging interval (that interval's mean); steps
    after k's last logged one and before the checkpoint were never logged and are left out of
    the mean rather than counted as zero.
    """
    if not resumed_step:
        return trainer_loss
    before = {r["step"]: r["loss"] for r in rows if "loss" in r and 0 < r.get("step", 0) <= resumed_step}
    total, last = 0.0, 0
    for step in sorted(before):
        total, last = total + before[step] * (step - last), step
    covered = last + global_step - resumed_step
    return (trainer_loss * global_step + total) / covered if covered else trainer_loss


def make_progress_callback(reporter: Any):
    """A ``TrainerCallback`` driving ``reporter.progress`` (a tqdm bar or a Prefect progress artifact)."""
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        def __init__(self) -> None:
            self._bar: Any = None
            self._advance: Any = None

        def on_train_begin(self, args, state, control, **kwargs):
            self._bar = reporter.progress("training steps", state.max_steps)
            self._advance = self._bar.__enter__()
            if state.global_step:
                self._advance(state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            if self._advance is not None:
                self._advance(1)

        def on_train_end(self, args, state, control, **kwargs):
            if self._bar is not None:
                self._bar.__exit__(None, None, None)
                self._bar = self._advance = None

    return ProgressCallback()
