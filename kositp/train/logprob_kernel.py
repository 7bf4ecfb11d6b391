"""Per-token log-probabilities through the output layer in plain PyTorch, a few positions at a time.

TRL 1.15's SFT and DPO trainers call their output layer only at the positions whose labels count
(``add_fused_lm_head``) and hand those hidden states to a Triton kernel, which a CPU-only PyTorch
does not have. :class:`TorchChunkedLogProbs` is the same computation for any device: the logits of
``TOKEN_CHUNK`` positions at a time, reduced to the statistics the trainers read, and recomputed in
the backward pass instead of kept. With Gemma's 262,144-word vocabulary a kept logit row costs 1 MiB
in float32, so keeping them would make memory grow with the number of completion tokens per batch;
recomputing costs one more output-layer product per position, and the memory is one chunk's.

Imported only by :mod:`kositp.train.trl_compat` when a trainer is built (it imports torch).
"""

from __future__ import annotations

from typing import Any

import torch

# Positions per output-layer product: 128 x 262,144 float32 logits are 128 MiB (a few such
# buffers are alive at once), and at 128 rows the product still runs at full matrix speed.
TOKEN_CHUNK = 128
OPTIONAL_OUTPUTS = ("entropy", "log_sum_sq_probs", "mean_logits", "is_top1")


def _chunk_logits(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    logit_scale: float,
    softcap: float | None,
    temperature: float,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The logits the model would produce (scaled, soft-capped, tempered) and the soft-cap's tanh."""
    logits = hidden @ weight.t()
    if bias is not None:
        logits += bias
    if logit_scale != 1.0:
        logits *= logit_scale
    capped = None
    if softcap is not None:
        capped = torch.tanh(logits / softcap)
        logits = capped * softcap
    if temperature != 1.0:
        logits /= temperature
    return logits, capped


class TorchChunkedLogProbs(torch.autograd.Function):
    """Same inputs and outputs as ``trl.kernels.ChunkedLogProbFunction.apply``, in float32 on any device.

    Gradients flow to the hidden states, the output layer's weight and bias through ``log_probs``
    and ``entropy``; the other outputs are statistics for logging.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        targets: torch.Tensor,
        temperature: float,
        chunk_size: int,
        final_logit_softcapping: float | None = None,
        logit_scale: float = 1.0,
        outputs: tuple[str, ...] = OPTIONAL_OUTPUTS,
    ) -> tuple[Any, Any, Any, Any, Any]:
        ctx.set_materialize_grads(False)  # entropy is usually logged only: no zero gradient for it
        count = hidden.shape[0]
        weight32 = weight.float()
        bias32 = None if bias is None else bias.float()
        log_z = hidden.new_empty(count, dtype=torch.float32)
        target_logit = torch.empty_like(log_z)
        entropy = torch.empty_like(log_z) if "entropy" in outputs else None
        log_sum_sq = torch.empty_like(log_z) if "log_sum_sq_probs" in outputs else None
        mean_logits = torch.empty_like(log_z) if "mean_logits" in outputs else None
        is_top1 = torch.empty(count, dtype=torch.bool, device=hidden.device) if "is_top1" in outputs else None
        for start in range(0, count, TOKEN_CHUNK):
            end = min(start + TOKEN_CHUNK, count)
            logits, _ = _chunk_logits(
                hidden[start:end].float(), weight32, bias32, logit_scale, final_logit_softcapping, temperature
            )
            log_z[start:end] = torch.logsumexp(logits, dim=-1)
            target_logit[start:end] = logits.gather(-1, targets[start:end, None]).squeeze(-1)
            if entropy is not None or log_sum_sq is not None:
                probs = torch.exp(logits - log_z[start:end, None])
                if entropy is not None:
                    entropy[start:end] = log_z[start:end] - (probs * logits).sum(-1)
                if log_sum_sq is not None:
                    log_sum_sq[start:end] = torch.log((probs * probs).sum(-1))
            if mean_logits is not None:
                mean_logits[start:end] = logits.mean(-1)
            if is_top1 is not None:
                is_top1[start:end] = logits.argmax(-1) == targets[start:end]
        log_probs = target_logit - log_z
        ctx.save_for_backward(hidden, weight, bias, targets, log_z, log_z if entropy is None else entropy)
        ctx.settings = (temperature, final_logit_softcapping, logit_scale, entropy is not None)
        ctx.mark_non_differentiable(*(x for x in (log_sum_sq, mean_logits, is_top1) if x is not None))
        return log_probs, entropy, log_sum_sq, mean_logits, is_top1

    @staticmethod
    def backward(ctx: Any, grad_log_probs: Any, grad_entropy: Any, *_: Any) -> tuple[Any, ...]:  # type: ignore[override]
        hidden, weight, bias, targets, log_z, entropy = ctx.saved_tensors
        temperature, softcap, logit_scale, has_entropy = ctx.settings
        if not has_entropy:
            grad_entropy = None
        wants_hidden, wants_weight, wants_bias = ctx.needs_input_grad[:3]
        weight32 = weight.float()
        bias32 = None if bias is None else bias.float()
        grad_hidden = torch.zeros(hidden.shape, dtype=torch.float32, device=hidden.device) if wants_hidden else None
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if wants_weight else None
        grad_bias = torch.zeros(bias.shape, dtype=torch.float32, device=bias.device) if wants_bias else None
        for start in range(0, hidden.shape[0], TOKEN_CHUNK):
            end = min(start + TOKEN_CHUNK, hidden.shape[0])
            chunk = hidden[start:end].float()
            logits, capped = _chunk_logits(chunk, weight32, bias32, logit_scale, softcap, temperature)
            probs = torch.exp(logits - log_z[start:end, None])
            # d/dlogits: log p(target) gives onehot - p; entropy gives -p * (logit - E[logit])
            grad = torch.zeros_like(logits)
            if grad_log_probs is not None:
                g = grad_log_probs[start:end].float()
                grad -= probs * g[:, None]
                grad.scatter_add_(-1, targets[start:end, None], g[:, None])
            if grad_entropy is not None:
                expected = log_z[start:end] - entropy[start:end]
                grad -= probs * (logits - expected[:, None]) * grad_entropy[start:end].float()[:, None]
            if temperature != 1.0:
                grad /= temperature
            if capped is not None:
                grad *= 1 - capped * capped
            if logit_scale != 1.0:
                grad *= logit_scale
            if grad_hidden is not None:
                grad_hidden[start:end] = grad @ weight32
            if grad_weight is not None:
                grad_weight += grad.t() @ chunk
            if grad_bias is not None:
                grad_bias += grad.sum(0)
        return (
            None if grad_hidden is None else grad_hidden.to(hidden.dtype),
            None if grad_weight is None else grad_weight.to(weight.dtype),
            None if grad_bias is None else grad_bias.to(bias.dtype),
            None,
            None,
            None,
            None,
            None,
            None,
        )
