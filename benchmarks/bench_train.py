"""Training throughput of the SFT recipe: hf backend with and without packing; Unsloth vs hf on a GPU.

Trains LoRA for a fixed number of steps on prompt/completion pairs cut from the bundled Korean
corpus (lengths vary, as real shards do) and reports trained (non-padding) tokens per second.

    python benchmarks/bench_train.py                      # tiny model, CPU, packing off/on
    python benchmarks/bench_train.py --model 'tiny-llama:hidden=256,layers=4,intermediate=688'
    python benchmarks/bench_train.py --device cuda --compare-unsloth \\
        --model 'tiny-llama:hidden=4096,layers=2,heads=32,kv_heads=8,intermediate=14336,vocab_size=32000'

``--compare-unsloth`` needs a CUDA GPU and the unsloth package: it runs both backends at the same
settings on a randomly initialised Llama with real layer shapes (the tiny-llama spec above).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import psutil
import torch

from kositp.prompt_format import format_completion, format_prompt
from kositp.tiny_model import CORPUS, resolve_base_model
from kositp.train import common
from kositp.train.sft import SftConfig, build_model, trainer_arguments


class _Quiet:
    def info(self, message: str) -> None:
        print(f"  note: {message}")

    warning = info


def corpus_pairs(count: int) -> list[dict[str, str]]:
    lines = [line for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    pairs = []
    for i in range(count):
        prompt = " ".join(lines[(i + k) % len(lines)] for k in range(1 + i % 4))
        output = " ".join(lines[(i * 7 + k) % len(lines)] for k in range(1 + i % 3))
        pairs.append({"prompt": f"다음 글을 읽고 이어질 내용을 쓰세요. {prompt}", "output": output})
    return pairs


def measure(model_path: str, backend: str, device: str, packing: bool, steps: int, args_ns) -> dict:
    from datasets import Dataset

    config = SftConfig(
        base_model=model_path,
        backend=backend,
        device=device,
        max_seq_length=args_ns.max_seq_length,
        max_steps=steps,
        train_batch_size=args_ns.batch_size,
        gradient_accumulation_steps=1,
        logging_steps=steps,
        eval_strategy="no",
        load_best_model_at_end=False,
        checkpoint_steps=10**9,
        packing=packing,
        use_gradient_checkpointing=args_ns.gradient_checkpointing,
        load_in_4bit=args_ns.load_in_4bit,
    )
    torch.manual_seed(0)
    model, tokenizer = build_model(config, backend, device, model_path)
    pairs = corpus_pairs(steps * args_ns.batch_size * (8 if packing else 1))
    dataset = Dataset.from_dict(
        {
            "prompt": [format_prompt(p["prompt"]) for p in pairs],
            "completion": [format_completion(p["output"], tokenizer.eos_token) for p in pairs],
        }
    )
    with tempfile.TemporaryDirectory() as scratch:
        args = trainer_arguments(config, backend, device, Path(scratch), False, _Quiet())
        trainer = common.sft_trainer_class()(
            model=model, args=args, train_dataset=dataset, processing_class=tokenizer
        )
        started = time.perf_counter()
        trainer.train()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
    tokens = trainer.state.num_input_tokens_seen
    return {
        "backend": backend,
        "packing": packing,
        "steps": trainer.state.global_step,
        "tokens": tokens,
        "seconds": round(elapsed, 2),
        "tokens_per_s": round(tokens / elapsed, 1),
    }


def machine() -> dict:
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny-llama", help="tiny-llama spec, hub id or local path")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-seq-length", type=int, default=512)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--load-in-4bit", action="store_true")
    parser.add_argument(
        "--compare-unsloth", action="store_true", help="also run the unsloth backend (GPU only)"
    )
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "kositp-bench-cache"))
    ns = parser.parse_args()

    device = common.resolve_device(ns.device)
    model_path = resolve_base_model(ns.model, Path(ns.cache))
    runs = [("hf", False), ("hf", True)]
    if ns.compare_unsloth:
        common.resolve_backend("unsloth", device)
        runs += [("unsloth", False), ("unsloth", True)]
    print(json.dumps({"machine": machine(), "model": ns.model, "device": device}, ensure_ascii=False))
    results = []
    for backend, packing in runs:
        result = measure(model_path, backend, device, packing, ns.steps, ns)
        results.append(result)
        print(json.dumps(result))
    print()
    print(f"{'backend':8} {'packing':8} {'tokens':>8} {'seconds':>8} {'tokens/s':>10}")
    for r in results:
        print(
            f"{r['backend']:8} {r['packing']!s:8} {r['tokens']:>8} {r['seconds']:>8} {r['tokens_per_s']:>10}"
        )


if __name__ == "__main__":
    main()
