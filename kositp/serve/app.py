"""The OpenAI-compatible HTTP app: auth, validation, caps and admission in front of a backend.

Everything a request can get wrong is refused here, before it costs generation: a missing key
(401, checked before the body is read), an oversized body (413), a malformed or unsupported body,
an unknown model, a prompt or ``max_tokens`` beyond the caps (400), a full queue (429). Every
refusal has OpenAI's error JSON, so clients raise their usual exceptions with our message.
The prompt is rendered here with the model's own tokenizer (its chat template is the seed
format baked in at export) for both backends, so the caps mean the same on hf and vLLM.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kositp.models.causal_lm import prompt_ids
from kositp.serve.admission import Admission, QueueFull
from kositp.serve.responses import Answer, Kind
from kositp.serve.schemas import ApiError, ChatRequest, CompletionRequest, Limits, error_body
from kositp.serve.source import ServedModel

log = logging.getLogger("kositp")
ARTIFACT_HEADER = "X-KOSITP-Artifact"
SOURCE_HEADER = "X-KOSITP-Model-Source"


class Backend(Protocol):
    name: str

    async def respond(
        self, request: ChatRequest | CompletionRequest, prompt_ids: list[int], max_tokens: int, answer: Answer
    ) -> Any: ...

    async def ready(self) -> bool: ...

    def close(self) -> None: ...


class Gate:
    """ASGI middleware: the API key and the body-size cap, before any route reads a byte.

    Pure ASGI (not ``BaseHTTPMiddleware``) so streamed responses pass through untouched; it also
    stamps every response with the served artifact, so any answer says which model gave it.
    """

    def __init__(self, app: ASGIApp, api_key: str | None, max_body_bytes: int, headers: dict[str, str]):
        self.app, self.api_key, self.max_body_bytes = app, api_key, max_body_bytes
        self.headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        headers = dict(scope["headers"])
        if self.api_key is not None and scope["path"].startswith("/v1/") and not self._authorized(headers):
            refusal = ApiError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                               type_="authentication_error", code="invalid_api_key")
            await _json(refusal.status, refusal.body())(scope, receive, stamped)
            return
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.max_body_bytes:
            too_big = ApiError(413, f"request body over this server's cap of {self.max_body_bytes} bytes")
            await _json(too_big.status, too_big.body())(scope, receive, stamped)
            return
        received = 0

        async def capped() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:  # a chunked body that announced no length
                raise StarletteHTTPException(413, f"request body over this server's cap of {self.max_body_bytes} bytes")
            return message

        await self.app(scope, capped, stamped)

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        assert self.api_key is not None
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.api_key.encode())


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


class Prompter:
    """The model's tokenizer: renders chat turns with its chat template and counts prompt tokens."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer

    def chat_ids(self, request: ChatRequest) -> list[int]:
        turns = [{"role": m.template_role(), "content": m.text()} for m in request.messages]
        text = self.tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False)
        return prompt_ids(self.tokenizer, text)

    def completion_ids(self, request: CompletionRequest) -> list[int]:
        return prompt_ids(self.tokenizer, request.text)


def token_budget(request: ChatRequest | CompletionRequest, prompt_tokens: int, limits: Limits, context: int) -> int:
    """``max_tokens`` for this request, or the 400 that says which cap it broke."""
    param = "messages" if isinstance(request, ChatRequest) else "prompt"
    if prompt_tokens == 0:
        raise ApiError(400, "the prompt is empty", param=param)
    if prompt_tokens > limits.max_prompt_tokens:
        raise ApiError(400, f"the prompt is {prompt_tokens} tokens; this server takes at most "
                            f"{limits.max_prompt_tokens}", param=param, code="context_length_exceeded")
    requested = request.requested_tokens()
    if requested is not None and requested > limits.max_tokens:
        raise ApiError(400, f"max_tokens {requested} is above this server's cap of {limits.max_tokens}",
                       param="max_tokens")
    room = context - prompt_tokens
    max_tokens = requested if requested is not None else min(limits.default_max_tokens, limits.max_tokens, room)
    if max_tokens > room or max_tokens < 1:
        raise ApiError(400, f"the prompt ({prompt_tokens} tokens) and max_tokens ({max_tokens}) exceed the "
                            f"model's context of {context} tokens", param="max_tokens",
                       code="context_length_exceeded")
    return max_tokens


def validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """The first problem as ``field: what is wrong`` (pydantic's list is unreadable in a client)."""
    errors = exc.errors()
    if not errors:
        return "malformed request body", None
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    field = ".".join(loc) or None
    message = str(first.get("msg", "invalid value"))
    if not loc:
        message = "the request body must be a JSON object (Content-Type: application/json)"
    elif first.get("type") == "extra_forbidden":
        message = "this server does not support this field"
    elif first.get("type") == "json_invalid":
        message, field = "the request body is not valid JSON", None
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return (f"{field}: {message}" if field else message) + more, field


