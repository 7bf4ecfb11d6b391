"""``kositp serve`` over real HTTP on loopback, serving a promoted export of the tiny model.

One server (a ``kositp serve`` subprocess, as a user starts it) is shared by the module; it
serves the profile's promoted export and requires an API key. The ``openai`` client, raw
``httpx`` requests and the instructions stage talk to it; the chat page test is in
``test_serve_chat.py``.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import selectors
import signal
import socket
import time

import httpx
import openai
import psutil
import pytest
from serving import API_KEY, build_export, free_port, kositp, running, write_profile

from kositp.serve.app import ARTIFACT_HEADER

pytestmark = pytest.mark.slow
LIMITS = ["--concurrency", "2", "--queue-size", "6", "--max-tokens", "512", "--max-prompt-tokens", "1536",
          "--max-messages", "8", "--max-body-bytes", "65536"]
KOREAN = "대한민국의 수도는 어디인가요?"


@pytest.fixture(scope="module")
def export(tiny_model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    version, merged = build_export(tiny_model_dir, folder / "artifacts")
    return {"version": version, "merged": merged, "profile": write_profile(folder, folder / "artifacts"),
            "folder": folder}


@pytest.fixture(scope="module")
def api(export):
    port = free_port()
    log = export["folder"] / "serve.log"
    args = kositp("serve", "--profile", str(export["profile"]), "--port", str(port), *LIMITS)
    with running(args, log, f"http://127.0.0.1:{port}/health", env={"KOSITP_API_KEY": API_KEY}):
        yield {"url": f"http://127.0.0.1:{port}", "log": log, "model": "kositp-servetest", **export}


def client(api) -> openai.OpenAI:
    return openai.OpenAI(base_url=api["url"] + "/v1", api_key=API_KEY, max_retries=0)


def post(api, path: str, body, **kwargs) -> httpx.Response:
    content = body if isinstance(body, (str, bytes)) else json.dumps(body, ensure_ascii=False)
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json", **kwargs.pop("headers", {})}
    return httpx.post(api["url"] + path, content=content, headers=headers, timeout=60, **kwargs)


def test_serves_the_promoted_export_and_says_which(api):
    card = client(api).models.list().data[0]
    assert card.id == api["model"]
    assert card.model_extra["kositp_artifact"] == f"export/{api['version']}"
    assert card.model_extra["kositp_source"] == "promoted"
    health = httpx.get(api["url"] + "/health").json()
    assert health["status"] == "ok" and health["artifact"] == f"export/{api['version']}"
    reply = post(api, "/v1/completions", {"model": api["model"], "prompt": KOREAN, "max_tokens": 2})
    assert reply.headers[ARTIFACT_HEADER] == f"export/{api['version']}"
    assert reply.json()["system_fingerprint"] == f"export/{api['version']}"
    assert f"promoted export/{api['version']}" in api["log"].read_text(encoding="utf-8")


def test_openai_client_gets_a_completion_a_chat_completion_and_a_stream(api):
    from transformers import AutoTokenizer

    api_client = client(api)
    completion = api_client.completions.create(model=api["model"], prompt=KOREAN, max_tokens=12, seed=7)
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert 1 <= completion.usage.completion_tokens <= 12

    messages = [{"role": "system", "content": "한국어로 짧게 답하세요."}, {"role": "user", "content": KOREAN}]
    chat = api_client.chat.completions.create(model=api["model"], messages=messages, max_tokens=16, seed=3,
                                              temperature=0.8, top_p=0.9)
    tokenizer = AutoTokenizer.from_pretrained(str(api["merged"]))
    rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert rendered == f"###입력:한국어로 짧게 답하세요.{KOREAN}\n\n###출력:"  # the seed format, baked in at export
    assert chat.usage.prompt_tokens == len(tokenizer(rendered)["input_ids"])
    assert chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens

    stream = api_client.chat.completions.create(model=api["model"], messages=messages, max_tokens=16, seed=3,
                                                temperature=0.8, top_p=0.9, stream=True,
                                                stream_options={"include_usage": True})
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) >= 2, "the answer arrives in pieces"
    assert "".join(pieces) == chat.choices[0].message.content  # same seed, same answer, streamed or not
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == chat.choices[0].finish_reason
    assert chunks[-1].usage.completion_tokens == chat.usage.completion_tokens


def test_max_tokens_stop_and_seed_are_honoured(api):
    api_client = client(api)
    args = {"model": api["model"], "prompt": KOREAN, "temperature": 1.0, "seed": 11}
    long = api_client.completions.create(max_tokens=40, **args).choices[0]
    short = api_client.completions.create(max_tokens=3, **args)
    assert short.usage.completion_tokens == 3 and short.choices[0].finish_reason == "length"
    assert long.text.startswith(short.choices[0].text)
    assert api_client.completions.create(max_tokens=40, **args).choices[0].text == long.text
    visible = long.text.replace("\ufffd", "")
    stop = visible[len(visible) // 2 : len(visible) // 2 + 2]
    cut = api_client.completions.create(max_tokens=40, stop=[stop], **args).choices[0]
    assert cut.finish_reason == "stop" and stop not in cut.text
    assert cut.text == long.text[: long.text.index(stop)]


def test_requests_without_the_key_get_401_and_the_key_is_never_logged(api):
    for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": API_KEY}):
        reply = httpx.post(api["url"] + "/v1/completions", headers=headers, json={"model": "x", "prompt": "안녕"})
        assert reply.status_code == 401
        assert "API key" in reply.json()["error"]["message"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=api["url"] + "/v1", api_key="wrong", max_retries=0).models.list()
    assert API_KEY not in api["log"].read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ('{"model": "kositp-servetest", "prompt": "안녕"', 400, "not valid JSON"),
        ("[1, 2]", 400, "JSON object"),
        ({"prompt": "안녕"}, 400, "model"),
        ({"model": "kositp-servetest", "prompt": "안녕", "max_tokens": -5}, 400, "max_tokens"),
        ({"model": "kositp-servetest", "prompt": "안녕", "max_tokens": 10**9}, 400, "cap of 512"),
        ({"model": "kositp-servetest", "prompt": "안녕", "temperature": "hot"}, 400, "temperature"),
        ({"model": "kositp-servetest", "prompt": "안녕하세요 " * 2000}, 400, "at most 1536"),
        ({"model": "kositp-servetest", "prompt": "안녕", "logprobs": 3}, 400, "logprobs"),
        ({"model": "kositp-servetest", "prompt": ["하나", "둘"]}, 400, "one prompt"),
        ({"model": "kositp-servetest", "prompt": "안녕", "stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
        ({"model": "다른-모델", "prompt": "안녕"}, 404, "not served here"),
        ({"model": "kositp-servetest", "prompt": "안녕" * 40000}, 413, "65536 bytes"),
    ],
)
def test_bad_completion_requests_get_4xx_in_openai_shape(api, body, status, says):
    reply = post(api, "/v1/completions", body)
    assert reply.status_code == status
    error = reply.json()["error"]
    assert says in error["message"] and set(error) == {"message", "type", "param", "code"}


def test_bad_chat_requests_get_4xx(api):
    many = [{"role": "user", "content": f"질문 {i}"} for i in range(9)]
    assert "at most 8" in post(api, "/v1/chat/completions", {"model": api["model"], "messages": many}).text
    for messages in ([], [{"role": "robot", "content": "안녕"}], [{"role": "user"}]):
        reply = post(api, "/v1/chat/completions", {"model": api["model"], "messages": messages})
        assert reply.status_code == 400 and reply.json()["error"]["param"].startswith("messages")
    with pytest.raises(openai.BadRequestError, match="cap of 512"):
        client(api).chat.completions.create(model=api["model"], messages=many[:1], max_tokens=100000)


@pytest.mark.parametrize(("body", "param", "says"), [
    ('{"model": "kositp-servetest", "prompt": "안녕\\ud800"}', "prompt", "lone surrogate (U+D800) at character 2"),
    ('{"model": "kositp-servetest", "messages": [{"role": "user", "content": "\\udc00하세요"}]}', "messages.0.content",
     "lone surrogate (U+DC00) at character 0"),
    ('{"model": "kositp-servetest", "messages": [{"role": "user", "content": [{"type": "text", "text": "질문\\ud83d"}]}]}',
     "messages.0.content", "lone surrogate (U+D83D) at character 2"),
    ('{"model": "kositp-servetest", "prompt": "안녕", "max_tokens": true}', "max_tokens", "valid integer"),
    ('{"model": "kositp-servetest", "prompt": "안녕", "stream": "yes"}', "stream", "valid boolean"),
    ('{"model": "kositp-servetest", "prompt": "안녕", "n": true}', "n", "valid integer"),
    ('{"model": "kositp-servetest", "prompt": "안녕", "temperature": "0.5"}', "temperature", "valid number"),
])
def test_text_that_is_not_text_and_values_of_the_wrong_type_get_400(api, body, param, says):
    """A lone surrogate gave a 500 and two tracebacks per request; ``max_tokens: true`` was taken as 1 and
    ``stream: "yes"`` streamed."""
    path = "/v1/chat/completions" if "messages" in body else "/v1/completions"
    before = api["log"].read_text(encoding="utf-8").count("Traceback")
    reply = post(api, path, body)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["param"] == param and says in error["message"] and error["type"] == "invalid_request_error"
    assert api["log"].read_text(encoding="utf-8").count("Traceback") == before


def _hold(port: int, count: int) -> list[socket.socket]:
    """Connections that start a request and never send the blank line that ends its headers."""
    held = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", port), timeout=10)
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        held.append(connection)
    return held


def _closed_by_the_server(connection: socket.socket, wait_s: float) -> bool:
    """A clean close, or a reset (the server closed it with the request's bytes unread)."""
    connection.settimeout(wait_s)
    try:
        return connection.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    finally:
        connection.close()


def _closed_count(connections: list[socket.socket], enough: int, wait_s: float) -> int:
    """How many of ``connections`` the server closed, waiting up to ``wait_s`` for ``enough`` of them."""
    closed, deadline = 0, time.monotonic() + wait_s
    with selectors.DefaultSelector() as selector:
        for connection in connections:
            selector.register(connection, selectors.EVENT_READ)
        while closed < enough and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
                selector.unregister(key.fileobj)
                closed += _closed_by_the_server(key.fileobj, 0)
    for connection in connections:
        connection.close()
    return closed


def test_connections_that_never_finish_their_headers_are_shed_and_health_still_answers(export, tmp_path):
    """About 21,000 of them used up the 20,000 open files: /health stopped answering and asyncio logged a
    traceback per failed accept (513,367 lines in 40 s). Here 600 against a limit of 512 open files (room for
    64 connections), with a header deadline long enough that only the cap can make room."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    limited = ["sh", "-c", 'ulimit -n 512 && exec "$@"', "sh", *kositp("serve", "--model", str(export["merged"]),
                                                                         "--port", str(port), "--header-timeout", "300")]
    with running(limited, log, url + "/health"):
        started = len(log.read_text(encoding="utf-8").splitlines())
        held = _hold(port, 600)
        assert httpx.get(url + "/health", timeout=10).json()["status"] == "ok"
        assert _closed_count(held, 600 - 64, 20) >= 600 - 64, "the connections waiting longest made room"
        lines = log.read_text(encoding="utf-8").splitlines()[started:]
    assert len(lines) < 40, "\n".join(lines[:60])


def test_a_connection_is_closed_when_its_headers_do_not_arrive_in_time(export, tmp_path):
    """Before its first request, and after a response on a kept-alive connection."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = kositp("serve", "--model", str(export["merged"]), "--port", str(port), "--header-timeout", "1")
    with running(args, tmp_path / "serve.log", url + "/health"):
        held = _hold(port, 3)
        kept_alive = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        kept_alive.request("GET", "/health")
        assert json.loads(kept_alive.getresponse().read())["status"] == "ok"
        kept_alive.sock.sendall(b"GET /health HTTP/1.1\r\n")
        assert [_closed_by_the_server(connection, 30) for connection in [*held, kept_alive.sock]] == [True] * 4
        assert httpx.get(url + "/health", timeout=10).json()["status"] == "ok"


def test_a_burst_of_32_is_answered_or_refused_with_429_and_the_server_stays_healthy(api):
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            body = {"model": api["model"], "prompt": KOREAN, "max_tokens": 200, "temperature": 0, "stream": False}
            return await asyncio.gather(*(http.post(api["url"] + "/v1/completions", json=body) for _ in range(32)))

    replies = asyncio.run(burst())
    statuses = [r.status_code for r in replies]
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) >= 8 and statuses.count(429) >= 1, statuses
    refused = next(r for r in replies if r.status_code == 429)
    assert refused.headers["Retry-After"] == "1" and "server busy" in refused.json()["error"]["message"]
    health = httpx.get(api["url"] + "/health").json()
    assert health["status"] == "ok" and health["requests"]["active"] == 0 and health["requests"]["waiting"] == 0
    assert post(api, "/v1/completions", {"model": api["model"], "prompt": KOREAN, "max_tokens": 2}).status_code == 200


