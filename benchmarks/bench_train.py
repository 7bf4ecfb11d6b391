"""Training throughput of the SFT recipe, and the share of this machine's matrix rate it reaches.

    python benchmarks/bench_train.py --profile gemma-270m     # the profile's model, settings and shards
    python benchmarks/bench_train.py                           # tiny model, CPU, packing off/on
    python benchmarks/bench_train.py --device cuda --compare-unsloth \\
        --model 'tiny-llama:hidden=4096,layers=2,heads=32,kv_heads=8,intermediate=14336,vocab_size=32000'

With ``--profile`` the LoRA settings, sequence length, batch size and base model are the profile's
``sft`` section and the examples are the train split of the profile's latest ``reformat`` artifact
(build it with ``kositp run --profile NAME --until reformat``); otherwise prompt/completion pairs
cut from the bundled Korean corpus. Each run trains ``--steps`` steps after one warm-up step and
prints trained (non-padding) tokens/s, the model's useful multiply-adds per step (body forward and
input gradients at every token, the output layer at the completion tokens only, attention), the
measured float32 matrix-multiply rate on the same thread count, and the share of it reached.
``--compare-unsloth`` needs a CUDA GPU and the unsloth package.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from compute import causal_pairs, matmul_gflops, model_macs
from machine import describe

from kositp.models.prompt_format import format_completion, format_prompt
from kositp.models.refs import ModelRef
from kositp.models.tiny import CORPUS
from kositp.sft.config import SftConfig
from kositp.sft.recipe import build_model, trainer_arguments
from kositp.train import common
from kositp.train.trl_compat import sft_trainer_class


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


def profile_pairs(profile: str, count: int, cache: Path) -> list[dict[str, str]]:
    """The train split of the profile's latest reformat artifact, cycled to ``count`` pairs."""
    from kositp.artifacts import ArtifactStore
    from kositp.config import load_profile
    from kositp.train.shard_data import load_split

    loaded = load_profile(profile)
    store = ArtifactStore(loaded.root)
    reformat = store.open("reformat", store.latest("reformat", loaded.name), verify=False)
    rows = load_split(reformat.path, "train", cache / "datasets").dataset
    return [{"prompt": rows[i % len(rows)]["prompt"], "output": rows[i % len(rows)]["output"]} for i in range(count)]


def sft_settings(ns: argparse.Namespace, packing: bool, backend: str) -> SftConfig:
    """The profile's sft section (or the command line's), cut down to a fixed number of steps."""
    fixed = {
        "backend": backend,
        "device": ns.device,
        "max_steps": ns.steps + 1,
        "gradient_accumulation_steps": 1,
        "logging_steps": ns.steps + 1,
        "eval_strategy": "no",
        "load_best_model_at_end": False,
        "checkpoint_steps": 10**9,
        "packing": packing,
    }
    if ns.profile:
        from kositp.config import load_profile

        return SftConfig(**{**load_profile(ns.profile).section("sft"), **fixed})
    return SftConfig(
        base_model=ns.model,
        max_seq_length=ns.max_seq_length,
        train_batch_size=ns.batch_size,
        use_gradient_checkpointing=ns.gradient_checkpointing,
        load_in_4bit=ns.load_in_4bit,
        **fixed,
    )


