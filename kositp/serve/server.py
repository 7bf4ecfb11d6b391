"""Putting a server together: pick the backend, load or start it, build the app, run uvicorn."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kositp.errors import PermanentError
from kositp.serve.schemas import Limits
from kositp.serve.source import ServedModel

log = logging.getLogger("kositp")
BACKENDS = ("auto", "hf", "vllm")


@dataclass(frozen=True)
class BackendChoice:
    name: str
    reason: str


def choose_backend(requested: str, vllm_python: str | None) -> BackendChoice:
    """``auto`` is vllm only when a GPU and a vLLM environment are both there; hf otherwise."""
    import os

    from kositp.evaluate.backends import gpu_available
    from kositp.serve.vllm_backend import VLLM_PYTHON_ENV

    if requested not in BACKENDS:
        raise PermanentError(f"unknown backend {requested!r}; use one of {', '.join(BACKENDS)}")
    if requested != "auto":
        return BackendChoice(requested, f"backend {requested} requested")
    python = vllm_python or os.environ.get(VLLM_PYTHON_ENV)
    if not python:
        return BackendChoice("hf", f"auto picked hf: no vLLM environment (--vllm-python or {VLLM_PYTHON_ENV})")
    if not gpu_available():
        return BackendChoice("hf", "auto picked hf: a vLLM environment is configured but no GPU is visible")
    return BackendChoice("vllm", "auto picked vllm: a GPU and a vLLM environment are there")


def model_context(model_dir: Any, limits: Limits) -> int:
    """Tokens the model can attend to (prompt + answer); the caps' sum when its config does not say."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(model_dir))
    return int(getattr(config, "max_position_embeddings", 0) or limits.max_prompt_tokens + limits.max_tokens)


def build_app(served: ServedModel, backend: str, limits: Limits, api_key: str | None, device: str = "auto",
              vllm_python: str | None = None, vllm_args: tuple[str, ...] = ()):
    """The app with its backend loaded (hf) or started and healthy (vllm); errors surface here, at once."""
    from kositp.serve.app import create_app
    from kositp.serve.hf_backend import model_stops

    choice = choose_backend(backend, vllm_python)
    log.info("%s", choice.reason)
    context = model_context(served.path, limits)
    stops = model_stops(served.path)
    if choice.name == "hf":
        from kositp.serve.hf_backend import HFBackend, HFGenerator

        generator = HFGenerator(served.path, device)
        return create_app(served, HFBackend(generator, limits.concurrency), generator.tokenizer, context, limits, api_key)
    from transformers import AutoTokenizer

    from kositp.serve.vllm_backend import VLLMBackend
    from kositp.serve.vllm_backend import vllm_python as find_python

    tokenizer = AutoTokenizer.from_pretrained(str(served.path))
    max_model_len = min(context, limits.max_prompt_tokens + limits.max_tokens)
    upstream = VLLMBackend.start(served, find_python(vllm_python), max_model_len, stops, extra=vllm_args)
    return create_app(served, upstream, tokenizer, max_model_len, limits, api_key)


def run(app: Any, host: str, port: int, graceful_timeout_s: float, limits: Limits) -> None:
    """uvicorn until SIGINT/SIGTERM; then no new connections, and in-flight requests get to finish.

    Clients that never finish their headers are shed (:mod:`kositp.serve.connections`) and
    repeated lines of uvicorn's and asyncio's logs are rate-limited.
    """
    import uvicorn

    from kositp.serve.connections import ACCEPT_BACKLOG, MAX_HEADER_BYTES, RepeatLimit, guarded_protocol

    repeats = RepeatLimit()
    for name in ("asyncio", "uvicorn.error"):
        logging.getLogger(name).addFilter(repeats)
    protocol = guarded_protocol(limits.header_timeout_s, limits.max_connections)
    uvicorn.run(app, host=host, port=port, http=protocol, backlog=ACCEPT_BACKLOG, timeout_keep_alive=5,
                h11_max_incomplete_event_size=MAX_HEADER_BYTES, timeout_graceful_shutdown=graceful_timeout_s,
                log_level="info")
