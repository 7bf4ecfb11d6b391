"""SFT tokens/s and ``choice`` examples/s on one CUDA GPU, and the share of the GPU's bf16 matrix
rate each reaches, on Gemma 3 270M's real shape with random weights (``random_gemma.py``).

Written for the device tool's one prepared call, ``scripts/gpu_check.sh`` (which says how the
wheels it carries are made). Each stage runs in a process of its own (Unsloth patches transformers
and TRL when it is imported) under a time limit, its output in ``--out``/<stage>.log; a stage that
fails or runs out of time is reported in one line and the others still run:

- ``sft-hf``: the hf backend as the pipeline trains (``bench_train.measure``: TRL's ``SFTTrainer``
  through ``kositp.train.trl_compat``), the output layer at the completion positions only;
- ``sft-full-logits``: the same trainer with ``transformers.Trainer.compute_loss``, the model's own
  loss over logits at every position (the 'before' of the completion-only loss);
- ``choice``: ``HFBackend.choose`` (each prompt once, the label words on its cache), tokenization
  included;
- ``sft-unsloth``: the unsloth backend (its own fused loss), 16-bit LoRA; skipped where the unsloth
  wheels were not carried.

SFT settings: the ``gemma-270m`` profile's ``sft`` section (LoRA r=8 on Gemma's own projections,
batch 4, no gradient checkpointing) but ``load_in_4bit: false`` and ``optim: adamw_torch``
(bitsandbytes, which 4-bit loading and the 8-bit optimizers need, is not carried; the LoRA
optimizer step is under 1% of a step either way), on sequences of exactly ``--seq-len`` tokens with
the loss on the last ``--completion-share`` of each, at each of ``--sft-batch-sizes``. ``choice``:
``--choice-examples`` prompts of ``--prompt-words`` tokens, ``--labels`` label words of
``--label-tokens`` tokens, at each of ``--choice-batch-sizes``.

Not measured: vLLM (its wheels, with the torch build they pin, are far over the 64 MiB a call
carries), 4-bit loading and 8-bit optimizers (bitsandbytes), the real tokenizer's cost (33 MB).

    PYTHONPATH=. python benchmarks/bench_gpu.py --out DIR            # on a CUDA GPU: every stage
    PYTHONPATH=. python benchmarks/bench_gpu.py --device cpu --layers 1 --vocab-size 4096 --steps 2 \\
        --seq-len 64 --sft-batch-sizes 2 --choice-examples 16 --choice-batch-sizes 8 --out DIR
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import random_gemma
from compute import causal_pairs, matmul_gflops, model_macs
from machine import describe

from kositp.errors import PermanentError
from kositp.models.prompt_format import format_prompt
from kositp.train import common

PROFILE = "gemma-270m"
STAGES = ("sft-hf", "sft-full-logits", "choice", "sft-unsloth")
RESULT = "RESULT "  # a stage's figures: one JSON object per line of its log with this prefix
VERSIONS = (
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "pydantic",
    "unsloth",
    "unsloth_zoo",
)
NOT_MEASURED = (
    "vLLM: its wheels, with the torch build they pin, are far over the 64 MiB a device call carries",
    "4-bit loading and 8-bit optimizers: bitsandbytes (39 MiB) is not carried",
)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def sizes(text: str) -> list[int]:
    return [positive(part) for part in text.split(",")]


def word_range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    bounds = positive(low), positive(high or low)
    if bounds[0] > bounds[1]:
        raise ValueError(text)
    return bounds


def share(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise ValueError(text)
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument(
        "--out", type=Path, default=Path("artifacts/gpu-check"), help="results.json and one log per stage"
    )
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {', '.join(STAGES)}")
    p.add_argument("--layers", type=positive, help="keep the first N of the 18 layers (CPU checks)")
    p.add_argument("--vocab-size", type=positive, help="shrink the 262,144-word vocabulary (CPU checks)")
    p.add_argument("--steps", type=positive, default=60, help="timed SFT steps (one warm-up step runs first)")
    p.add_argument(
        "--seq-len", type=positive, default=384, help="tokens per SFT sequence (the profile's max_seq_length)"
    )
    p.add_argument(
        "--completion-share", type=share, default=0.25, help="share of each sequence the loss counts"
    )
    p.add_argument("--sft-batch-sizes", type=sizes, default=[4, 32], help="4 is the profile's")
    p.add_argument("--choice-examples", type=positive, default=2000)
    p.add_argument("--choice-batch-sizes", type=sizes, default=[8, 64], help="8 is the profile's")
    p.add_argument("--prompt-words", type=word_range, default=(64, 256), help="prompt tokens, LOW-HIGH")
    p.add_argument("--labels", type=positive, default=3)
    p.add_argument("--label-tokens", type=positive, default=2, help="Korean label words are two Gemma tokens")
    p.add_argument("--stage-timeout", type=float, default=180, help="seconds one stage may take")
    p.add_argument(
        "--deadline", type=float, default=450, help="seconds for everything; later stages are skipped"
    )
    # internal: run one stage in this process, on the driver's model folder and matrix rate
    p.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    p.add_argument("--gflops", type=float, help=argparse.SUPPRESS)
    return p


# ---- the stages, each in its own process -------------------------------------------------------------


def emit(row: dict[str, Any], device: str) -> None:
    """One figure row into the stage's log, with the GPU memory the measurement peaked at."""
    import torch

    if device.startswith("cuda"):
        row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        torch.cuda.reset_peak_memory_stats()
    print(RESULT + json.dumps(row), flush=True)


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def free_memory(device: str) -> None:
    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def full_logits_trainer() -> Any:
    """TRL's ``SFTTrainer`` with the loss of ``transformers.Trainer``: the model's own causal-LM loss
    over logits at every position, on the labels TRL prepared (prompt tokens at -100)."""
    from transformers import Trainer
    from trl import SFTTrainer

    class FullLogitsSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs["use_cache"] = False
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    return FullLogitsSFTTrainer


