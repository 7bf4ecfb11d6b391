"""TRL 1.15 on any device: its trainers compute through a fused output layer whose kernel is Triton.

SFT and DPO both call the output layer only at the positions whose labels count
(``add_fused_lm_head``) and hand those hidden states to ``_ChunkedLogProbFunction``, TRL's Triton
kernel. Where Triton is missing (every CPU-only PyTorch build) that name is ``None`` and the first
forward fails; where it exists it still cannot run on CPU tensors (``device: cpu`` on a GPU
machine). :func:`ensure_logprob_kernel` puts a dispatcher in its place: TRL's kernel on CUDA and
XPU tensors, :class:`~kositp.train.logprob_kernel.TorchChunkedLogProbs` (the same computation in
plain PyTorch) everywhere else. The SFT loss, TRL's entropy and token-accuracy metrics and DPO's
log-probabilities then come from the completion positions only, on every device.
"""

from __future__ import annotations

from typing import Any

from kositp.errors import PermanentError

# The private name in ``trl.trainer.utils`` that both trainers compute through (TRL 1.15).
KERNEL_NAME = "_ChunkedLogProbFunction"
# Devices TRL's Triton kernel runs on.
TRITON_DEVICES = ("cuda", "xpu")


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


class DeviceKernel:
    """Stands in TRL's kernel slot: TRL's own kernel where it runs, the PyTorch one elsewhere."""

    def __init__(self, triton_kernel: Any) -> None:
        self.triton_kernel = triton_kernel

    def apply(self, hidden: Any, *args: Any) -> Any:
        if self.triton_kernel is not None and hidden.device.type in TRITON_DEVICES:
            return self.triton_kernel.apply(hidden, *args)
        from kositp.train.logprob_kernel import TorchChunkedLogProbs

        return TorchChunkedLogProbs.apply(hidden, *args)


def ensure_logprob_kernel() -> DeviceKernel:
    """Install the dispatcher in TRL's kernel slot (once: a second call finds it there) and return it."""
    trl_utils = _trl_utils()
    current = getattr(trl_utils, KERNEL_NAME)
    if isinstance(current, DeviceKernel):
        return current
    kernel = DeviceKernel(current)
    setattr(trl_utils, KERNEL_NAME, kernel)
    return kernel


def sft_trainer_class(backend: str = "hf") -> Any:
    """TRL's ``SFTTrainer`` for ``backend``; on ``hf`` its loss comes from the completion positions only.

    Unsloth patches the trainer and the model with its own fused loss when it is imported, so the
    dispatcher is installed for the ``hf`` backend only.
    """
    from trl import SFTTrainer

    if backend == "hf":
        ensure_logprob_kernel()
    return SFTTrainer
