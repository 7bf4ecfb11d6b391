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
    """transformers on CPU or GPU; label words scored by summed log-likelihood, batched."""

    name = "hf"

    def __init__(self, model_path: str | Path, batch_size: int = 8, device: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_path))
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=dtype).to(self.device).eval()
        self.batch_size = batch_size
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _prompt_ids(self, text: str) -> list[int]:
        """The prompt with the tokenizer's own special tokens (BOS where the model expects one),
        as generation and the vLLM worker see it; label words are appended without any."""
        return self.tokenizer(text)["input_ids"]

    def label_logprobs(self, pairs: Sequence[tuple[list[int], list[int]]]) -> list[float]:
        """Summed log-probability of each label continuation given its prompt, in one padded batch."""
        import torch

        seqs = [p + c for p, c in pairs]
        width = max(map(len, seqs))
        input_ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        for row, seq in enumerate(seqs):
            input_ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        with torch.inference_mode():
            logits = self.model(
                input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)
            ).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
        scores = []
        for row, (prompt, cont) in enumerate(pairs):
            positions = torch.arange(len(prompt) - 1, len(prompt) + len(cont) - 1)
            scores.append(float(logprobs[row, positions, torch.tensor(cont)].sum()))
        return scores

    def choose(self, prompts: Sequence[str], labels: Sequence[str], advance: Advance) -> list[list[float]]:
        label_ids = [self._ids(label) for label in labels]
        per_batch = max(1, self.batch_size // max(1, len(labels)))
        out: list[list[float]] = []
        for start in range(0, len(prompts), per_batch):
            chunk = prompts[start : start + per_batch]
            pairs = [(self._prompt_ids(p), ids) for p in chunk for ids in label_ids]
            flat = self.label_logprobs(pairs)
            out += [flat[i * len(labels) : (i + 1) * len(labels)] for i in range(len(chunk))]
            advance(len(chunk))
        return out

    def generate(self, prompts: Sequence[str], sampling: Sampling, advance: Advance) -> list[str]:
        import torch

        torch.manual_seed(sampling.seed)
        out: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = [self._prompt_ids(p) for p in prompts[start : start + self.batch_size]]
            width = max(map(len, chunk))
            input_ids = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros_like(input_ids)
            for row, ids in enumerate(chunk):  # left padding: generation continues every row at the end
                input_ids[row, width - len(ids) :] = torch.tensor(ids)
                mask[row, width - len(ids) :] = 1
            with torch.inference_mode():
                generated = self.model.generate(
                    input_ids=input_ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    do_sample=True,
                    temperature=sampling.temperature,
                    top_k=sampling.top_k,
                    max_new_tokens=sampling.max_new_tokens,
                    pad_token_id=self.pad_id,
                )
            new_tokens = generated[:, width:].cpu()
            out += self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            advance(len(chunk))
        return out


class VLLMBackend:
    """vLLM's offline engine in a subprocess of the vLLM environment, exchanging JSONL files."""

    name = "vllm"

    def __init__(self, model_path: str | Path, python: str | None, batch_size: int = 256):
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

    def _run(self, request: dict, prompts: Sequence[str]) -> list[dict]:
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
        return VLLMBackend(model, vllm_python, batch_size=batch_size)
    if name == "openai":
        if not base_url:
            raise BackendError("the openai backend needs base_url (e.g. http://localhost:8000/v1)")
        return OpenAIBackend(base_url, served_model or str(model))
    raise BackendError(f"unknown backend {name!r} (auto, hf, vllm, openai)")


__all__ = ["Backend", "BackendError", "HFBackend", "OpenAIBackend", "Sampling", "VLLMBackend", "make_backend"]
