"""The PyTorch stand-in for TRL's private log-prob kernel, and the error when TRL moves it."""

from __future__ import annotations

import pytest

from kositp.train import trl_compat
from kositp.train.trl_compat import TorchChunkedLogProbs, TrlIncompatible, ensure_logprob_kernel

torch = pytest.importorskip("torch")


def _reference(hidden, weight, bias, targets, temperature, softcap, scale):
    """What the kernel must return, written the plain way: full logits, log_softmax, gather."""
    logits = torch.nn.functional.linear(hidden, weight, bias) * scale
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    log_probs = torch.log_softmax(logits / temperature, dim=-1)
    per_token = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    entropy = -(log_probs.exp() * log_probs).sum(-1)
    return per_token, entropy, (logits / temperature).argmax(-1) == targets


@pytest.mark.parametrize(("temperature", "softcap", "scale"), [(1.0, None, 1.0), (0.7, 30.0, 0.5)])
def test_log_probs_entropy_and_gradient_match_log_softmax_gather(temperature, softcap, scale):
    generator = torch.Generator().manual_seed(7)
    hidden = torch.randn(12, 16, generator=generator, dtype=torch.float64) * 3
    weight = torch.randn(50, 16, generator=generator, dtype=torch.float64)
    bias = torch.randn(50, generator=generator, dtype=torch.float64)
    targets = torch.randint(0, 50, (12,), generator=generator)

    ours = hidden.clone().requires_grad_()
    log_probs, entropy, _, mean_logits, is_top1 = TorchChunkedLogProbs.apply(
        ours, weight, bias, targets, temperature, 4, softcap, scale
    )
    theirs = hidden.clone().requires_grad_()
    expected, expected_entropy, expected_top1 = _reference(theirs, weight, bias, targets, temperature, softcap, scale)

    torch.testing.assert_close(log_probs.double(), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(entropy.double(), expected_entropy, rtol=1e-5, atol=1e-5)
    assert torch.equal(is_top1, expected_top1) and mean_logits.shape == (12,)
    log_probs.sum().backward()
    expected.sum().backward()
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-4, atol=1e-5)


def test_installed_only_where_trl_has_no_kernel(monkeypatch):
    from trl.trainer import utils as trl_utils

    monkeypatch.setattr(trl_utils, trl_compat.KERNEL_NAME, None)
    assert ensure_logprob_kernel() is True
    assert getattr(trl_utils, trl_compat.KERNEL_NAME) is TorchChunkedLogProbs
    sentinel = object()
    monkeypatch.setattr(trl_utils, trl_compat.KERNEL_NAME, sentinel)
    assert ensure_logprob_kernel() is False
    assert getattr(trl_utils, trl_compat.KERNEL_NAME) is sentinel


def test_a_trl_without_the_private_name_fails_with_its_version(monkeypatch):
    import trl
    from trl.trainer import utils as trl_utils

    monkeypatch.delattr(trl_utils, trl_compat.KERNEL_NAME)
    with pytest.raises(TrlIncompatible, match=f"trl {trl.__version__}: .*{trl_compat.KERNEL_NAME} is gone"):
        ensure_logprob_kernel()
    with pytest.raises(TrlIncompatible):
        trl_compat.fused_loss_kernel_usable("cuda")
    assert not hasattr(trl_utils, trl_compat.KERNEL_NAME)