def create_app(
    served: ServedModel, backend: Backend, tokenizer: Any, context: int, limits: Limits, api_key: str | None
) -> FastAPI:
    """The app serving ``served`` through ``backend``, within ``limits``, behind the gate."""
    admission = Admission(limits.concurrency, limits.queue_size)
    app = FastAPI(title="KOSITP", lifespan=_lifespan(served, backend), docs_url=None, redoc_url=None, openapi_url=None)
    _add_error_handlers(app)
    _add_status_routes(app, served, backend, admission)
    _add_generation_routes(app, Generation(served, backend, Prompter(tokenizer), context, limits, admission))
    headers = {SOURCE_HEADER: served.source}
    if served.artifact:
        headers[ARTIFACT_HEADER] = served.artifact
    app.add_middleware(Gate, api_key=api_key, max_body_bytes=limits.max_body_bytes, headers=headers)
    return app


def _lifespan(served: ServedModel, backend: Backend) -> Any:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.info("serving %s as %r with the %s backend", served.describe(), served.name, backend.name)
        yield
        backend.close()  # after the server stopped taking requests and in-flight ones finished

    return lifespan


def _add_error_handlers(app: FastAPI) -> None:
    """Every refusal and failure as OpenAI's error JSON."""

    @app.exception_handler(ApiError)
    async def _api_error(_, exc: ApiError) -> JSONResponse:
        return _json(exc.status, exc.body(), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_, exc: RequestValidationError) -> JSONResponse:
        message, field = validation_message(exc)
        return _json(400, error_body(message, param=field))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_, exc: StarletteHTTPException) -> JSONResponse:
        return _json(exc.status_code, error_body(str(exc.detail)))

    @app.exception_handler(Exception)
    async def _crash(_, exc: Exception) -> JSONResponse:
        log.exception("request failed")
        return _json(500, error_body(f"internal error: {type(exc).__name__}", type_="server_error"))


def _add_status_routes(app: FastAPI, served: ServedModel, backend: Backend, admission: Admission) -> None:
    """``/health`` (backend readiness and the queue) and ``/v1/models``."""

    @app.get("/health")
    async def health() -> JSONResponse:
        ready = await backend.ready()
        body = {"status": "ok" if ready else "unavailable", "backend": backend.name, "model": served.name,
                "artifact": served.artifact, "source": served.source, "requests": admission.state()}
        return _json(200 if ready else 503, body)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [served.card()]}


def _add_generation_routes(app: FastAPI, generation: Generation) -> None:
    @app.post("/v1/chat/completions")
    async def chat(request: ChatRequest):
        return await generation.chat(request)

    @app.post("/v1/completions")
    async def completions(request: CompletionRequest):
        return await generation.completion(request)


class Generation:
    """What the two generation routes do: check the request against the served model and the caps,
    render the prompt, wait for a slot, and hand it to the backend."""

    def __init__(
        self,
        served: ServedModel,
        backend: Backend,
        prompter: Prompter,
        context: int,
        limits: Limits,
        admission: Admission,
    ):
        self.served, self.backend, self.prompter = served, backend, prompter
        self.context, self.limits, self.admission = context, limits, admission

    async def chat(self, request: ChatRequest) -> Any:
        if len(request.messages) > self.limits.max_messages:
            raise ApiError(400, f"{len(request.messages)} messages; this server takes at most "
                                f"{self.limits.max_messages}", param="messages")
        self._served_here(request)
        return await self._answer(request, "chat", await run_in_threadpool(self.prompter.chat_ids, request))

    async def completion(self, request: CompletionRequest) -> Any:
        self._served_here(request)
        return await self._answer(request, "completion", await run_in_threadpool(self.prompter.completion_ids, request))

    def _served_here(self, request: ChatRequest | CompletionRequest) -> None:
        if request.model != self.served.name:
            raise ApiError(404, f"model {request.model!r} is not served here; this server serves "
                                f"{self.served.name!r}", param="model", code="model_not_found")

    async def _answer(self, request: ChatRequest | CompletionRequest, kind: Kind, prompt_ids: list[int]) -> Any:
        """The backend's response, holding an admission slot until it is sent (a stream: until it ends)."""
        max_tokens = token_budget(request, len(prompt_ids), self.limits, self.context)
        answer = Answer(kind, self.served.name, self.served.artifact)
        try:
            await self.admission.acquire()
        except QueueFull as exc:
            raise ApiError(429, f"server busy: {exc}", type_="rate_limit_exceeded", code="queue_full",
                           headers={"Retry-After": "1"}) from exc
        try:
            response = await self.backend.respond(request, prompt_ids, max_tokens, answer)
        except BaseException:
            self.admission.release()
            raise
        if isinstance(response, StreamingResponse):
            response.body_iterator = _releasing(response.body_iterator, self.admission)
        else:
            self.admission.release()
        return response


async def _releasing(body: AsyncIterator[Any], admission: Admission) -> AsyncIterator[Any]:
    """A streamed body that gives its slot back when it ends, however it ends (a client hang-up too)."""
    try:
        async for chunk in body:
            yield chunk
    finally:
        admission.release()
        aclose = getattr(body, "aclose", None)
        if aclose is not None:
            await aclose()