def sft_pairs(count: int, seq_len: int, completion_share: float, vocab_size: int) -> list[dict[str, str]]:
    """Prompt/output pairs that tokenize to exactly ``seq_len`` tokens in the seed format, the last
    ``completion_share`` of them the completion (output, stop marker and EOS)."""
    completion = max(round(seq_len * completion_share), 3)
    template = 7  # BOS, the input and output tags (3 unknown words each)
    prompt = seq_len - completion - template
    if prompt < 1:
        raise PermanentError(
            f"--seq-len {seq_len} leaves no room for a prompt beside a {completion}-token completion"
        )
    rng = random.Random(0)
    return [
        {
            "prompt": random_gemma.words(rng, prompt, vocab_size),
            "output": random_gemma.words(rng, completion - 2, vocab_size),  # + stop marker + EOS
        }
        for _ in range(count)
    ]


def sft_stage(ns: argparse.Namespace, stage: str, vocab_size: int) -> None:
    backend = "unsloth" if stage == "sft-unsloth" else "hf"
    if backend == "unsloth":
        if "transformers" in sys.modules:
            raise PermanentError("transformers was imported before unsloth: Unsloth would not patch it")
        common.resolve_backend("unsloth", ns.device)
        common.import_unsloth()
    import bench_train

    trainer_class = full_logits_trainer() if stage == "sft-full-logits" else None
    settings = argparse.Namespace(profile=PROFILE, device=ns.device, steps=ns.steps)
    for batch in ns.sft_batch_sizes:
        config = bench_train.sft_settings(settings, False, backend).model_copy(
            update={
                "train_batch_size": batch,
                "max_seq_length": ns.seq_len,
                "load_in_4bit": False,
                "optim": "adamw_torch",
            }
        )
        pairs = sft_pairs(config.max_steps * batch, ns.seq_len, ns.completion_share, vocab_size)
        result = bench_train.measure(ns.model_dir, config, pairs, ns.gflops, trainer_class)
        emit({"stage": stage, "batch": batch, "seq_len": ns.seq_len, **result}, ns.device)
        free_memory(ns.device)


def choice_macs(model: Any, prompt_lengths: list[int], labels: int, rest: int) -> int:
    """Useful multiply-adds of ``label_logprobs``: each prompt once (the output layer at its last
    position), then each label's remaining ``rest`` tokens on the prompt's cache (the output layer
    at each); padding not counted."""
    macs = model_macs(model)
    prompts = macs.forward(sum(prompt_lengths), len(prompt_lengths), causal_pairs(prompt_lengths))
    follow = len(prompt_lengths) * labels * rest
    follow_pairs = labels * sum(n + j + 1 for n in prompt_lengths for j in range(rest))
    return prompts + macs.forward(follow, follow, follow_pairs)


