"""The physical limit a stage is measured against: this machine's matrix-multiply rate and a model's
multiply-adds per token, so a benchmark can print the share of the machine a stage reaches.

Absolute times move from run to run on a shared machine; the share of the measured matrix rate a
stage reaches moves much less, and it says how much is left to gain: a stage at 60% of the GEMM
rate has little to win from kernels, one at 10% is wasting work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


def matmul_gflops(
    device: str = "cpu", size: int = 2048, seconds: float = 2.0, dtype: str = "float32"
) -> float:
    """GEMM rate of ``size``-square ``dtype`` products on torch's current thread count, best of a few."""
    import torch

    a = torch.randn(size, size, device=device, dtype=getattr(torch, dtype))
    b = torch.randn(size, size, device=device, dtype=getattr(torch, dtype))
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        torch.mm(a, b)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = max(best, 2 * size**3 / (time.perf_counter() - started) / 1e9)
    return best


@dataclass(frozen=True)
class ModelMacs:
    """Multiply-adds of one causal LM: per token through the body, per scored position through the
    output layer, and per (query, key) pair of attention."""

    body_per_token: int
    head_per_position: int
    attention_per_pair: int

    def forward(self, tokens: int, scored_positions: int, attention_pairs: int) -> int:
        return (
            self.body_per_token * tokens
            + self.head_per_position * scored_positions
            + self.attention_per_pair * attention_pairs
        )


def model_macs(model: Any) -> ModelMacs:
    """Counted from the model's own modules: every linear layer of the decoder, the output layer,
    and attention's two products (scores and values) per head per layer."""
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = base.get_output_embeddings()
    body = sum(
        module.in_features * module.out_features
        for name, module in base.named_modules()
        if isinstance(module, torch.nn.Linear) and module is not head and "lora_" not in name
    )
    config = base.config.get_text_config()
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    attention = 2 * config.num_hidden_layers * config.num_attention_heads * head_dim
    return ModelMacs(body, head.in_features * head.out_features, attention)


def causal_pairs(lengths: list[int]) -> int:
    """(query, key) pairs causal attention computes over sequences of these lengths."""
    return sum(n * (n + 1) // 2 for n in lengths)
