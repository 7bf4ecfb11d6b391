"""The Chainlit page of ``kositp chat``: a chat with the served model through its OpenAI API.

Run by ``chainlit run`` (``kositp chat`` does it), never imported by the library. It talks to
``kositp serve`` with the ``openai`` client like any other client would, streams the reply
token by token, lets the user set the system prompt and sampling, and says at the start which
model and artifact version answers (``/v1/models``).
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any

import chainlit as cl
from chainlit.input_widget import NumberInput, Slider, TextInput
from chainlit.server import app as chainlit_app
from openai import APIError, AsyncOpenAI
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

BASE_URL = os.environ.get("KOSITP_CHAT_BASE_URL", "http://127.0.0.1:8000/v1")
HISTORY_MESSAGES = 20  # turns sent back each time; keeps long chats under the server's caps

SETTINGS = [
    TextInput(id="system", label="System prompt", initial="", multiline=True,
              description="Put before your messages in the model's ###입력: block"),
    Slider(id="temperature", label="Temperature", initial=0.7, min=0.0, max=2.0, step=0.05),
    Slider(id="top_p", label="Top p", initial=0.95, min=0.05, max=1.0, step=0.05),
    Slider(id="max_tokens", label="Max tokens", initial=256, min=16, max=1024, step=16),
    NumberInput(id="seed", label="Seed (empty: random)", initial=None),
]


# What Chainlit's page names beyond its own server and has no setting for: preconnects to Google
# Fonts (the font itself comes from public/, see kositp chat), KaTeX's stylesheet from jsdelivr
# (only used with `latex`, which is off) and its banner on S3 as og:image. An offline GPU node
# would wait on them and log name-resolution errors.
_OFFLINE = (
    (re.compile(r'\s*<link rel="preconnect" href="https://[^"]*"[^>]*>'), ""),
    (re.compile(r'\s*<link\s+rel="stylesheet"\s+href="https://cdn\.jsdelivr\.net/npm/katex@[^"]*"\s*/>'), ""),
    (re.compile(r'(<meta property="og:image" content=")https://[^"]*'), r"\1/logo"),
)


def offline_html(html: str) -> str:
    for pattern, replacement in _OFFLINE:
        html = pattern.sub(replacement, html)
    return html


@chainlit_app.middleware("http")
async def serve_offline(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    if not response.headers.get("content-type", "").startswith("text/html"):
        return response
    body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
    if response.headers.get("content-encoding") == "gzip":  # Chainlit's GZip middleware runs inside this one
        body = gzip.decompress(body)
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-encoding")}
    return HTMLResponse(offline_html(body.decode("utf-8")), response.status_code, headers)


def model_line(card: Any) -> str:
    """Which model answers: its id and, when it came from the artifact store, the export version."""
    extra = card.model_extra or {}
    artifact, source, profile = extra.get("kositp_artifact"), extra.get("kositp_source"), extra.get("kositp_profile")
    if artifact:
        return f"Model **{card.id}**: {source} `{artifact}` of profile `{profile}`"
    return f"Model **{card.id}** (a model folder, not from the artifact store)"


def request_options(settings: dict[str, Any]) -> dict[str, Any]:
    options = {
        "temperature": float(settings.get("temperature", 0.7)),
        "top_p": float(settings.get("top_p", 0.95)),
        "max_tokens": int(settings.get("max_tokens", 256)),
    }
    if settings.get("seed") not in (None, ""):
        options["seed"] = int(settings["seed"])
    return options


@cl.on_chat_start
async def start() -> None:
    api = AsyncOpenAI(base_url=BASE_URL, api_key=os.environ.get("KOSITP_API_KEY") or "EMPTY", max_retries=0)
    cl.user_session.set("api", api)
    cl.user_session.set("history", [])
    cl.user_session.set("settings", await cl.ChatSettings(SETTINGS).send())
    try:
        card = (await api.models.list()).data[0]
    except (APIError, IndexError) as exc:
        await cl.Message(content=f"Cannot reach the model API at {BASE_URL}: {exc}").send()
        return
    cl.user_session.set("model", card.id)
    await cl.Message(content=model_line(card)).send()


@cl.on_settings_update
async def update_settings(settings: dict[str, Any]) -> None:
    cl.user_session.set("settings", settings)


@cl.on_message
async def answer(message: cl.Message) -> None:
    api: AsyncOpenAI = cl.user_session.get("api")
    model = cl.user_session.get("model")
    if model is None:
        await cl.Message(content=f"No model: the API at {BASE_URL} did not answer at the start.").send()
        return
    settings = cl.user_session.get("settings") or {}
    history: list[dict[str, str]] = cl.user_session.get("history")
    history.append({"role": "user", "content": message.content})
    system = (settings.get("system") or "").strip()
    messages = ([{"role": "system", "content": system}] if system else []) + history[-HISTORY_MESSAGES:]
    reply = cl.Message(content="")
    try:
        stream = await api.chat.completions.create(
            model=model, messages=messages, stream=True, **request_options(settings)
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                await reply.stream_token(chunk.choices[0].delta.content)
    except APIError as exc:
        history.pop()
        await cl.Message(content=f"The API refused: {exc.message}").send()
        return
    await reply.send()
    history.append({"role": "assistant", "content": reply.content})
