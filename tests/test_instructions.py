"""The instruction bank: validation rules, the offline bank, and the API client against a real
loopback HTTP server with scripted replies (good, duplicates, malformed, 429, 500, slow)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from kositp.catalog import SUPERNI_TASKS, get_task
from kositp.cli import app
from kositp.instructions.generate import (
    ACCEPTED_FILE,
    ApiSettings,
    ApiUnavailable,
    InstructionGenerator,
    MalformedReply,
    parse_reply,
)
from kositp.instructions.offline import load_offline
from kositp.instructions.stage import InstructionsConfig
from kositp.instructions.stage import run as run_stage
from kositp.instructions.validate import UNANSWERABLE_REPLY, TaskBank, check_text, rouge_l, tokens
from kositp.reporting import ConsoleReporter
from kositp.stages import StageContext, registry

API_KEY = "sk-test-abcdefghijklmnop"
SUMMARY = "task002_summarization"
TITLE = "task003_title_generation"
NAME_TO_ID = {t.name_ko: t.id for t in SUPERNI_TASKS}


class ScriptedServer:
    """An OpenAI-compatible /chat/completions endpoint; each request takes the next scripted action,
    and once the script is used up it answers with fresh, valid instructions for the asked task."""

    def __init__(self, script=()):
        self.script = deque(script)
        self.requests: Counter[str] = Counter()
        self.auth_headers: list[str] = []
        self.pools = {t.id: deque(load_offline(t.id)) for t in SUPERNI_TASKS}
        self.lock = threading.Lock()
        self.blocked = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"]
                task_id = NAME_TO_ID[re.search(r"작업 이름: (.+?) \(", prompt).group(1)]
                count = int(re.search(r"(\d+)개", prompt).group(1))
                with server.lock:
                    server.requests[task_id] += 1
                    server.auth_headers.append(self.headers.get("Authorization", ""))
                    action = server.script.popleft() if server.script else ("good",)
                server.respond(self, action, task_id, count)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def take(self, task_id: str, n: int) -> list[str]:
        with self.lock:
            return [self.pools[task_id].popleft() for _ in range(min(n, len(self.pools[task_id])))]

    def respond(self, handler, action, task_id: str, count: int) -> None:
        kind = action[0]
        if kind == "status":
            _, code, headers = action
            self.send(handler, code, {"error": {"message": "scripted failure", "type": "server_error"}}, headers)
            return
        if kind == "block":
            self.blocked.set()
            action[1].wait(60)
            content = "{}"
        elif kind == "slow":
            threading.Event().wait(action[1])
            content = json.dumps({"instructions": self.take(task_id, count)}, ensure_ascii=False)
        elif kind == "raw":
            content = action[1]
        elif kind == "duplicates":
            first = self.take(task_id, 1)[0]
            content = json.dumps({"instructions": [first, first, first + " ", first]}, ensure_ascii=False)
        elif kind == "numbered":
            content = "\n".join(f"{i}. {text}" for i, text in enumerate(self.take(task_id, count), 1))
        else:
            content = json.dumps({"instructions": self.take(task_id, count)}, ensure_ascii=False)
        self.send(handler, 200, {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "scripted",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}})

    @staticmethod
    def send(handler, code: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        try:
            handler.send_response(code)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    started = []

    def start(script=()):
        started.append(ScriptedServer(script))
        return started[-1]

    yield start
    for s in started:
        s.close()


def settings(base_url: str, **overrides) -> ApiSettings:
    values = {"base_url": base_url, "model": "scripted-model", "per_task": 10, "batch_size": 5, "max_requests": 50,
                  "timeout_s": 5.0, "max_attempts": 4, "backoff_s": 0.01, "max_backoff_s": 0.05}
    return ApiSettings(**(values | overrides))


def generator(base_url: str, staging: Path, task_ids=(SUMMARY, TITLE), sleeps=None, **overrides):
    tasks = [get_task(t) for t in task_ids]
    record = sleeps.append if sleeps is not None else (lambda s: None)
    return InstructionGenerator(settings(base_url, **overrides), API_KEY, staging, tasks,
                                {t.id: load_offline(t.id)[-5:] for t in tasks}, sleep=record)


# --- validation ---------------------------------------------------------------------------

@pytest.mark.parametrize(("task_id", "text", "reason"), [
    (SUMMARY, "요약해", "too_short"),
    (SUMMARY, "주어진 글의 내용을 간략하게 요약해 주세요. " * 12, "too_long"),
    (SUMMARY, "주어진 글을 읽고\n요약해 주세요.", "multiline"),
    (SUMMARY, "1. 주어진 글의 핵심 내용을 요약하시오.", "numbering"),
    (SUMMARY, "- 주어진 글의 핵심 내용을 요약하시오.", "numbering"),
    (SUMMARY, "\"주어진 글의 핵심 내용을 요약하시오.\"", "quoted"),
    (SUMMARY, "{input} 주어진 글의 핵심 내용을 요약하시오.", "template_leftover"),
    (SUMMARY, "지시문: 주어진 글의 핵심 내용을 요약하시오.", "template_leftover"),
    (SUMMARY, "Please summarize the given text briefly.", "not_korean"),
    ("task008_extractive_qa_yes_no", "주어진 글을 읽고 질문에 답하시오.", "task_fit"),
    ("task020_abstractive_qa_yes_no", "질문이 맞는지 틀린지 판단해 주세요.", "task_fit"),
    ("task004_abstractive_qa_objective", "질문에 대한 올바른 답을 고르시오.", "task_fit"),
    ("task021_extractive_qa_objective_explanation", "보기 중에서 올바른 답을 고르시오.", "task_fit"),
    ("task022_extractive_qa_yes_no_explanation", "질문에 예 또는 아니오로 답하시오.", "task_fit"),
    ("task001_answerability_classification", "질문에 답할 수 있는지 판단하시오.", "task_fit"),
])
def test_each_rule_rejects_its_case(task_id, text, reason):
    assert check_text(task_id, text).reason == reason


def test_fitting_instructions_pass():
    assert check_text("task008_extractive_qa_yes_no", "글을 읽고 예, 아니오로 답변하시오.") is None
    assert check_text("task021_extractive_qa_objective_explanation", "보기 중 답을 고르고 근거를 쓰시오.") is None
    assert check_text("task001_answerability_classification",
                      f"질문에 답하되 답이 없으면 {UNANSWERABLE_REPLY}이라고 쓰시오.") is None


def test_rouge_l_and_near_duplicates_counted_by_reason():
    assert rouge_l(tokens("가 나 다 라"), tokens("가 나 다 라")) == 1.0
    assert rouge_l(tokens("가 나"), tokens("다 라")) == 0.0
    assert rouge_l(tokens("가 나 다 라"), tokens("가 다 마 바")) == pytest.approx(0.5)
    bank = TaskBank(SUMMARY)
    assert bank.offer("주어진 글의 전반적인 내용을 간략하게 요약해주세요.")
    assert not bank.offer("주어진 글의 전반적인 내용을 간략하게 요약하시오.")
    assert not bank.offer("Summarize this.")
    assert bank.offer("기사를 읽고 필자가 말하려는 요지를 세 문장으로 정리하세요.")
    assert bank.rejected == Counter({"near_duplicate": 1, "not_korean": 1})


# --- offline bank --------------------------------------------------------------------------

@pytest.mark.parametrize("task", SUPERNI_TASKS, ids=lambda t: t.id)
def test_offline_bank_has_100_unique_valid_instructions(task):
    texts = load_offline(task.id)
    bank = TaskBank(task.id)
    accepted = bank.extend(texts)
    assert accepted == len(texts) >= 100, bank.rejected
    assert len(set(texts)) == len(texts)


def test_offline_stage_writes_bank_and_summary(tmp_path):
    config = InstructionsConfig(mode="offline", per_task=100)
    ctx = StageContext(out_dir=tmp_path, params=config.model_dump(), inputs={}, reporter=ConsoleReporter(show_progress=False),
                       config=config)
    outcome = run_stage(ctx)
    bank = pd.read_parquet(tmp_path / "bank.parquet")
    assert list(bank.columns) == ["task_id", "instruction_id", "instruction", "origin", "model", "prompt_version",
                                  "created_at"]
    assert len(bank) == 2200 and bank.instruction_id.is_unique and set(bank.origin) == {"offline"}
    assert bank.groupby("task_id").size().eq(100).all()
    summary = json.loads((tmp_path / "bank_summary.json").read_text(encoding="utf-8"))
    assert summary["tasks"] == 22 and summary["requests"] == 0 and outcome.rows == {"instructions": 2200}
    assert "instructions" in registry()


# --- reply parsing ---------------------------------------------------------------------------

def test_parse_reply_accepts_json_fenced_json_and_numbered_lists():
    assert parse_reply('{"instructions": ["가", "나"]}') == ["가", "나"]
    assert parse_reply('여기 있습니다.\n```json\n{"instructions": ["가"]}\n```') == ["가"]
    assert parse_reply("1. 첫째 지시문\n2) 둘째 지시문\n설명 문장") == ["첫째 지시문", "둘째 지시문"]
    assert parse_reply('1. "따옴표 친 지시문"') == ["따옴표 친 지시문"]
    with pytest.raises(MalformedReply):
        parse_reply('{"instructions": [')


# --- API client against the loopback server -------------------------------------------------

def test_counts_reach_target_with_real_client(server, tmp_path):
    srv = server()
    result = generator(srv.base_url, tmp_path).run()
    assert {t: len(b.accepted) for t, b in result.banks.items()} == {SUMMARY: 10, TITLE: 10}
    assert result.requests == sum(srv.requests.values()) == 4
    assert set(srv.auth_headers) == {f"Bearer {API_KEY}"}
    rows = [json.loads(line) for line in (tmp_path / ACCEPTED_FILE).read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 20 and {r["model"] for r in rows} == {"scripted-model"}


def test_faults_are_retried_and_counted(server, tmp_path):
    srv = server([
        ("status", 429, {"Retry-After": "0.02"}),
        ("status", 500, {}),
        ("status", 503, {}),
        ("raw", '{"instructions": ["깨진 JSON'),
        ("raw", "죄송하지만 지금은 답변할 수 없습니다."),
        ("slow", 2.0),
        ("duplicates",),
        ("numbered",),
    ])
    sleeps: list[float] = []
    result = generator(srv.base_url, tmp_path, sleeps=sleeps, timeout_s=0.5, max_attempts=10).run()
    assert all(len(b.accepted) == 10 for b in result.banks.values())
    assert result.failures == Counter({"rate_limited": 1, "server_error_500": 1, "server_error_503": 1,
                                       "malformed_reply": 2, "timeout": 1})
    assert 0.02 in sleeps  # Retry-After honoured
    assert sum(b.rejected["near_duplicate"] for b in result.banks.values()) == 3


def test_kill_mid_run_resumes_without_repeating_accepted_work(server, tmp_path):
    srv = server()
    killed = generator(srv.base_url, tmp_path, per_task=5)

    def kill(task_id: str, n: int) -> None:
        if task_id == TITLE and n == 2:
            raise KeyboardInterrupt

    killed.on_accept = kill
    with pytest.raises(KeyboardInterrupt):
        killed.run()
    assert srv.requests == Counter({SUMMARY: 1, TITLE: 1})
    resumed = generator(srv.base_url, tmp_path, per_task=5)
    assert {t: len(b.accepted) for t, b in resumed.result.banks.items()} == {SUMMARY: 5, TITLE: 2}
    result = resumed.run()
    assert {t: len(b.accepted) for t, b in result.banks.items()} == {SUMMARY: 5, TITLE: 5}
    assert srv.requests == Counter({SUMMARY: 1, TITLE: 2})  # nothing asked again for the full task
    assert result.requests == 3
    lines = (tmp_path / ACCEPTED_FILE).read_text(encoding="utf-8").splitlines()
    assert len(lines) == len({json.loads(line)["instruction"] for line in lines}) == 10


def test_sigkill_of_the_cli_resumes_without_re_requesting_accepted_work(server, tmp_path):
    release = threading.Event()
    srv = server([("good",), ("block", release)])
    out = tmp_path / "bank"
    command = [sys.executable, "-m", "kositp", "instructions", "--out", str(out), "--base-url", srv.base_url,
               "--model", "m", "--per-task", "5", "--json"]
    env = os.environ | {"OPENAI_API_KEY": API_KEY, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert srv.blocked.wait(120), "the second request never arrived"
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        release.set()
    assert srv.requests == Counter({SUPERNI_TASKS[0].id: 1, SUPERNI_TASKS[1].id: 1})
    second = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    final = json.loads(second.stdout.strip().splitlines()[-1])
    assert set(final["per_task"].values()) == {5}
    assert srv.requests[SUPERNI_TASKS[0].id] == 1  # the task filled before the kill was never asked again
    assert sum(srv.requests.values()) == 23 and final["requests"] == 22  # the killed request was never logged


def test_budget_stops_the_run_without_crashing(server, tmp_path):
    srv = server([("status", 500, {})] * 10)
    result = generator(srv.base_url, tmp_path, max_requests=3).run()
    assert result.budget_exhausted and result.requests == 3 == sum(srv.requests.values())


def test_missing_key_and_unreachable_server_name_the_offline_fallback(server, tmp_path):
    with pytest.raises(ApiUnavailable, match="offline"):
        InstructionGenerator(settings("http://127.0.0.1:9/v1"), None, tmp_path, [get_task(SUMMARY)], {})
    with pytest.raises(ApiUnavailable, match="cannot reach.*offline"):
        generator("http://127.0.0.1:9/v1", tmp_path, max_attempts=2).run()
    srv = server([("status", 401, {})])
    with pytest.raises(ApiUnavailable, match="rejected the API key.*offline"):
        generator(srv.base_url, tmp_path).run()


def test_api_stage_and_cli_keep_the_key_out_of_every_file(server, tmp_path, monkeypatch):
    srv = server([("status", 500, {})])
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    out = tmp_path / "bank"
    result = CliRunner().invoke(app, ["instructions", "--out", str(out), "--base-url", srv.base_url, "--model", "m",
                                      "--per-task", "5", "--json"])
    assert result.exit_code == 0, result.output
    final = json.loads(result.stdout.strip().splitlines()[-1])
    assert final["tasks"] == 22 and set(final["per_task"].values()) == {5} and final["requests"] == 23
    bank = pd.read_parquet(out / "bank.parquet")
    assert len(bank) == 110 and set(bank.origin) == {"api"} and set(bank.model) == {"m"}
    for path in out.rglob("*"):
        assert API_KEY.encode() not in path.read_bytes(), path
    assert API_KEY not in result.output


def test_cli_offline_json_line(tmp_path):
    result = CliRunner().invoke(app, ["instructions", "--out", str(tmp_path), "--offline", "--per-task", "100",
                                      "--json"])
    assert result.exit_code == 0, result.output
    final = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(final) == {"tasks", "per_task", "requests", "rejected"} and final["tasks"] == 22


def test_cli_without_key_exits_with_one_clear_message(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = CliRunner().invoke(app, ["instructions", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 1 and "OPENAI_API_KEY" in result.output and "--offline" in result.output


def test_the_profile_section_hands_every_api_setting_to_the_generator():
    changed = {
        name: {str: lambda v: f"{v}-다른값", float: lambda v: v / 2, int: lambda v: v + 1}[type(field.default)](
            field.default
        )
        for name, field in ApiSettings.model_fields.items()
    }
    config = InstructionsConfig(mode="api", tasks=[SUMMARY], **changed)
    assert config.api_settings() == ApiSettings(**changed)
    assert set(ApiSettings.model_fields) < set(InstructionsConfig.model_fields)


@pytest.mark.parametrize("bad", [{"temperature": 3.0}, {"max_attempts": 0}, {"top_p": 0}, {"max_reply_tokens": 8}])
def test_api_settings_are_validated_wherever_they_are_built(bad):
    from pydantic import ValidationError

    for model in (ApiSettings, InstructionsConfig):
        with pytest.raises(ValidationError):
            model(**bad)
