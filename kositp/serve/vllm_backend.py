"""vLLM's own OpenAI server, started from the vLLM environment and reached through a proxy.

vLLM cannot be imported here (its FastAPI pin excludes Prefect's), so ``kositp serve --backend
vllm`` runs ``<vllm python> -m vllm.entrypoints.openai.api_server`` on a loopback port and
forwards each request that passed this server's gate (key, validation, caps, admission). The
upstream gets its own random key (through ``VLLM_API_KEY``, never on the command line), so
nothing on the machine can reach the model around the gate; the client's key is never
forwarded. Requests are sent as validated, with the export's stop strings added, and chat
requests ask vLLM to add the tokenizer's special tokens, as training did.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from fastapi.responses import Response, StreamingResponse

from kositp.errors import PermanentError
from kositp.serve.responses import Answer
from kositp.serve.schemas import ApiError, ChatRequest, CompletionRequest
from kositp.serve.source import ServedModel

log = logging.getLogger("kositp")
VLLM_PYTHON_ENV = "KOSITP_VLLM_PYTHON"
HEALTH_POLL_S = 1.0


class VLLMError(PermanentError):
    """vLLM cannot be started here: no vLLM environment, or its server never became healthy."""


def vllm_python(configured: str | None = None) -> str:
    """The vLLM environment's Python: ``--vllm-python``, else ``KOSITP_VLLM_PYTHON``."""
    python = configured or os.environ.get(VLLM_PYTHON_ENV)
    if not python:
        raise VLLMError(f"the vllm backend needs the Python of a separate vLLM environment: pass --vllm-python "
                        f"or set {VLLM_PYTHON_ENV} (requirements/vllm.txt)")
    if not Path(python).is_file():
        raise VLLMError(f"vLLM python {python!r} does not exist (--vllm-python or {VLLM_PYTHON_ENV})")
    return python


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def vllm_command(python: str, served: ServedModel, port: int, max_model_len: int,
                 extra: tuple[str, ...] = ()) -> list[str]:
    """The upstream command line: loopback only, the model under the id clients use."""
    return [
        python, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(served.path),
        "--served-model-name", served.name,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--max-model-len", str(max_model_len),
        *extra,
    ]


def upstream_body(request: ChatRequest | CompletionRequest, max_tokens: int, model_stops: tuple[str, ...]) -> dict:
    """The validated request as vLLM takes it: the resolved ``max_tokens``, the export's stops added."""
    body = request.model_dump(exclude_none=True, exclude={"max_completion_tokens", "stop"})
    body["max_tokens"] = max_tokens
    body["stop"] = [*request.stop_list, *(s for s in model_stops if s not in request.stop_list)]
    if isinstance(request, ChatRequest):
        body["add_special_tokens"] = True  # the chat template has no BOS; training's tokenizer call added it
    return body


class VLLMBackend:
    """A vLLM server process and an HTTP client to it."""

    name = "vllm"

    def __init__(self, upstream: str, key: str, model_stops: tuple[str, ...], process: subprocess.Popen | None = None):
        self.upstream, self.key, self.model_stops, self.process = upstream, key, model_stops, process
        self.client = httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(None, connect=10.0))

    @classmethod
    def start(cls, served: ServedModel, python: str, max_model_len: int, model_stops: tuple[str, ...],
              startup_timeout_s: float = 900.0, extra: tuple[str, ...] = ()) -> VLLMBackend:
        """Starts the upstream and waits until its ``/health`` answers (loading a model takes minutes)."""
        port, key = free_port(), secrets.token_urlsafe(32)
        command = vllm_command(python, served, port, max_model_len, extra)
        log.info("starting vLLM: %s", " ".join(command))
        process = subprocess.Popen(command, env={**os.environ, "VLLM_API_KEY": key}, stdout=sys.stderr)
        upstream = f"http://127.0.0.1:{port}"
        try:  # whatever ends the wait (a timeout, a signal, Ctrl-C), the process never outlives it
            wait_healthy(process, upstream, startup_timeout_s)
        except BaseException:
            stop_process(process)
            raise
        return cls(upstream, key, model_stops, process)

    async def respond(self, request: ChatRequest | CompletionRequest, prompt_ids: list[int], max_tokens: int,
                      answer: Answer):
        path = "/v1/chat/completions" if isinstance(request, ChatRequest) else "/v1/completions"
        outgoing = self.client.build_request(
            "POST", path, json=upstream_body(request, max_tokens, self.model_stops),
            headers={"Authorization": f"Bearer {self.key}"},
        )
        try:
            upstream = await self.client.send(outgoing, stream=True)
        except httpx.HTTPError as exc:
            raise ApiError(502, f"the vLLM server is not answering ({type(exc).__name__})", type_="server_error") from exc
        media_type = upstream.headers.get("content-type", "application/json")
        if request.stream and upstream.status_code == 200:
            return StreamingResponse(_relay(upstream), media_type=media_type)
        try:
            content = await upstream.aread()
        finally:
            await upstream.aclose()
        return Response(content, status_code=upstream.status_code, media_type=media_type)

    async def ready(self) -> bool:
        try:
            return (await self.client.get("/health", timeout=5.0)).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        if self.process is not None:
            stop_process(self.process)


def wait_healthy(process: subprocess.Popen, upstream: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise VLLMError(f"the vLLM server exited with code {process.returncode} while starting "
                            f"(its log is above): {' '.join(map(str, process.args))}")
        try:
            if httpx.get(f"{upstream}/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(HEALTH_POLL_S)
    raise VLLMError(f"the vLLM server did not become healthy within {timeout_s:.0f} s")


async def _relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    finally:
        await upstream.aclose()


def stop_process(process: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM (vLLM finishes what it is doing), then SIGKILL after ``grace_s``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
