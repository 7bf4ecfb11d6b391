"""The vllm backend without a GPU, and the serving pieces that need no server.

``kositp serve --backend vllm`` is run for real against a stand-in for vLLM's server
(``fake_vllm_server.py``, reached through a ``vllm.entrypoints.openai.api_server`` shim on
PYTHONPATH): the command line it starts, what the proxy forwards and to whom, the gate in front,
and that the upstream process ends with the server. vLLM itself was not run here (no GPU).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import httpx
import openai
import pytest
from serving import API_KEY, PROFILE, build_export, free_port, kositp, running, write_profile

from kositp.errors import InputNotFound, PermanentError
from kositp.models.prompt_format import STOP_MARKER
from kositp.serve import server as serve_server
from kositp.serve.admission import Admission, QueueFull
from kositp.serve.hf_backend import StopScanner
from kositp.serve.schemas import ChatRequest, CompletionRequest
from kositp.serve.source import served_model
from kositp.serve.vllm_backend import VLLMError, upstream_body, vllm_command, vllm_python

TESTS = Path(__file__).resolve().parent
KOREAN = "대한민국의 수도는 어디인가요?"


@pytest.fixture(scope="module")
def export(tiny_model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve-vllm")
    version, merged = build_export(tiny_model_dir, folder / "artifacts")
    return {"version": version, "merged": merged, "folder": folder}


def vllm_shim(folder: Path) -> Path:
    """A ``vllm`` package whose OpenAI server module runs the stand-in."""
    module = folder / "vllm" / "entrypoints" / "openai"
    module.mkdir(parents=True)
    for package in (folder / "vllm", folder / "vllm" / "entrypoints", module):
        (package / "__init__.py").write_text("", encoding="utf-8")
    (module / "api_server.py").write_text("from fake_vllm_server import main\n\nmain()\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def proxied(export):
    folder = export["folder"]
    shim, record = vllm_shim(folder / "shim"), folder / "upstream.jsonl"
    port = free_port()
    env = {"KOSITP_API_KEY": API_KEY, "FAKE_VLLM_RECORD": str(record),
           "PYTHONPATH": os.pathsep.join([str(shim), str(TESTS), os.environ.get("PYTHONPATH", "")])}
    args = kositp("serve", "--model", str(export["merged"]), "--port", str(port), "--backend", "vllm",
                  "--vllm-python", sys.executable, "--max-tokens", "64")
    with running(args, folder / "serve.log", f"http://127.0.0.1:{port}/health", env=env):
        yield {"url": f"http://127.0.0.1:{port}", "record": record, "log": folder / "serve.log"}
    upstream_pid = json.loads(record.read_text(encoding="utf-8").splitlines()[0])["pid"]
    with pytest.raises(ProcessLookupError):
        os.kill(upstream_pid, 0)  # the vLLM server ended with ours


def upstream_rows(proxied) -> list[dict]:
    return [json.loads(line) for line in proxied["record"].read_text(encoding="utf-8").splitlines()]


def test_vllm_backend_starts_the_upstream_on_loopback_with_its_own_key(proxied):
    start = upstream_rows(proxied)[0]
    argv = start["argv"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--served-model-name") + 1] == "kositp"
    assert start["key_length"] >= 32
    assert API_KEY not in " ".join(argv)


def test_requests_are_proxied_with_the_stop_marker_and_the_upstream_key(proxied):
    client = openai.OpenAI(base_url=proxied["url"] + "/v1", api_key=API_KEY, max_retries=0)
    chat = client.chat.completions.create(model="kositp", messages=[{"role": "user", "content": KOREAN}],
                                          stop=["끝"], seed=1)
    assert chat.choices[0].message.content == "서울입니다."
    stream = client.completions.create(model="kositp", prompt=KOREAN, max_tokens=8, stream=True)
    assert "".join(c.choices[0].text for c in stream) == "서울입니다."
    forwarded = [row for row in upstream_rows(proxied) if "path" in row][-2:]
    chat_body, completion_body = forwarded[0]["body"], forwarded[1]["body"]
    assert chat_body["stop"] == ["끝", STOP_MARKER] and chat_body["add_special_tokens"] is True
    assert chat_body["max_tokens"] == 64  # no max_tokens asked: the default, within the cap
    assert chat_body["seed"] == 1 and chat_body["messages"][0]["content"] == KOREAN
    assert completion_body["max_tokens"] == 8 and completion_body["stream"] is True
    for row in forwarded:
        assert row["authorization"].startswith("Bearer ") and API_KEY not in row["authorization"]
    assert "kositp_artifact" in httpx.get(proxied["url"] + "/v1/models",
                                          headers={"Authorization": f"Bearer {API_KEY}"}).text


def test_the_gate_refuses_before_anything_reaches_vllm(proxied):
    before = len(upstream_rows(proxied))
    assert httpx.post(proxied["url"] + "/v1/completions", json={"model": "kositp", "prompt": "안녕"}).status_code == 401
    headers = {"Authorization": f"Bearer {API_KEY}"}
    too_many = httpx.post(proxied["url"] + "/v1/completions", headers=headers,
                          json={"model": "kositp", "prompt": "안녕", "max_tokens": 65})
    assert too_many.status_code == 400 and "cap of 64" in too_many.json()["error"]["message"]
    assert len(upstream_rows(proxied)) == before
    assert httpx.get(proxied["url"] + "/health").json()["backend"] == "vllm"


def test_auto_picks_vllm_only_with_a_gpu_and_a_vllm_python(monkeypatch, tmp_path):
    monkeypatch.delenv("KOSITP_VLLM_PYTHON", raising=False)
    from kositp.evaluate import backends

    monkeypatch.setattr(backends, "gpu_available", lambda: True)
    assert serve_server.choose_backend("auto", None).name == "hf"
    assert serve_server.choose_backend("auto", sys.executable).name == "vllm"
    monkeypatch.setattr(backends, "gpu_available", lambda: False)
    assert serve_server.choose_backend("auto", sys.executable).name == "hf"
    assert serve_server.choose_backend("vllm", None).name == "vllm"
    with pytest.raises(PermanentError, match="unknown backend"):
        serve_server.choose_backend("tgi", None)
    with pytest.raises(VLLMError, match="KOSITP_VLLM_PYTHON"):
        vllm_python(None)
    with pytest.raises(VLLMError, match="does not exist"):
        vllm_python(str(tmp_path / "no-python"))


def test_vllm_command_and_forwarded_body(export):
    from kositp.serve.source import ServedModel

    served = ServedModel(path=export["merged"], name="kositp-demo", source="promoted", artifact="export/x")
    command = vllm_command("/opt/vllm/bin/python", served, 9123, 2048, ("--gpu-memory-utilization", "0.8"))
    assert command[:3] == ["/opt/vllm/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    assert command[command.index("--model") + 1] == str(export["merged"])
    assert command[command.index("--max-model-len") + 1] == "2048" and command[-1] == "0.8"
    chat = ChatRequest(model="kositp-demo", messages=[{"role": "user", "content": KOREAN}], max_completion_tokens=9)
    body = upstream_body(chat, 9, (STOP_MARKER,))
    assert body["max_tokens"] == 9 and "max_completion_tokens" not in body and body["stop"] == [STOP_MARKER]
    completion = CompletionRequest(model="kositp-demo", prompt=KOREAN, stop=STOP_MARKER)
    assert upstream_body(completion, 4, (STOP_MARKER,))["stop"] == [STOP_MARKER]
    assert "add_special_tokens" not in upstream_body(completion, 4, (STOP_MARKER,))


def test_the_latest_export_is_served_when_nothing_was_promoted(export, tmp_path):
    from kositp.promote.record import record_path

    profile = write_profile(tmp_path, export["folder"] / "artifacts")
    promoted = served_model(None, str(profile))
    assert promoted.source == "promoted" and promoted.artifact == f"export/{export['version']}"
    record_path(export["folder"] / "artifacts", PROFILE).rename(tmp_path / "moved-aside.json")
    try:
        latest = served_model(None, str(profile))
        assert latest.source == "latest" and latest.artifact == f"export/{export['version']}"
        assert latest.name == f"kositp-{PROFILE}" and latest.path == export["merged"]
    finally:
        (tmp_path / "moved-aside.json").rename(record_path(export["folder"] / "artifacts", PROFILE))
    with pytest.raises(InputNotFound, match="no export to serve"):
        (tmp_path / "empty").mkdir()
        served_model(None, str(write_profile(tmp_path / "empty", tmp_path / "nothing")))
    with pytest.raises(InputNotFound, match="not a model folder"):
        served_model(str(tmp_path), None)


def test_stop_strings_are_never_streamed_in_part():
    scanner = StopScanner((STOP_MARKER, "끝."))
    assert scanner.safe_end("서울입니다$&") == len("서울입니다")  # may be the marker's start: held back
    assert scanner.safe_end("서울입니다 끝") == len("서울입니다 ")
    assert scanner.safe_end("서울\ufffd") == len("서울")  # half a character: held back
    assert scanner.safe_end("서울입니다") == len("서울입니다")
    assert scanner.first_stop("서울입니다 끝. 그리고", 0) == len("서울입니다 ")
    assert scanner.first_stop("서울$&%입니다 끝.", 2) == 2


def test_admission_refuses_once_slots_and_queue_are_full():
    async def scenario() -> None:
        admission = Admission(slots=1, waiting=1)
        await admission.acquire()
        waiter = asyncio.create_task(admission.acquire())
        await asyncio.sleep(0)
        assert admission.state()["waiting"] == 1
        with pytest.raises(QueueFull):
            await admission.acquire()
        admission.release()
        await waiter
        assert admission.state() == {"active": 1, "waiting": 0, "slots": 1, "queue": 1}

    asyncio.run(scenario())


def test_serve_cli_fails_in_one_line_without_an_export_or_with_both_sources(tmp_path):
    from typer.testing import CliRunner

    from kositp.cli import app

    (tmp_path / "empty").mkdir()
    profile = write_profile(tmp_path / "empty", tmp_path / "nothing")
    nothing = CliRunner().invoke(app, ["serve", "--profile", str(profile)])
    assert nothing.exit_code == 2
    assert "no export to serve" in nothing.output and f"kositp run --profile {PROFILE}" in nothing.output
    both = CliRunner().invoke(app, ["serve", "--profile", str(profile), "--model", str(tmp_path)])
    assert both.exit_code == 2 and "not both" in both.output


def test_a_generation_failing_mid_stream_ends_with_an_error_event():
    from kositp.serve.responses import Answer, stream_events

    async def failing():
        yield "서울"
        raise RuntimeError("device lost")

    async def drain() -> list[str]:
        return [chunk async for chunk in stream_events(Answer("chat", "kositp", None), failing(), False)]

    chunks = asyncio.run(drain())
    assert json.loads(chunks[1][len("data: "):])["choices"][0]["delta"]["content"] == "서울"
    assert "device lost" in json.loads(chunks[-2][len("data: "):])["error"]["message"]
    assert chunks[-1] == "data: [DONE]\n\n"


def test_sigterm_while_vllm_is_loading_stops_it(export, tmp_path):
    import subprocess
    import time

    record = tmp_path / "upstream.jsonl"
    env = {**os.environ, "FAKE_VLLM_RECORD": str(record), "FAKE_VLLM_LOAD_S": "600",
           "PYTHONPATH": os.pathsep.join([str(vllm_shim(tmp_path / "shim")), str(TESTS)])}
    args = kositp("serve", "--model", str(export["merged"]), "--port", str(free_port()), "--backend", "vllm",
                  "--vllm-python", sys.executable)
    with open(tmp_path / "serve.log", "wb") as log:
        server = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not record.is_file() and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.2)
        upstream_pid = json.loads(record.read_text(encoding="utf-8").splitlines()[0])["pid"]
        server.terminate()
        assert server.wait(60) == 143
    with pytest.raises(ProcessLookupError):
        os.kill(upstream_pid, 0)
