"""TRL 1.15 without Triton: both trainers compute through a fused LM head whose kernel is Triton.

Where Triton is missing (every CPU-only PyTorch build) the kernel is ``None`` and the first
forward fails with ``'NoneType' object has no attribute 'apply'``. The two trainers get around it
differently because they use the kernel differently:

- SFT only needs the loss: :func:`sft_trainer_class` falls back to the model's own causal-LM loss
  on the labels TRL prepared (still completion-only) wherever the kernel cannot run.
- DPO needs per-token log-probabilities from the kernel itself: :func:`ensure_logprob_kernel`
  installs the same computation with ordinary tensor ops (full logits, so only for small
  vocabularies or CPU runs) and leaves the Triton kernel alone wherever it exists.
"""

from __future__ import annotations

from typing import Any

from kositp.errors import PermanentError

# The private name in ``trl.trainer.utils`` that both trainers compute through (TRL 1.15).
KERNEL_NAME = "_ChunkedLogProbFunction"


class TrlIncompatible(PermanentError):
    """The installed TRL no longer has the private kernel slot this module works around."""


def _trl_utils() -> Any:
    """``trl.trainer.utils``, checked to still hold the kernel slot; else one error naming the version.

    Setting the attribute on a TRL that no longer reads it would leave the trainers failing (or
    computing) somewhere else, with nothing pointing here.
    """
    import trl
    from trl.trainer import utils as trl_utils

    if not hasattr(trl_utils, KERNEL_NAME):
        raise TrlIncompatible(
            f"trl {trl.__version__}: trl.trainer.utils.{KERNEL_NAME} is gone; kositp/train/trl_compat.py "
            "was written for trl 1.15: install the pinned trl or update trl_compat"
        )
    return trl_utils


class TorchChunkedLogProbs:
    """Same inputs and outputs as ``trl.kernels.ChunkedLogProbFunction.apply``; autograd does the backward."""

    @staticmethod
    def apply(
        hidden: Any,
        weight: Any,
        bias: Any,
        targets: Any,
        temperature: float,
        chunk_size: int,
        final_logit_softcapping: float | None = None,
        logit_scale: float = 1.0,
        outputs: tuple[str, ...] = ("entropy", "log_sum_sq_probs", "mean_logits", "is_top1"),
    ) -> tuple[Any, Any, Any, Any, Any]:
        import torch

        logits = torch.nn.functional.linear(
            hidden.float(), weight.float(), None if bias is None else bias.float()
        )
        logits = logits * logit_scale
        if final_logit_softcapping is not None:
            logits = final_logit_softcapping * torch.tanh(logits / final_logit_softcapping)
        logits = logits / temperature
        log_z = torch.logsumexp(logits, dim=-1)
        target_logit = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        log_probs = target_logit - log_z
        probs = torch.softmax(logits, dim=-1)
        entropy = log_z - (probs * logits).sum(-1) if "entropy" in outputs else None
        with torch.no_grad():
            log_sum_sq = torch.log((probs * probs).sum(-1)) if "log_sum_sq_probs" in outputs else None
            mean_logits = logits.mean(-1) if "mean_logits" in outputs else None
            is_top1 = logits.argmax(-1) == targets if "is_top1" in outputs else None
        return log_probs, entropy, log_sum_sq, mean_logits, is_top1


def ensure_logprob_kernel() -> bool:
    """Install the PyTorch fallback when TRL has no Triton kernel; True when it was installed."""
    trl_utils = _trl_utils()
    if getattr(trl_utils, KERNEL_NAME) is not None:
        return False
    setattr(trl_utils, KERNEL_NAME, TorchChunkedLogProbs)
    return True


def fused_loss_kernel_usable(device_type: str) -> bool:
    """Whether TRL's Triton log-prob kernel (behind ``fused_lm_head=True``) can run on this device.

    TRL 1.15 computes the SFT loss through that kernel unconditionally; without Triton (CPU-only
    torch) or on a CPU tensor it fails, so the SFT trainer falls back to the model's own loss.
    """
    return getattr(_trl_utils(), KERNEL_NAME) is not None and device_type in ("cuda", "xpu")


def sft_trainer_class():
    """TRL's ``SFTTrainer``, computing the plain causal-LM loss where the fused kernel cannot run.

    The labels TRL prepared (prompt tokens at -100) are unchanged, so the loss is the same
    completion-only loss; only TRL's extra entropy/accuracy metrics are not logged on that path.
    """
    from transformers import Trainer
    from trl import SFTTrainer

    class PortableSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if fused_loss_kernel_usable(inputs["input_ids"].device.type):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    return PortableSFTTrainer
