"""OpenAI's response shapes for generated text: whole, or as server-sent-event chunks ending in ``[DONE]``.

The shapes are the ones the ``openai`` client parses (``chat.completion``, ``chat.completion.chunk``,
``text_completion``); ``system_fingerprint`` carries the served artifact version, so every
answer says which model produced it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from kositp.serve.schemas import error_body

log = logging.getLogger("kositp")

Kind = Literal["chat", "completion"]


@dataclass(frozen=True)
class Finished:
    """The end of one generation: why it stopped and what it cost in tokens."""

    finish_reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


@dataclass(frozen=True)
class Answer:
    """One response: the model id clients asked for, the served artifact's fingerprint, its id."""

    kind: Kind
    model: str
    fingerprint: str | None
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def id(self) -> str:
        return f"{'chatcmpl' if self.kind == 'chat' else 'cmpl'}-{self.token}"

    def _envelope(self, object_: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": object_,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.fingerprint,
        }

    def whole(self, text: str, finished: Finished) -> dict[str, Any]:
        if self.kind == "chat":
            choice = {"index": 0, "message": {"role": "assistant", "content": text}}
            body = self._envelope("chat.completion")
        else:
            choice = {"index": 0, "text": text}
            body = self._envelope("text_completion")
        choice.update(finish_reason=finished.finish_reason, logprobs=None)
        return {**body, "choices": [choice], "usage": finished.usage()}

    def chunk(self, text: str | None, finish_reason: str | None = None, first: bool = False) -> dict[str, Any]:
        if self.kind == "chat":
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
            if text:
                delta["content"] = text
            choice = {"index": 0, "delta": delta}
            body = self._envelope("chat.completion.chunk")
        else:
            choice = {"index": 0, "text": text or ""}
            body = self._envelope("text_completion")
        choice.update(finish_reason=finish_reason, logprobs=None)
        return {**body, "choices": [choice]}

    def usage_chunk(self, finished: Finished) -> dict[str, Any]:
        object_ = "chat.completion.chunk" if self.kind == "chat" else "text_completion"
        return {**self._envelope(object_), "choices": [], "usage": finished.usage()}


def sse(data: dict[str, Any] | str) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {payload}\n\n"


async def stream_events(
    answer: Answer, events: AsyncIterator[str | Finished], include_usage: bool
) -> AsyncIterator[str]:
    """Text pieces and the final :class:`Finished` as OpenAI's chunk stream, then ``[DONE]``.

    The status line went out with the first chunk, so a generation that fails midway cannot
    become a 500: it ends the stream with an error event (as vLLM's server does), never silently.
    """
    if answer.kind == "chat":
        yield sse(answer.chunk(None, first=True))
    try:
        async for event in events:
            if isinstance(event, Finished):
                yield sse(answer.chunk(None, event.finish_reason))
                if include_usage:
                    yield sse(answer.usage_chunk(event))
            else:
                yield sse(answer.chunk(event))
    except Exception as exc:  # reported to the client, logged with its traceback
        log.exception("generation failed mid-stream")
        yield sse(error_body(f"generation failed: {type(exc).__name__}: {exc}", type_="server_error"))
    yield sse("[DONE]")


async def collect(events: AsyncIterator[str | Finished]) -> tuple[str, Finished]:
    pieces: list[str] = []
    finished: Finished | None = None
    async for event in events:
        if isinstance(event, Finished):
            finished = event
        else:
            pieces.append(event)
    assert finished is not None, "a generation always ends with Finished"
    return "".join(pieces), finished