def test_an_abandoned_stream_frees_its_slot(api):
    body = {"model": api["model"], "prompt": KOREAN, "max_tokens": 512, "temperature": 0, "stream": True}
    for _ in range(4):  # more abandoned streams than slots + queue would fit if slots leaked
        with httpx.stream("POST", api["url"] + "/v1/completions", json=body,
                          headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60) as reply:
            next(reply.iter_lines())
    reply = post(api, "/v1/completions", {"model": api["model"], "prompt": KOREAN, "max_tokens": 2})
    assert reply.status_code == 200


def test_the_instructions_stage_can_use_the_server(api, tmp_path):
    from kositp.catalog import SUPERNI_TASKS
    from kositp.instructions.generate import ApiSettings, InstructionGenerator

    settings = ApiSettings(base_url=api["url"] + "/v1", model=api["model"], per_task=1, max_requests=2,
                           max_attempts=1, max_reply_tokens=64, backoff_s=0, examples_per_request=0)
    result = InstructionGenerator(settings, API_KEY, tmp_path, [SUPERNI_TASKS[0]], {}).run()
    assert result.requests >= 1 and result.tokens > 0  # usage came back from our server
    assert not [f for f in result.failures if f.startswith(("http_", "server_error", "connection"))], result.failures


def test_the_evaluator_generates_through_the_server_and_choice_is_refused_by_name(api):
    from kositp.evaluate.backends import OpenAIBackend, Sampling

    backend = OpenAIBackend(api["url"] + "/v1", api["model"], api_key=API_KEY)
    prompt = "###입력:이 영화 정말 재미있었어요.\n\n###출력:"
    texts = backend.generate([prompt, prompt], Sampling(max_new_tokens=6), lambda n: None)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    with pytest.raises(openai.BadRequestError, match="structured_outputs"):
        backend.choose([prompt], ["긍정", "부정"], lambda n: None)


