"""Ask an OpenAI-compatible chat model for instructions until every task has enough, or the budget ends.

Why it is shaped this way: requests cost money and servers fail. Every accepted instruction is
appended to ``accepted.jsonl`` the moment it is accepted, and every request to ``requests.jsonl``,
so a killed run resumes with its accepted work and its spent budget, and never asks again for a
task that is already full. Rate limits, server errors, timeouts and malformed replies are retried
with backoff; only a missing key, a rejected key, an unknown model or a server that stays unreachable for all
attempts of one request stop the run (accepted work stays on disk), with one message that names
the offline bank as the fallback.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from kositp.catalog import Task
from kositp.config import REPO_ROOT, StageConfig
from kositp.instructions.validate import (
    ANSWERABILITY_TASK,
    CHOICE_TASKS,
    EXPLANATION_TASKS,
    YES_NO_TASKS,
    TaskBank,
)
from kositp.secrets import redact

log = logging.getLogger("kositp.instructions")

PROMPTS_PATH = REPO_ROOT / "prompts" / "instruction_generation.yaml"
ACCEPTED_FILE = "accepted.jsonl"
REQUESTS_FILE = "requests.jsonl"
FALLBACK_HINT = ("use the shipped offline bank instead (prompts/offline_bank): "
                 "`kositp instructions --offline` or the profile setting instructions.mode=offline")
_NUMBERED = re.compile(r"^\s*(?:\d+\s*[.)\]:]|[-*•])\s*(.+?)\s*$")


class ApiUnavailable(RuntimeError):
    """The API cannot be used at all (no key, key rejected, server unreachable, model unknown)."""


class MalformedReply(ValueError):
    pass


class ApiSettings(StageConfig):
    """How the generator talks to an OpenAI-compatible API: the one place these fields and their
    limits are declared (the ``instructions`` profile section extends it)."""

    base_url: str = Field(
        "https://api.openai.com/v1",
        description="api: the OpenAI-compatible endpoint (OpenAI, or a vLLM / local server's /v1)",
    )
    model: str = Field("gpt-4o-mini", description="api: the model name the server knows")
    per_task: int = Field(
        100, ge=1, description="validated, de-duplicated instructions wanted per task (the seed used 100)"
    )
    temperature: float = Field(
        0.9, ge=0, le=2, description="api: sampling temperature; each request jitters it by -0.2..+0.3 for variety"
    )
    top_p: float = Field(0.95, gt=0, le=1, description="api: nucleus sampling mass")
    batch_size: int = Field(
        20, ge=1, description="api: instructions asked for per request (fewer once a task is nearly full)"
    )
    examples_per_request: int = Field(
        3,
        ge=0,
        description="api: example instructions shown in each request, drawn anew from the offline bank and those "
        "accepted so far (more: closer to the examples' style)",
    )
    max_requests: int = Field(
        400,
        ge=1,
        description="api: budget of requests for the run, every attempt counted; when spent, the bank is "
        "published short and a warning names the short tasks",
    )
    max_tokens: int = Field(
        2_000_000,
        ge=1,
        description="api: budget of tokens (prompt + reply, as the server reports them) for the run; when spent, "
        "as max_requests",
    )
    max_reply_tokens: int = Field(2048, ge=16, description="api: tokens one reply may have (max_tokens of a request)")
    timeout_s: float = Field(60.0, gt=0, description="api: seconds one request may take before it counts as a timeout")
    max_attempts: int = Field(
        5,
        ge=1,
        description="api: attempts per request (timeouts, rate limits, server errors, malformed replies); a "
        "connection error on the last attempt fails the stage",
    )
    backoff_s: float = Field(
        2.0, ge=0, description="api: seconds before the first retry, doubled per attempt (a Retry-After header wins)"
    )
    max_backoff_s: float = Field(60.0, ge=0, description="api: the longest wait between two attempts, in seconds")
    seed: int = Field(0, description="api: seeds the examples shown and the temperature jitter of every request")


@dataclass
class GenerationResult:
    banks: dict[str, TaskBank]
    requests: int = 0
    tokens: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    budget_exhausted: bool = False


@dataclass(frozen=True)
class GenerationPrompts:
    version: str
    system: str
    user: str
    output_kinds: dict[str, str]
    requirements: dict[str, str]

    @classmethod
    def load(cls, path: Path = PROMPTS_PATH) -> GenerationPrompts:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(version=str(data["prompt_version"]), system=data["system"], user=data["user"],
                   output_kinds=data["output_kinds"], requirements=data["requirements"])


def build_messages(prompts: GenerationPrompts, task: Task, examples: Sequence[str], count: int) -> list[dict[str, str]]:
    needs = [key for key, ids in (("yes_no", YES_NO_TASKS), ("choice", CHOICE_TASKS),
                                  ("explanation", EXPLANATION_TASKS), ("answerability", {ANSWERABILITY_TASK}))
             if task.id in ids]
    user = prompts.user.format(
        count=count, name_ko=task.name_ko, name_en=task.name_en, description=task.description,
        output_kind=prompts.output_kinds[task.output_kind],
        requirements="".join(prompts.requirements[k] + "\n" for k in needs),
        examples="\n".join(f"- {e}" for e in examples),
    )
    return [{"role": "system", "content": prompts.system}, {"role": "user", "content": user}]


def parse_reply(text: str) -> list[str]:
    """Instructions from a reply: the JSON object asked for (also inside a code fence) or a numbered list.

    Quotes around numbered items are list formatting, so they are removed; inside JSON they are kept
    (and rejected by validation), since there they were written as part of the instruction.
    """
    stripped = text.strip()
    fenced = re.search(r"```(?:json)?\s*(.+?)```", stripped, re.DOTALL)
    candidate = fenced.group(1) if fenced else stripped
    start, end = candidate.find("{"), candidate.rfind("}")
    if start != -1 and end > start:
        try:
            data = json.loads(candidate[start:end + 1])
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("instructions"), list):
            return [s.strip() for s in data["instructions"] if isinstance(s, str) and s.strip()]
    items = [m.group(1).strip("\"'“”") for line in stripped.splitlines() if (m := _NUMBERED.match(line))]
    if items:
        return items
    raise MalformedReply(f"neither a JSON object with 'instructions' nor a numbered list: {stripped[:80]!r}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _append(path: Path, row: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of an append-only log; a last line cut by a kill is ignored (it was never acknowledged)."""
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s:%d: unreadable line skipped (interrupted write)", path, number)
    return rows


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class InstructionGenerator:
    """One generation run over a staging folder; construct, then :meth:`run`."""

    def __init__(self, settings: ApiSettings, api_key: str | None, staging: Path, tasks: Sequence[Task],
                 examples: dict[str, list[str]], prompts: GenerationPrompts | None = None,
                 sleep: Callable[[float], None] = time.sleep, on_accept: Callable[[str, int], None] | None = None):
        if not api_key:
            raise ApiUnavailable(f"no API key: set OPENAI_API_KEY for {settings.base_url}, or {FALLBACK_HINT}")
        import openai

        self.openai = openai
        self.client = openai.OpenAI(api_key=api_key, base_url=settings.base_url, timeout=settings.timeout_s,
                                    max_retries=0)
        self.settings, self.staging, self.tasks, self.examples = settings, staging, list(tasks), examples
        self.prompts = prompts or GenerationPrompts.load()
        self.sleep, self.on_accept = sleep, on_accept or (lambda task_id, n: None)
        self._secrets = [api_key]
        self.result = GenerationResult(banks={t.id: TaskBank(t.id) for t in self.tasks})
        self._resume()

    def _resume(self) -> None:
        for row in read_jsonl(self.staging / ACCEPTED_FILE):
            if row.get("task_id") in self.result.banks:
                self.result.banks[row["task_id"]].add(row["instruction"])
        for row in read_jsonl(self.staging / REQUESTS_FILE):
            if row.get("kind") == "rejections":
                if row.get("task_id") in self.result.banks:
                    self.result.banks[row["task_id"]].rejected.update(row["rejected"])
                continue
            self.result.requests += 1
            self.result.tokens += int(row.get("tokens", 0))
            if row.get("failure"):
                self.result.failures[row["failure"]] += 1

    def _budget_left(self) -> bool:
        s, r = self.settings, self.result
        return r.requests < s.max_requests and r.tokens < s.max_tokens

    def run(self) -> GenerationResult:
        rounds = 0
        while True:
            pending = [t for t in self.tasks if len(self.result.banks[t.id].accepted) < self.settings.per_task]
            if not pending:
                return self.result
            for task in pending:
                if not self._budget_left():
                    self.result.budget_exhausted = True
                    log.warning("instructions: budget reached (%d requests, %d tokens); %d task(s) short of %d",
                                self.result.requests, self.result.tokens, len(pending), self.settings.per_task)
                    return self.result
                self._request(task, rounds)
            rounds += 1

    def _request(self, task: Task, round_no: int) -> None:
        """One logical request for ``task``: attempts with backoff, then validation and persistence."""
        s, bank = self.settings, self.result.banks[task.id]
        rng = random.Random(f"{s.seed}:{task.id}:{round_no}:{self.result.requests}")
        pool = self.examples.get(task.id, []) + bank.accepted
        examples = rng.sample(pool, min(s.examples_per_request, len(pool)))
        temperature = round(min(1.5, max(0.2, s.temperature + rng.uniform(-0.2, 0.3))), 2)
        count = min(s.batch_size, max(5, 2 * (s.per_task - len(bank.accepted))))
        messages = build_messages(self.prompts, task, examples, count)
        for attempt in range(s.max_attempts):
            if not self._budget_left():
                return
            delay = min(s.max_backoff_s, s.backoff_s * 2 ** attempt)
            failure, tokens, texts = None, 0, []
            try:
                response = self.client.chat.completions.create(
                    model=s.model, messages=messages, temperature=temperature, top_p=s.top_p,
                    max_tokens=s.max_reply_tokens)
                tokens = response.usage.total_tokens if response.usage else 0
                texts = parse_reply(response.choices[0].message.content or "")
            except self.openai.RateLimitError as exc:
                failure, delay = "rate_limited", _retry_after(exc) or delay
            except self.openai.APITimeoutError:
                failure = "timeout"
            except self.openai.APIConnectionError as exc:
                failure = "connection_error"
                if attempt == s.max_attempts - 1:
                    raise ApiUnavailable(f"cannot reach {s.base_url} ({self._clean(exc)}); {FALLBACK_HINT}") from exc
            except self.openai.InternalServerError as exc:
                failure = f"server_error_{exc.status_code}"
            except (self.openai.AuthenticationError, self.openai.PermissionDeniedError) as exc:
                raise ApiUnavailable(f"{s.base_url} rejected the API key ({exc.status_code}); {FALLBACK_HINT}") from exc
            except self.openai.NotFoundError as exc:
                raise ApiUnavailable(f"{s.base_url}: model {s.model!r} not found ({self._clean(exc)}); "
                                     f"{FALLBACK_HINT}") from exc
            except self.openai.APIStatusError as exc:
                failure = f"http_{exc.status_code}"
            except (MalformedReply, AttributeError, IndexError, TypeError) as exc:
                failure = "malformed_reply"
                log.debug("instructions: %s: malformed reply: %s", task.id, self._clean(exc))
            self.result.requests += 1
            self.result.tokens += tokens
            _append(self.staging / REQUESTS_FILE, {"task_id": task.id, "tokens": tokens, "failure": failure,
                                                   "temperature": temperature, "at": _now()})
            if failure is None:
                self._accept(task, texts)
                return
            self.result.failures[failure] += 1
            log.warning("instructions: %s: %s (attempt %d/%d), retrying in %.1fs", task.id, failure,
                        attempt + 1, s.max_attempts, delay)
            self.sleep(delay)

    def _accept(self, task: Task, texts: Sequence[str]) -> None:
        """Validate a reply's candidates; each accepted one is on disk before the next is looked at."""
        bank, rejected = self.result.banks[task.id], Counter[str]()
        for text in texts:
            if len(bank.accepted) >= self.settings.per_task:
                break
            found = bank.check(text)
            if found:
                rejected[found.reason] += 1
                continue
            bank.add(text)
            _append(self.staging / ACCEPTED_FILE, {
                "task_id": task.id, "instruction": bank.accepted[-1], "model": self.settings.model,
                "prompt_version": self.prompts.version, "created_at": _now()})
            self.on_accept(task.id, len(bank.accepted))
        bank.rejected.update(rejected)
        if rejected:
            _append(self.staging / REQUESTS_FILE, {"task_id": task.id, "kind": "rejections", "rejected": dict(rejected)})

    def _clean(self, exc: Exception) -> str:
        return redact(str(exc), self._secrets)
