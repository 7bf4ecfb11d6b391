"""Scoring backends: each one can score label words (``choice``) and sample answers (``generate``).

``hf`` runs transformers in this process on any device; ``vllm`` runs vLLM's offline engine in a
subprocess of its own Python environment (:mod:`kositp.evaluate.vllm_worker`), because vLLM's
pins conflict with Prefect's; ``openai`` talks to any OpenAI-compatible server.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

Advance = Callable[[int], None]


@dataclass(frozen=True)
class Sampling:
    """The seed's generation settings."""

    temperature: float = 0.5
    top_k: int = 50
    max_new_tokens: int = 256
    seed: int = 0


class BackendError(RuntimeError):
    pass


class Backend(Protocol):
    name: str

    def choose(self, prompts: Sequence[str], labels: Sequence[str], advance: Advance) -> list[list[float]]:
        """Per prompt, one score per label (higher is preferred)."""

    def generate(self, prompts: Sequence[str], sampling: Sampling, advance: Advance) -> list[str]:
        """Per prompt, the sampled text (not yet cut at the stop marker)."""


class HFBackend:
    """transformers on CPU or GPU; label words scored by their tokens' log-likelihoods, batched."""

    name = "hf"

    def __init__(self, model_path: str | Path, batch_size: int = 8, device: str | None = None):
        from kositp.models.causal_lm import load_causal_lm
        from kositp.train.common import resolve_device

        self.device = device or resolve_device("auto")
        self.model, self.tokenizer = load_causal_lm(model_path, self.device)
        self.model.eval()
        self.batch_size = batch_size

    def choose(self, prompts: Sequence[str], labels: Sequence[str], advance: Advance) -> list[list[float]]:
        """Per prompt, the summed log-probability of each label word's tokens; prompts carry the
        tokenizer's special tokens (as in training), label words none. Each prompt runs once.

        Batches are cut from the prompts in order of length, so a batch pads its prompts to a
        similar length instead of to the longest of eight random reviews; the scores come back in
        the prompts' order."""
        from kositp.models.causal_lm import label_logprobs, prompt_ids

        label_ids = [self.tokenizer(label, add_special_tokens=False)["input_ids"] for label in labels]
        ids = [prompt_ids(self.tokenizer, p) for p in prompts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out: list[list[float]] = [[] for _ in ids]
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            for i, scores in zip(batch, label_logprobs(self.model, self.tokenizer, [ids[i] for i in batch], label_ids)):
                out[i] = scores
            advance(len(batch))
        return out

    def generate(self, prompts: Sequence[str], sampling: Sampling, advance: Advance) -> list[str]:
        import torch

        from kositp.models.causal_lm import generate_text

        torch.manual_seed(sampling.seed)
        return generate_text(
            self.model,
            self.tokenizer,
            prompts,
            sampling.max_new_tokens,
            batch_size=self.batch_size,
            temperature=sampling.temperature,
            top_k=sampling.top_k,
            advance=advance,
        )


class VLLMBackend:
    """vLLM's offline engine in a subprocess of the vLLM environment, exchanging JSONL files."""

    name = "vllm"

    def __init__(
        self, model_path: str | Path, python: str | None, batch_size: int = 256, tensor_parallel_size: int = 1
    ):
        python = python or os.environ.get("KOSITP_VLLM_PYTHON")
        if not python:
            raise BackendError(
                "the vllm backend needs the Python of a separate vLLM environment: set evaluate.vllm_python "
                "or KOSITP_VLLM_PYTHON (vLLM's pins conflict with Prefect's, so it is never imported here)"
            )
        if not Path(python).is_file():
            raise BackendError(
                f"vllm_python {python!r} does not exist (set evaluate.vllm_python or KOSITP_VLLM_PYTHON)"
            )
        self.python = python
        self.model_path = str(model_path)
        self.batch_size = batch_size
        self.tensor_parallel_size = tensor_parallel_size

    def _run(self, request: dict, prompts: Sequence[str]) -> list[dict]:
        request = {**request, "tensor_parallel_size": self.tensor_parallel_size}
        worker = Path(__file__).with_name("vllm_worker.py")
        with tempfile.TemporaryDirectory(prefix="kositp-vllm-") as tmp:
            req, res = Path(tmp) / "request.jsonl", Path(tmp) / "results.jsonl"
            write_requests(req, request, prompts)
            proc = subprocess.run(
                [self.python, str(worker), str(req), str(res)], stderr=subprocess.PIPE, text=True, check=False
            )
            if proc.returncode != 0:
                raise BackendError(f"vllm worker failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
            return read_results(res, len(prompts))

    def choose(self, prompts: Sequence[str], labels: Sequence[str], advance: Advance) -> list[list[float]]:
        results = self._run({"method": "choice", "model": self.model_path, "labels": list(labels)}, prompts)
        advance(len(prompts))
        return [r["scores"] for r in results]

    def generate(self, prompts: Sequence[str], sampling: Sampling, advance: Advance) -> list[str]:
        request = {"method": "generate", "model": self.model_path, "sampling": sampling.__dict__}
        results = self._run(request, prompts)
        advance(len(prompts))
        return [r["text"] for r in results]


def write_requests(path: Path, header: dict, prompts: Sequence[str]) -> None:
    """Worker protocol: first line the request header, then one ``{"prompt": ...}`` per line."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(header, ensure_ascii=False) + "\n")
        handle.writelines(json.dumps({"prompt": prompt}, ensure_ascii=False) + "\n" for prompt in prompts)


def read_results(path: Path, expected: int) -> list[dict]:
    if not path.is_file():
        raise BackendError(f"{path}: the vllm worker wrote no results")
    results = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(results) != expected:
        raise BackendError(f"{path}: {len(results)} results for {expected} prompts")
    return results


class OpenAIBackend:
    """Any OpenAI-compatible server (vLLM's among them), over the completions endpoint.

    Label log-likelihoods are not generally exposed, so ``choice`` asks the server for a
    structured choice among the label words (vLLM's ``structured_outputs``); the chosen label gets
    score 0 and the others -inf. A server that ignores the field may answer something else, which
    then scores no label and is reported invalid by the caller.
    """

    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str | None = None):
        from openai import OpenAI

        self.client = OpenAI(
            base_url=base_url, api_key=api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        )
        self.model = model

    def choose(self, prompts: Sequence[str], labels: Sequence[str], advance: Advance) -> list[list[float]]:
        out = []
        for prompt in prompts:
            reply = self.client.completions.create(
                model=self.model,
                prompt=prompt,
                max_tokens=32,
                temperature=0.0,
                extra_body={"structured_outputs": {"choice": list(labels)}},
            )
            text = reply.choices[0].text.strip()
            out.append([0.0 if text == label else float("-inf") for label in labels])
            advance(1)
        return out

    def generate(self, prompts: Sequence[str], sampling: Sampling, advance: Advance) -> list[str]:
        out = []
        for index, prompt in enumerate(prompts):
            reply = self.client.completions.create(
                model=self.model,
                prompt=prompt,
                max_tokens=sampling.max_new_tokens,
                temperature=sampling.temperature,
                seed=sampling.seed + index,
                extra_body={"top_k": sampling.top_k},
            )
            out.append(reply.choices[0].text)
            advance(1)
        return out


def gpu_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def make_backend(
    name: str,
    model: str | Path,
    *,
    batch_size: int = 8,
    vllm_python: str | None = None,
    tensor_parallel_size: int = 1,
    base_url: str | None = None,
    served_model: str | None = None,
) -> Backend:
    """``auto`` is vllm when a vLLM Python is configured and a GPU is present, else hf."""
    if name == "auto":
        configured = vllm_python or os.environ.get("KOSITP_VLLM_PYTHON")
        name = "vllm" if configured and gpu_available() else "hf"
    if name == "hf":
        return HFBackend(model, batch_size=batch_size)
    if name == "vllm":
        return VLLMBackend(
            model, vllm_python, batch_size=batch_size, tensor_parallel_size=tensor_parallel_size
        )
    if name == "openai":
        if not base_url:
            raise BackendError("the openai backend needs base_url (e.g. http://localhost:8000/v1)")
        return OpenAIBackend(base_url, served_model or str(model))
    raise BackendError(f"unknown backend {name!r} (auto, hf, vllm, openai)")


__all__ = ["Backend", "BackendError", "HFBackend", "OpenAIBackend", "Sampling", "VLLMBackend", "make_backend"]
