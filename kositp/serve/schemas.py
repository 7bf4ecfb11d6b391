"""What a request may say, and the error shape every refusal takes.

Bodies are validated by pydantic models that reject unknown fields: a client asking for
something this server does not do (``logprobs``, ``tools``, ``n=3``) gets a 400 naming the field
instead of an answer that silently ignored it. ``top_k`` is accepted because vLLM's server and
the seed's sampling use it. Types are strict, as OpenAI's API is: ``max_tokens: true`` is not 1
and ``stream: "yes"`` is not true. Text is text: a lone surrogate (``"\\ud800"`` is valid JSON)
has no UTF-8 form, so no tokenizer takes it. Caps (:class:`Limits`) bound what one request can cost.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_STOP_SEQUENCES = 4
MAX_STOP_CHARS = 64


class Limits(BaseModel):
    """Per-request and per-server caps; every one is a flag of ``kositp serve``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int = Field(1024, ge=1)  # the most a request may ask for
    default_max_tokens: int = Field(256, ge=1)  # when it asks for nothing
    max_prompt_tokens: int = Field(2048, ge=1)
    max_messages: int = Field(64, ge=1)
    max_body_bytes: int = Field(1 << 20, ge=1024)
    concurrency: int = Field(2, ge=1)  # requests generating at once
    queue_size: int = Field(16, ge=0)  # requests waiting for a slot; one more gets 429
    max_connections: int = Field(512, ge=1)  # open client connections (fewer if the open-file limit says so)
    header_timeout_s: float = Field(10.0, gt=0)  # for a request's headers to arrive


class ApiError(Exception):
    """A refusal with an HTTP status and OpenAI's error body."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type_: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """OpenAI's error JSON: clients (the ``openai`` package among them) read ``error.message``."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def encodable(value: Any) -> Any:
    """A string (or each string of a list, or each content part's text) that has a UTF-8 form; run
    before the type is checked, so the error names the field rather than a branch of its union."""
    for item in value if isinstance(value, list) else [value]:
        text = item.get("text") if isinstance(item, dict) else item
        if isinstance(text, str):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(f"a lone surrogate (U+{ord(text[exc.start]):04X}) at character {exc.start} "
                                 "is not text") from exc
    return value

# Every request model: unknown fields refused, no type coercion.
_STRICT = ConfigDict(extra="forbid", strict=True)


class StreamOptions(BaseModel):
    model_config = _STRICT

    include_usage: bool = False


class _Request(BaseModel):
    """Sampling fields both endpoints share."""

    model_config = _STRICT

    model: str = Field(min_length=1, max_length=256)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(-1, ge=-1)  # vLLM's extension; 0 or -1 is off
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1)  # a Literal[1] took true as 1
    user: str | None = Field(None, max_length=256)

    _text = field_validator("model", "stop", "user", mode="before")(encodable)

    @field_validator("stop")
    @classmethod
    def _stop_strings(cls, value: str | list[str] | None) -> list[str]:
        stops = [value] if isinstance(value, str) else list(value or [])
        if len(stops) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences, got {len(stops)}")
        for stop in stops:
            if not stop or len(stop) > MAX_STOP_CHARS:
                raise ValueError(f"a stop sequence has 1 to {MAX_STOP_CHARS} characters, got {len(stop)}")
        return stops

    @property
    def stop_list(self) -> list[str]:
        return list(self.stop or [])

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def requested_tokens(self) -> int | None:
        return self.max_tokens


class TextPart(BaseModel):
    model_config = _STRICT

    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = _STRICT

    # ``developer`` is what newer OpenAI clients call the system turn.
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = Field(None, max_length=64)

    _text = field_validator("content", "name", mode="before")(encodable)

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)

    def template_role(self) -> str:
        return "system" if self.role == "developer" else self.role


class ChatRequest(_Request):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)  # the newer name of max_tokens

    def requested_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_Request):
    prompt: str | list[str]

    _prompt_text = field_validator("prompt", mode="before")(encodable)

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, value: str | list[str]) -> str:
        if isinstance(value, list):
            if len(value) != 1:
                raise ValueError(f"this server takes one prompt per request, got a list of {len(value)}")
            value = value[0]
        return value

    @property
    def text(self) -> str:
        assert isinstance(self.prompt, str)
        return self.prompt