def choice_stage(ns: argparse.Namespace, vocab_size: int) -> None:
    from kositp.evaluate.backends import HFBackend
    from kositp.models.causal_lm import prompt_ids

    rng = random.Random(0)
    labels = [random_gemma.words(rng, ns.label_tokens, vocab_size) for _ in range(ns.labels)]
    prompts = [
        format_prompt(random_gemma.words(rng, rng.randint(*ns.prompt_words), vocab_size))
        for _ in range(ns.choice_examples)
    ]
    backend = HFBackend(ns.model_dir, device=ns.device)
    lengths = [len(prompt_ids(backend.tokenizer, p)) for p in prompts]
    work = choice_macs(backend.model, lengths, ns.labels, ns.label_tokens - 1)
    for batch in ns.choice_batch_sizes:
        backend.batch_size = batch
        backend.choose(prompts[:batch], labels, lambda n: None)  # warm-up
        synchronize(ns.device)
        started = time.perf_counter()
        scores = backend.choose(prompts, labels, lambda n: None)
        synchronize(ns.device)
        elapsed = time.perf_counter() - started
        if len(scores) != len(prompts) or any(len(row) != len(labels) for row in scores):
            raise PermanentError(f"choice returned {len(scores)} score rows for {len(prompts)} prompts")
        achieved = 2 * work / elapsed / 1e9
        emit(
            {
                "stage": "choice",
                "batch": batch,
                "examples": len(prompts),
                "prompt_tokens": sum(lengths),
                "seconds": round(elapsed, 2),
                "examples_per_s": round(len(prompts) / elapsed, 1),
                "useful_gflop_per_s": round(achieved, 1),
                "share_of_matmul": round(achieved / ns.gflops, 4),
            },
            ns.device,
        )


def run_stage(ns: argparse.Namespace) -> None:
    vocab_size = json.loads((Path(ns.model_dir) / "config.json").read_text())["vocab_size"]
    if ns.stage == "choice":
        choice_stage(ns, vocab_size)
    else:
        sft_stage(ns, ns.stage, vocab_size)


# ---- the driver ----------------------------------------------------------------------------------------


def versions() -> str:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "absent"

    return ", ".join(f"{name} {version(name)}" for name in VERSIONS)


def stage_process(command: list[str], log: Path, timeout: float) -> int | None:
    """Run ``command`` in a session of its own, output into ``log``; None when it ran out of time
    (the whole session, the compile workers a stage starts too, is killed)."""
    with open(log, "w", encoding="utf-8") as handle:
        proc = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None


def last_lines(log: Path, count: int) -> list[str]:
    return [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()][
        -count:
    ]


def unavailable(stage: str, device: str) -> str | None:
    """Why ``stage`` cannot run here, or None."""
    if stage != "sft-unsloth":
        return None
    if not device.startswith("cuda"):
        return "Unsloth needs a CUDA GPU"
    if importlib.util.find_spec("unsloth") is None:
        return "the unsloth wheels were not carried (scripts/gpu_check_prepare.py)"
    return None


def drive(ns: argparse.Namespace, stages: list[str], model_dir: Path, gflops: float, deadline: float) -> dict:
    """Every stage in turn; ``{"rows": [...], "stages": {stage: "ok" or why not}}``."""
    rows: list[dict] = []
    outcome: dict[str, str] = {}
    for stage in stages:
        left = deadline - time.monotonic()
        reason = unavailable(stage, ns.device)
        if reason is None and left < 30:
            reason = f"skipped: {left:.0f} s left of --deadline {ns.deadline:.0f}"
        if reason is not None:
            outcome[stage] = reason
            print(f"{stage}: not run: {reason}", flush=True)
            continue
        log = ns.out / f"{stage}.log"
        command = [sys.executable, __file__, *sys.argv[1:], "--stage", stage, "--model-dir", str(model_dir)]
        started = time.monotonic()
        code = stage_process([*command, "--gflops", str(gflops)], log, min(ns.stage_timeout, left))
        found = [
            json.loads(line[len(RESULT) :]) for line in last_lines(log, 10**6) if line.startswith(RESULT)
        ]
        rows += found
        for row in found:
            print(json.dumps(row), flush=True)
        if code == 0:
            outcome[stage] = "ok"
        else:
            outcome[stage] = (
                f"stopped after {time.monotonic() - started:.0f} s" if code is None else f"exit {code}"
            )
            tail = last_lines(log, 12)
            print(
                f"{stage}: FAILED ({outcome[stage]}): {tail[-1] if tail else 'no output'} [{log}]", flush=True
            )
            print("\n".join(f"    {line}" for line in tail), flush=True)
        print(f"{stage}: {time.monotonic() - started:.0f} s", flush=True)
    return {"rows": rows, "stages": outcome}