class StepClock:
    """Wall time and trained tokens from the end of the first (warm-up) step to the end of the last."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        clock = self

        class Callback(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                if state.global_step == 1:
                    clock.start, clock.start_tokens = time.perf_counter(), state.num_input_tokens_seen

        self.callback = Callback()
        self.start = 0.0
        self.start_tokens = 0


def measure(
    model_path: str, config: SftConfig, pairs: list[dict[str, str]], gflops: float, trainer_class: Any = None
) -> dict:
    """Train ``config.max_steps`` steps; the first is a warm-up and is not timed. ``trainer_class``
    replaces the pipeline's trainer (``sft_trainer_class(config.backend)``) for a comparison."""
    torch.manual_seed(0)
    model, tokenizer = build_model(config, config.backend, config.device, model_path)
    prompts = [format_prompt(p["prompt"]) for p in pairs]
    completions = [format_completion(p["output"], tokenizer.eos_token) for p in pairs]
    from datasets import Dataset

    dataset = Dataset.from_dict({"prompt": prompts, "completion": completions})
    clock = StepClock()
    with tempfile.TemporaryDirectory() as scratch:
        args = trainer_arguments(config, config.backend, config.device, Path(scratch), False, _Quiet())
        trainer = (trainer_class or sft_trainer_class(config.backend))(
            model=model, args=args, train_dataset=dataset, processing_class=tokenizer, callbacks=[clock.callback]
        )
        trainer.train()
        if config.device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - clock.start
    tokens = trainer.state.num_input_tokens_seen - clock.start_tokens
    steps = trainer.state.global_step - 1
    # every example is trained once, in shuffled order: the timed steps did steps / (steps + 1) of the work
    work = useful_macs(model, tokenizer, prompts, completions, config) * steps / (steps + 1)
    achieved = 2 * work / elapsed / 1e9
    return {
        "backend": config.backend,
        "packing": config.packing,
        "steps": steps,
        "tokens": tokens,
        "seconds": round(elapsed, 2),
        "tokens_per_s": round(tokens / elapsed, 1),
        "useful_gflop_per_s": round(achieved, 1),
        "share_of_matmul": round(achieved / gflops, 3),
    }


def useful_macs(model: Any, tokenizer: Any, prompts: list[str], completions: list[str], config: SftConfig) -> int:
    """Multiply-adds training on these examples needs: forward + input gradients (2x) of the body and
    attention at every token, of the output layer at the completion tokens only; a third body pass
    with gradient checkpointing. LoRA's own products are under 1% and not counted."""
    macs = model_macs(model)
    lengths, scored = [], 0
    for prompt, completion in zip(prompts, completions):
        prompt_len = len(tokenizer(prompt)["input_ids"])
        answer_len = len(tokenizer(completion, add_special_tokens=False)["input_ids"])
        total = min(prompt_len + answer_len, config.max_seq_length)
        lengths.append(total)
        scored += max(total - prompt_len, 0)
    passes = 3 if config.use_gradient_checkpointing else 2
    return passes * macs.forward(sum(lengths), 0, causal_pairs(lengths)) + 2 * macs.head_per_position * scored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", help="train as this profile's sft section, on its latest reformat shards")
    parser.add_argument("--model", default="tiny-llama", help="tiny-llama spec, hub id or local path")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (one warm-up step runs first)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-seq-length", type=int, default=512)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--load-in-4bit", action="store_true")
    parser.add_argument("--packing", choices=["off", "on", "both"], default="both")
    parser.add_argument("--compare-unsloth", action="store_true", help="also run the unsloth backend (GPU only)")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "kositp-bench-cache"))
    ns = parser.parse_args()

    ns.device = common.resolve_device(ns.device)
    cache = Path(ns.cache)
    backends = ["hf"] + (["unsloth"] if ns.compare_unsloth else [])
    if ns.compare_unsloth:
        common.resolve_backend("unsloth", ns.device)
    gflops = matmul_gflops(ns.device)
    print(describe())
    print(f"float32 matmul: {gflops:.1f} GFLOP/s on {torch.get_num_threads()} threads ({ns.device})")
    results = []
    for backend in backends:
        for packing in {"off": [False], "on": [True], "both": [False, True]}[ns.packing]:
            config = sft_settings(ns, packing, backend)
            model_path = ModelRef.parse(config.base_model).resolve(cache)
            count = config.max_steps * config.train_batch_size * (8 if packing else 1)
            pairs = profile_pairs(ns.profile, count, cache) if ns.profile else corpus_pairs(count)
            result = measure(model_path, config, pairs, gflops)
            results.append(result)
            print(json.dumps({"model": config.base_model, **result}, ensure_ascii=False))
    print()
    print(f"{'backend':8} {'packing':8} {'tokens':>8} {'seconds':>8} {'tokens/s':>10} {'GFLOP/s':>8} {'share':>6}")
    for r in results:
        print(
            f"{r['backend']:8} {r['packing']!s:8} {r['tokens']:>8} {r['seconds']:>8} {r['tokens_per_s']:>10} "
            f"{r['useful_gflop_per_s']:>8} {r['share_of_matmul']:>6.1%}"
        )


if __name__ == "__main__":
    main()
