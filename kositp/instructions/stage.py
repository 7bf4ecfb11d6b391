"""The ``instructions`` stage: per-task Korean instructions from the offline bank or an API.

Offline mode (the demo and any profile without an API) takes the shipped bank, re-validated.
API mode asks an OpenAI-compatible model (see :mod:`kositp.instructions.generate`) and is
resumable: its staging folder keeps the append-only logs, so a killed run picks up where it was.
The API key is never a parameter (it would land in the manifest); it comes from the environment
variable named by ``api_key_env``, which an orchestrator may fill from a secret store.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field

from kositp.catalog import SUPERNI_TASKS, get_task
from kositp.instructions.generate import (
    ACCEPTED_FILE,
    PROMPTS_PATH,
    ApiSettings,
    GenerationPrompts,
    InstructionGenerator,
    read_jsonl,
)
from kositp.instructions.offline import load_offline, offline_digest
from kositp.instructions.validate import TaskBank
from kositp.secrets import get_secret
from kositp.stages import Stage, StageContext, StageOutcome

BANK_COLUMNS = ("task_id", "instruction_id", "instruction", "origin", "model", "prompt_version", "created_at")


class InstructionsConfig(ApiSettings):
    """The ``instructions`` section: where instructions come from, and, for the API, its settings."""

    mode: Literal["offline", "api"] = Field(
        "offline",
        description="offline: the bank shipped in prompts/, re-validated (no network); api: generate with an "
        "OpenAI-compatible model (resumable; the settings marked api apply)",
    )
    tasks: list[str] | None = Field(
        None, description="task ids to build instructions for (kositp.catalog); null: all 22 tasks"
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY",
        description="api: the NAME of the environment variable holding the key (the key itself never enters the "
        "profile or a manifest); on a Prefect worker OPENAI_API_KEY comes from the Secret block openai-api-key "
        "when unset",
    )

    def api_settings(self) -> ApiSettings:
        return ApiSettings(**self.model_dump(include=set(ApiSettings.model_fields)))


def _selected(config: InstructionsConfig) -> list:
    return [get_task(t) for t in config.tasks] if config.tasks else list(SUPERNI_TASKS)


def _offline_rows(config: InstructionsConfig, ctx: StageContext) -> tuple[list[dict[str, Any]], dict[str, TaskBank]]:
    created = datetime.now(UTC).isoformat(timespec="seconds")
    rows, banks = [], {}
    for task in _selected(config):
        bank = TaskBank(task.id)
        for text in load_offline(task.id):
            if len(bank.accepted) >= config.per_task:
                break
            bank.offer(text)
        if len(bank.accepted) < config.per_task:
            ctx.reporter.warning(f"instructions: offline bank has only {len(bank.accepted)} valid instructions "
                                 f"for {task.id} (wanted {config.per_task})")
        banks[task.id] = bank
        rows += [{"task_id": task.id, "instruction": text, "origin": "offline", "model": "offline",
                  "prompt_version": "offline", "created_at": created} for text in bank.accepted]
    return rows, banks


def _api_rows(config: InstructionsConfig, ctx: StageContext) -> tuple[list[dict[str, Any]], dict[str, TaskBank], Any]:
    tasks = _selected(config)
    examples = {t.id: load_offline(t.id) for t in tasks}
    with ctx.reporter.progress("instructions accepted", len(tasks) * config.per_task) as advance:
        generator = InstructionGenerator(config.api_settings(), get_secret(config.api_key_env), ctx.out_dir, tasks,
                                         examples, on_accept=lambda task_id, n: advance(1))
        advance(sum(len(b.accepted) for b in generator.result.banks.values()))
        result = generator.run()
    rows = [{**row, "origin": "api"} for row in read_jsonl(ctx.out_dir / ACCEPTED_FILE)
            if row.get("task_id") in result.banks]
    return rows, result.banks, result


def run(ctx: StageContext) -> StageOutcome:
    import pandas as pd

    config = ctx.config if isinstance(ctx.config, InstructionsConfig) else InstructionsConfig(**ctx.params)
    if config.mode == "offline":
        rows, banks = _offline_rows(config, ctx)
        requests, tokens, failures, exhausted = 0, 0, Counter(), False
    else:
        rows, banks, result = _api_rows(config, ctx)
        requests, tokens, failures, exhausted = result.requests, result.tokens, result.failures, result.budget_exhausted
    seen: Counter[str] = Counter()
    for row in rows:
        seen[row["task_id"]] += 1
        row["instruction_id"] = f"{row['task_id']}/{seen[row['task_id']]:04d}"
    pd.DataFrame(rows, columns=list(BANK_COLUMNS)).to_parquet(ctx.out_dir / "bank.parquet", index=False)
    rejected = Counter[str]()
    for bank in banks.values():
        rejected.update(bank.rejected)
    if failures.get("malformed_reply"):
        rejected["malformed_reply"] += failures["malformed_reply"]
    summary = {
        "mode": config.mode, "tasks": len(banks), "per_task_target": config.per_task,
        "per_task": {t: len(b.accepted) for t, b in banks.items()}, "requests": requests, "tokens": tokens,
        "rejected": dict(sorted(rejected.items())), "failures": dict(sorted(failures.items())),
        "budget_exhausted": exhausted, "model": config.model if config.mode == "api" else "offline",
    }
    (ctx.out_dir / "bank_summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    ctx.reporter.table("instruction-bank", [
        {"task": t, "accepted": len(b.accepted), "target": config.per_task,
         "rejected": ", ".join(f"{r}={n}" for r, n in b.rejected.most_common()) or "-"}
        for t, b in banks.items()], description="Instructions per task and rejection reasons")
    short = [t for t, b in banks.items() if len(b.accepted) < config.per_task]
    if short:
        ctx.reporter.warning(f"instructions: {len(short)} task(s) below {config.per_task}: {', '.join(short)}")
    ctx.reporter.info(f"instructions: {len(rows)} instructions for {len(banks)} tasks ({config.mode}); "
                      f"{requests} requests, rejected {dict(rejected) or 'none'}")
    return StageOutcome(rows={"instructions": len(rows)}, report=summary)


def _fingerprint(config: InstructionsConfig) -> dict[str, str]:
    if config.mode == "offline":
        return {"offline_bank": offline_digest()}
    return {"prompt_version": GenerationPrompts.load().version, "prompts_file": PROMPTS_PATH.name}


STAGE = Stage(
    name="instructions", code_version="1", config=InstructionsConfig, run=run, fingerprint=_fingerprint,
    resumable=True,
    description="Per-task Korean instructions: the shipped offline bank, or generated by an "
    "OpenAI-compatible API",
)