def ratio(rows: list[dict], numerator: str, denominator: str, batch: int, key: str) -> str:
    top = [r[key] for r in rows if r["stage"] == numerator and r["batch"] == batch]
    bottom = [r[key] for r in rows if r["stage"] == denominator and r["batch"] == batch]
    return f"{top[0] / bottom[0]:.2f}x" if top and bottom and bottom[0] else "n/a"


def report(results: dict, batch_sizes: list[int]) -> None:
    rows = results["rows"]
    print()
    print(f"{'stage':16} {'batch':>5} {'rate':>22} {'useful GFLOP/s':>15} {'share':>7} {'peak GiB':>9}")
    for r in rows:
        rate = f"{r['tokens_per_s']} tokens/s" if "tokens_per_s" in r else f"{r['examples_per_s']} examples/s"
        print(
            f"{r['stage']:16} {r['batch']:>5} {rate:>22} {r['useful_gflop_per_s']:>15} "
            f"{r['share_of_matmul']:>7.1%} {r.get('peak_gib', '-'):>9}"
        )
    for batch in batch_sizes:
        after = ratio(rows, "sft-hf", "sft-full-logits", batch, "tokens_per_s")
        unsloth = ratio(rows, "sft-unsloth", "sft-hf", batch, "tokens_per_s")
        print(f"SFT batch {batch}: hf completion-only / full logits {after}; unsloth / hf {unsloth}")
    for stage, outcome in results["stages"].items():
        if outcome != "ok":
            print(f"not measured: {stage}: {outcome}")
    for line in NOT_MEASURED:
        print(f"not measured: {line}")


def main() -> None:
    ns = parser().parse_args()
    try:
        ns.device = common.resolve_device(ns.device)
    except common.BackendError as exc:
        raise SystemExit(f"bench_gpu: {exc} (on a CPU: --device cpu, with a reduced model)") from None
    if ns.stage:
        run_stage(ns)
        return
    started = time.monotonic()
    stages = [s for s in ns.stages.split(",") if s]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise SystemExit(f"bench_gpu: unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}")
    ns.out.mkdir(parents=True, exist_ok=True)
    print(describe(), flush=True)
    print(versions(), flush=True)
    on_gpu = ns.device.startswith("cuda")
    dtype = "bfloat16" if on_gpu else "float32"
    gflops = matmul_gflops(ns.device, size=8192 if on_gpu else 2048, dtype=dtype)
    print(f"{dtype} matmul: {gflops:.1f} GFLOP/s ({ns.device})", flush=True)
    model_dir = Path(tempfile.mkdtemp(prefix="kositp-gemma-shape-"))
    try:
        random_gemma.save(model_dir, ns.layers, ns.vocab_size, ns.device)
        free_memory(ns.device)
        config = json.loads((model_dir / "config.json").read_text())
        print(
            f"model: Gemma 3 270M's shape, random weights, {config['num_hidden_layers']} layers, "
            f"vocabulary {config['vocab_size']} ({time.monotonic() - started:.0f} s to here)",
            flush=True,
        )
        results = drive(ns, stages, model_dir, gflops, started + ns.deadline)
    finally:
        shutil.rmtree(model_dir, ignore_errors=True)
    results.update(
        machine=describe(), versions=versions(), matmul_gflops=round(gflops, 1), matmul_dtype=dtype
    )
    (ns.out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    report(results, ns.sft_batch_sizes)
    print(f"whole run: {time.monotonic() - started:.0f} s; results in {ns.out / 'results.json'}")


if __name__ == "__main__":
    main()
