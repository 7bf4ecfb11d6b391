"""The PyTorch stand-in for TRL's private log-prob kernel, its dispatch, and the error when TRL moves it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kositp.train import logprob_kernel, trl_compat
from kositp.train.logprob_kernel import TorchChunkedLogProbs
from kositp.train.trl_compat import DeviceKernel, TrlIncompatible, ensure_logprob_kernel

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


def _leaves(generator):
    hidden = torch.randn(12, 16, generator=generator, dtype=torch.float64) * 3
    weight = torch.randn(50, 16, generator=generator, dtype=torch.float64)
    bias = torch.randn(50, generator=generator, dtype=torch.float64)
    return [t.requires_grad_() for t in (hidden, weight, bias)]


@pytest.mark.parametrize(("temperature", "softcap", "scale"), [(1.0, None, 1.0), (0.7, 30.0, 0.5)])
def test_outputs_and_gradients_match_log_softmax_gather_over_several_chunks(monkeypatch, temperature, softcap, scale):
    monkeypatch.setattr(logprob_kernel, "TOKEN_CHUNK", 5)  # 12 positions: chunks of 5, 5 and 2
    targets = torch.randint(0, 50, (12,), generator=torch.Generator().manual_seed(3))
    ours, theirs = _leaves(torch.Generator().manual_seed(7)), _leaves(torch.Generator().manual_seed(7))
    log_probs, entropy, log_sum_sq, mean_logits, is_top1 = TorchChunkedLogProbs.apply(
        *ours, targets, temperature, 4, softcap, scale
    )
    expected, expected_entropy, expected_top1 = _reference(*theirs, targets, temperature, softcap, scale)

    torch.testing.assert_close(log_probs.double(), expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(entropy.double(), expected_entropy, rtol=1e-4, atol=1e-4)
    assert torch.equal(is_top1, expected_top1) and mean_logits.shape == log_sum_sq.shape == (12,)
    # a loss through both differentiable outputs, as an entropy-regularised trainer would build
    (log_probs.sum() + 0.3 * entropy.sum()).backward()
    (expected.sum() + 0.3 * expected_entropy.sum()).backward()
    for name, mine, reference in zip(("hidden", "weight", "bias"), ours, theirs):
        torch.testing.assert_close(mine.grad, reference.grad, rtol=1e-4, atol=1e-5, msg=lambda m, n=name: f"{n}: {m}")


def test_cpu_tensors_take_the_pytorch_kernel_and_gpu_tensors_trls():
    calls = []
    triton = SimpleNamespace(apply=lambda hidden, *args: calls.append(hidden.device.type) or "triton")
    kernel = DeviceKernel(triton)
    assert kernel.apply(SimpleNamespace(device=torch.device("cuda", 0)), None) == "triton"
    hidden = torch.randn(3, 4)
    log_probs, *_ = kernel.apply(hidden, torch.randn(6, 4), None, torch.tensor([0, 1, 5]), 1.0, 4)
    assert calls == ["cuda"] and log_probs.shape == (3,)
    assert DeviceKernel(None).apply(hidden, torch.randn(6, 4), None, torch.tensor([0, 1, 5]), 1.0, 4)[0].shape == (3,)


def test_the_dispatcher_is_installed_once_around_trls_own_kernel(monkeypatch):
    from trl.trainer import utils as trl_utils

    sentinel = object()
    monkeypatch.setattr(trl_utils, trl_compat.KERNEL_NAME, sentinel)
    installed = ensure_logprob_kernel()
    assert getattr(trl_utils, trl_compat.KERNEL_NAME) is installed and installed.triton_kernel is sentinel
    assert ensure_logprob_kernel() is installed
    monkeypatch.setattr(trl_utils, trl_compat.KERNEL_NAME, None)
    assert ensure_logprob_kernel().triton_kernel is None


def test_a_trl_without_the_private_name_fails_with_its_version(monkeypatch):
    import trl
    from trl.trainer import utils as trl_utils

    monkeypatch.delattr(trl_utils, trl_compat.KERNEL_NAME)
    with pytest.raises(TrlIncompatible, match=f"trl {trl.__version__}: .*{trl_compat.KERNEL_NAME} is gone"):
        ensure_logprob_kernel()
    assert not hasattr(trl_utils, trl_compat.KERNEL_NAME)
