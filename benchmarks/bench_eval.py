"""Examples/s of ``choice`` vs ``generate`` (256 new tokens, the seed's setting) with the tiny model on CPU.

Same examples for both methods (the bundled demo NSMC set, or ``--data-dir``). Target: choice at
least 5x faster, at 100% coverage. Usage from the repository root:
``PYTHONPATH=. python benchmarks/bench_eval.py [--n 20] [--set nsmc] [--data-dir DIR]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from kositp.evaluate.backends import HFBackend, Sampling
from kositp.evaluate.loaders import load_set
from kositp.evaluate.metrics import set_metrics
from kositp.evaluate.prompts import load_prompt_set
from kositp.evaluate.runner import predict
from kositp.reporting import ConsoleReporter
from kositp.tiny_model import resolve_base_model

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=REPO / "data" / "demo" / "eval")
    parser.add_argument("--set", default="nsmc")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = resolve_base_model("tiny-llama", Path(tempfile.gettempdir()) / "kositp-bench-cache")
    prompts = load_prompt_set()[args.set]
    examples = load_set(args.set, args.data_dir, prompts.labels, limit=args.n)
    backend = HFBackend(model, batch_size=args.batch_size, device="cpu")
    quiet = ConsoleReporter(show_progress=False)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"threads {args.threads}, python {platform.python_version()}"
    )
    print(
        f"examples: {len(examples)} from {args.set} ({args.data_dir}), batch size {args.batch_size}, tiny-llama"
    )
    rates = {}
    for method in ("choice", "generate"):
        start = time.perf_counter()
        frame, _ = predict(examples, prompts, backend, method, Sampling(max_new_tokens=256), quiet)
        elapsed = time.perf_counter() - start
        m = set_metrics(frame["gold"].tolist(), frame["prediction"].tolist(), prompts.label_words)
        rates[method] = len(examples) / elapsed
        print(
            f"{method:8s}: {elapsed:7.2f} s, {rates[method]:8.2f} examples/s, coverage {m['coverage']:.0%}, "
            f"macro F1 {m['macro_f1']:.3f}"
        )
    speedup = rates["choice"] / rates["generate"]
    print(f"choice / generate: {speedup:.1f}x (target >= 5x): {'met' if speedup >= 5 else 'NOT met'}")


if __name__ == "__main__":
    main()
