"""Small real stages for exercising the runner, the Prefect spine and the CLI without ML work."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field

from kositp.config import StageConfig
from kositp.errors import InputNotFound
from kositp.stages import Stage, StageContext, StageOutcome


class WordsConfig(StageConfig):
    words: list[str] = Field(default_factory=lambda: ["한국어", "말뭉치"])
    fail: bool = False


class CountConfig(StageConfig):
    fail_once_marker: str | None = None
    missing_input: str | None = None


def write_words(ctx: StageContext) -> StageOutcome:
    config: WordsConfig = ctx.config  # type: ignore[assignment]
    if config.fail:
        raise RuntimeError("원천 데이터를 읽을 수 없습니다")
    (ctx.out_dir / "words.json").write_text(json.dumps(config.words, ensure_ascii=False), encoding="utf-8")
    return StageOutcome(rows={"words": len(config.words)})


def count_words(ctx: StageContext) -> StageOutcome:
    config: CountConfig = ctx.config  # type: ignore[assignment]
    if config.missing_input:
        raise InputNotFound(f"입력 경로가 없습니다: {config.missing_input}")
    if config.fail_once_marker and not Path(config.fail_once_marker).exists():
        Path(config.fail_once_marker).write_text("failed once")
        raise RuntimeError("GPU가 선점되었습니다")
    words = json.loads((ctx.inputs["ingest"].path / "words.json").read_text(encoding="utf-8"))
    (ctx.out_dir / "counts.json").write_text(json.dumps({w: len(w) for w in words}, ensure_ascii=False))
    return StageOutcome(rows={"counted": len(words)}, report={"longest": max(words, key=len)})


WORDS = Stage(name="ingest", code_version="1", config=WordsConfig, run=write_words)
COUNTS = Stage(name="reformat", code_version="1", config=CountConfig, run=count_words, inputs=("ingest",))
FAKE_REGISTRY = {"ingest": WORDS, "reformat": COUNTS}
SPINE_PROFILE = str(Path(__file__).parent / "profiles" / "spine.yaml")
