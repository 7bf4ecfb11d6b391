"""A plain-PyTorch stand-in for TRL's Triton log-probability kernel, so DPO runs without a GPU.

TRL 1.15's ``DPOTrainer`` always computes per-token log-probabilities through a fused LM head
whose kernel is written in Triton; where Triton is missing (every CPU-only PyTorch build) the
kernel is ``None`` and the first forward fails with ``'NoneType' object has no attribute
'apply'``. :func:`ensure_logprob_kernel` installs the same computation with ordinary tensor ops
(full logits, so only for small vocabularies or CPU runs) and leaves the Triton kernel alone
wherever it exists.
"""

from __future__ import annotations

from typing import Any


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
    from trl.trainer import utils as trl_utils

    if getattr(trl_utils, "_ChunkedLogProbFunction", None) is not None:
        return False
    trl_utils._ChunkedLogProbFunction = TorchChunkedLogProbs
    return True