def test_sigterm_lets_a_running_stream_finish(export, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = kositp("serve", "--model", str(export["merged"]), "--port", str(port), "--concurrency", "1")
    with running(args, tmp_path / "serve.log", url + "/health") as server:
        body = {"model": "kositp", "prompt": KOREAN, "max_tokens": 1024, "temperature": 0, "stream": True}
        with httpx.stream("POST", url + "/v1/completions", json=body, timeout=120) as reply:
            lines = reply.iter_lines()
            first = next(line for line in lines if line.startswith("data: "))
            server.send_signal(signal.SIGTERM)
            rest = [line for line in lines if line.startswith("data: ")]
        assert server.wait(60) == -signal.SIGTERM  # uvicorn re-raises the signal once it has drained
    assert rest[-1] == "data: [DONE]"
    final = json.loads(rest[-2][len("data: "):])
    assert final["choices"][0]["finish_reason"] in ("length", "stop")
    assert len(rest) > 10, f"the stream went on after SIGTERM: {first} ..."
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health")


def test_the_chat_page_streams_a_reply_in_a_real_browser(api, tmp_path):
    """Debian's chromium driven by Playwright: the page names the artifact, takes settings, streams a reply."""
    import os

    from browser import ensure_chromium

    chromium, why = ensure_chromium()
    if chromium is None:
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    port = free_port()
    page_url = f"http://127.0.0.1:{port}"
    args = kositp("chat", "--api-url", api["url"] + "/v1", "--port", str(port))
    with running(args, tmp_path / "chat.log", page_url, env={"KOSITP_API_KEY": API_KEY}, cwd=tmp_path) as chat, \
            sync_playwright() as play:
        page_processes = psutil.Process(chat.pid).children(recursive=True)
        browser = play.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 640})
        frames: list[str] = []
        page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: frames.append(str(frame))))
        outside: list[str] = []  # an offline GPU node has no internet: every request stays on loopback
        page.route("**/*", lambda route: route.continue_() if _loopback(route.request.url)
                   else (outside.append(route.request.url), route.abort()))
        page.goto(page_url)
        answers = page.locator('[data-step-type="assistant_message"]')
        answers.first.wait_for(timeout=60_000)
        assert f"export/{api['version']}" in answers.first.inner_text()

        page.locator("#chat-settings-open-modal").click()
        page.locator("textarea#system").fill("한국어로 짧게 답하세요.")
        page.locator("#max_tokens [role=slider]").press("Home")  # the slider's minimum: 16 tokens
        page.locator("#temperature [role=slider]").press("Home")  # greedy: a sampled first token can end the reply
        page.get_by_role("button", name="Confirm").click()
        page.locator("#chat-input").fill(KOREAN)
        page.keyboard.press("Enter")
        page.wait_for_function(
            """() => { const m = document.querySelectorAll('[data-step-type="assistant_message"]');
                       return m.length >= 2 && m[m.length - 1].innerText.trim().length > 0; }""",
            timeout=60_000,
        )
        tokens = count_settled(lambda: sum("stream_token" in frame for frame in frames), page)
        assert tokens >= 2, "the reply arrived as a stream of tokens"
        assert 2 <= tokens <= 16, f"{tokens} pieces streamed; the Max tokens setting (16) was not applied"
        assert page.get_by_text(KOREAN).count() >= 1
        page.evaluate("() => document.querySelectorAll('*').forEach(e => { e.scrollTop = 0; })")
        page.screenshot(path=os.environ.get("KOSITP_CHAT_SCREENSHOT", str(tmp_path / "chat.png")))
        named = page.eval_on_selector_all(  # what the page names but may not fetch: preconnects, og:image
            "link[href], script[src], img[src], meta[property='og:image']",
            "nodes => nodes.map(n => new URL(n.href || n.src || n.content, document.baseURI).href)",
        )
        assert page.evaluate("""async () => { await document.fonts.ready;
            return [...document.fonts].some(f => f.family.replace(/["']/g, '') === 'Inter' && f.status === 'loaded'); }"""
        ), "the page's font (Inter) comes with the page"
        browser.close()
    assert outside == [], f"the chat page reached beyond loopback: {outside}"
    assert [url for url in named if not _loopback(url)] == []
    assert not (tmp_path / ".chainlit").exists() and not (tmp_path / ".files").exists()  # Chainlit's litter
    assert page_processes and not [p for p in page_processes if p.is_running() and p.status() != "zombie"]


def _loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    return urlsplit(url).scheme in ("data", "blob") or urlsplit(url).hostname in ("127.0.0.1", "localhost")


def count_settled(count, page, quiet_ms: int = 1500, limit_s: float = 60.0) -> int:
    """``count()`` once it stopped changing for ``quiet_ms`` (the streamed reply has ended)."""
    import time

    deadline, last, since = time.monotonic() + limit_s, -1, time.monotonic()
    while time.monotonic() < deadline:
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > quiet_ms / 1000:
            break
        page.wait_for_timeout(200)
    return last


def test_serve_takes_any_model_reference_a_profile_takes(tmp_path, monkeypatch):
    from kositp.serve.source import served_model

    monkeypatch.setenv("KOSITP_MODEL_CACHE", str(tmp_path))
    served = served_model("tiny-llama:hidden=16,layers=1,heads=2,kv_heads=1", None)
    assert served.source == "path" and served.path.parent == tmp_path / "models"
    assert (served.path / "config.json").is_file()
