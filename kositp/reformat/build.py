"""The reformat stage's build: task shards from the cache or built anew, supplementary data,
SuperNI task metadata, the data card and the report (the stage and its settings:
the section: :mod:`kositp.reformat.config`)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import unicodedata
import uuid
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pyarrow.parquet as pq

from kositp.artifacts import canonical_json
from kositp.catalog import SUPERNI_TASKS
from kositp.reformat.builders import BUILDERS
from kositp.reformat.config import ReformatConfig, ReformatError, eval_folder, supplementary_files
from kositp.reformat.decontaminate import EvalIndex
from kositp.reformat.eval_sources import eval_fingerprint
from kositp.reformat.metadata import composition_plot, count_rows, data_card, superni_task, write_seed_export
from kositp.reformat.parallel import build_shards_parallel
from kositp.reformat.placement import Instruction
from kositp.reformat.shards import SPLITS, SplitParams, TaskStats
from kositp.reformat.supplementary import mix_supplementary
from kositp.reformat.task_cache import TMP_PREFIX, cache_in_use, prune_cache, referenced_subversions
from kositp.source_digest import source_digest
from kositp.stages import StageContext, StageOutcome

BUILD_MODULES = ("kositp.reformat.parallel",)


def load_bank(path: Path) -> dict[str, list[Instruction]]:
    table = pq.read_table(path, columns=["task_id", "instruction_id", "instruction"])
    bank: dict[str, list[Instruction]] = defaultdict(list)
    for row in table.to_pylist():
        text = unicodedata.normalize("NFC", (row["instruction"] or "").strip())
        if row["task_id"] in BUILDERS and text:
            bank[row["task_id"]].append(Instruction(row["instruction_id"], text))
    missing = [t.id for t in SUPERNI_TASKS if not bank.get(t.id)]
    if missing:
        raise ReformatError(f"{path}: no instructions for {len(missing)} task(s): {', '.join(missing)}")
    return {t: sorted(v, key=lambda i: i.instruction_id) for t, v in bank.items()}


@cache
def build_code() -> str:
    """Digest of the shard-building code, helpers included (read once per process)."""
    return source_digest(BUILD_MODULES)


def task_subversion(
    task_id: str,
    instructions: list[Instruction],
    records_version: str,
    config: ReformatConfig,
    eval_fp: str,
    code: str | None = None,
) -> str:
    """The cache key of one task's shards; ``code`` defaults to :func:`build_code`."""
    shaping = {
        "code": code or build_code(),
        "task": task_id,
        "instructions": [(i.instruction_id, i.text) for i in instructions],
        "records": records_version,
        "params": {k: getattr(config, k) for k in ("seed", "validation_ratio", "per_task_max", "ngram")},
        "eval": eval_fp,
    }
    return f"{task_id}-{hashlib.sha256(canonical_json(shaping).encode()).hexdigest()[:16]}"


def _cached(folder: Path) -> bool:
    return all((folder / name).is_file() for name in ("train.parquet", "validation.parquet", "stats.json"))


def _copy_shard(source: Path, target: Path) -> None:
    """A hard link where the cache and the artifact share a file system (neither is written again)."""
    target.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        try:
            os.link(source / f"{split}.parquet", target / f"{split}.parquet")
        except OSError:
            shutil.copyfile(source / f"{split}.parquet", target / f"{split}.parquet")


def _build_tasks(
    ctx: StageContext, tasks: list[str], subversions: dict[str, str], bank, params, eval_index
) -> None:
    """Build into the cache (atomic rename per task) when there is one, else straight into the artifact."""
    records = ctx.inputs["ingest"].path / "records.parquet"
    if ctx.cache_dir is None:
        folders = {t: ctx.out_dir / "shards" / t for t in tasks}
    else:
        cache = ctx.cache_dir / "reformat"
        folders = {t: cache / f"{TMP_PREFIX}{subversions[t]}-{uuid.uuid4().hex[:8]}" for t in tasks}
    build_shards_parallel(records, tasks, bank, params, folders, ctx.reporter, eval_index)
    if ctx.cache_dir is None:
        return
    for task_id, folder in folders.items():
        final = cache / subversions[task_id]
        try:
            folder.rename(final)
        except OSError:
            shutil.rmtree(folder)  # a concurrent run published the same sub-version first
        _copy_shard(final, ctx.out_dir / "shards" / task_id)


def _check_minimum(stats: dict[str, TaskStats], config: ReformatConfig, ctx: StageContext) -> None:
    short = {t: s.train for t, s in stats.items() if s.train < config.per_task_min}
    if not short:
        return
    message = (
        f"{len(short)} task(s) below per_task_min={config.per_task_min} training instances: "
        + ", ".join(f"{t} ({n})" for t, n in short.items())
        + "; ingest more records of their kinds or lower reformat.per_task_min"
    )
    if config.below_min == "fail":
        raise ReformatError(message)
    ctx.reporter.warning(message)


@dataclass(frozen=True)
class TaskShards:
    """The 22 tasks' shards in the artifact: their counts, and which came from the cache."""

    stats: dict[str, TaskStats]
    rebuilt: list[str]
    reused: list[str]
    subversions: dict[str, str]


def build(ctx: StageContext) -> StageOutcome:
    config: ReformatConfig = ctx.config  # type: ignore[assignment]
    bank = load_bank(ctx.inputs["instructions"].path / "bank.parquet")
    eval_dir = eval_folder(config)
    params = SplitParams(config.seed, config.validation_ratio, config.per_task_max)
    eval_index = decontamination_index(eval_dir, config, ctx)
    shards = task_shards(ctx, config, bank, params, eval_dir, eval_index)
    _check_minimum(shards.stats, config, ctx)
    rows = count_rows(shards.stats) + supplementary_rows(ctx, config, shards.stats, params, eval_index)
    write_task_metadata(ctx, bank, shards.stats)
    exported = (
        write_seed_export(ctx.out_dir / "shards", list(shards.stats), ctx.out_dir / "seed_format.jsonl")
        if config.seed_jsonl_export
        else 0
    )
    return outcome(ctx, config, rows, shards, eval_dir, exported)


def decontamination_index(eval_dir: Path | None, config: ReformatConfig, ctx: StageContext) -> EvalIndex | None:
    if eval_dir is None:
        return None
    index = EvalIndex(eval_dir, config.ngram)
    ctx.reporter.info(
        f"reformat: decontaminating against {len(index.files)} eval file(s), "
        f"{len(index.ngrams)} character {config.ngram}-grams"
    )
    return index


def task_shards(
    ctx: StageContext,
    config: ReformatConfig,
    bank: dict[str, list[Instruction]],
    params: SplitParams,
    eval_dir: Path | None,
    eval_index: EvalIndex | None,
) -> TaskShards:
    """Every task's shards into the artifact: copied from the cache where its sub-version is built,
    built (in parallel) otherwise; the cache is pruned of sub-versions no version refers to."""
    eval_fp = eval_fingerprint(eval_dir)
    task_ids = [t.id for t in SUPERNI_TASKS]
    subversions = {t: task_subversion(t, bank[t], ctx.inputs["ingest"].version, config, eval_fp) for t in task_ids}
    cache = ctx.cache_dir / "reformat" if ctx.cache_dir else None
    with cache_in_use(cache) as lock:
        reused = [t for t in task_ids if cache is not None and _cached(cache / subversions[t])]
        rebuilt = [t for t in task_ids if t not in reused]
        for task_id in reused:
            _copy_shard(cache / subversions[task_id], ctx.out_dir / "shards" / task_id)
        if rebuilt:
            _build_tasks(ctx, rebuilt, subversions, bank, params, eval_index)
        stats_dir = {t: (cache / subversions[t]) if cache else ctx.out_dir / "shards" / t for t in task_ids}
        stats = {
            t: TaskStats.from_json(json.loads((stats_dir[t] / "stats.json").read_text(encoding="utf-8")))
            for t in task_ids
        }
        if lock is not None:
            keep = referenced_subversions(ctx.cache_dir.parent) | set(subversions.values())
            pruned = prune_cache(lock, cache, keep)
            if pruned:
                ctx.reporter.info(f"reformat: pruned {len(pruned)} cache entr(ies) no version refers to")
    if cache is None:
        for t in task_ids:
            (stats_dir[t] / "stats.json").unlink()
    ctx.reporter.info(f"reformat: rebuilt {len(rebuilt)} task(s), reused {len(reused)} from cache")
    for task_id, task_stats in stats.items():
        if task_stats.moved_to_train:
            ctx.reporter.warning(
                f"{task_id}: every document hashed to validation; its {task_stats.train} instances train instead"
            )
    return TaskShards(stats, rebuilt, reused, subversions)


def supplementary_rows(
    ctx: StageContext,
    config: ReformatConfig,
    stats: dict[str, TaskStats],
    params: SplitParams,
    eval_index: EvalIndex | None,
) -> list[dict[str, int | str]]:
    """Each supplementary source mixed in as a shard of its own, sized against the tasks' training rows."""
    task_train = sum(s.train for s in stats.values())
    rows: list[dict[str, int | str]] = []
    for source in config.supplementary:
        counts = mix_supplementary(
            source.name,
            supplementary_files(source),
            source.ratio,
            task_train,
            params,
            ctx.out_dir / "shards" / f"supplementary_{source.name}",
            eval_index,
        )
        rows.append(
            {
                "task": f"supplementary_{source.name}",
                "routed": counts["available"],
                "built": counts["available"],
                "train": counts["train"],
                "validation": counts["validation"],
                "capped": 0,
                "contaminated": counts["contaminated"],
            }
        )
    return rows


def write_task_metadata(ctx: StageContext, bank: dict[str, list[Instruction]], stats: dict[str, TaskStats]) -> None:
    """``tasks/<task>.json``: SuperNI's Definition, examples, categories and source per task."""
    tasks_dir = ctx.out_dir / "tasks"
    tasks_dir.mkdir()
    for task_id, task_stats in stats.items():
        meta = superni_task(task_id, bank[task_id], ctx.out_dir / "shards" / task_id, task_stats)
        (tasks_dir / f"{task_id}.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")


def outcome(
    ctx: StageContext,
    config: ReformatConfig,
    rows: list[dict],
    shards: TaskShards,
    eval_dir: Path | None,
    exported: int,
) -> StageOutcome:
    """The data card, the composition plot and the report, for the artifact and the UI."""
    contaminated = sum(r["contaminated"] for r in rows)
    decontamination = (
        f"{contaminated} training instances dropped (character {config.ngram}-grams shared with {eval_dir})"
        if eval_dir
        else "skipped (no decontaminate_against configured)"
    )
    composition_plot(rows, ctx.out_dir / "composition.png")
    card = data_card(rows, shards.rebuilt, shards.reused, decontamination)
    (ctx.out_dir / "data_card.md").write_text(card, encoding="utf-8")
    ctx.reporter.table("reformat-counts", rows, "instances per task and split")
    ctx.reporter.markdown("reformat-data-card", card, "reformat data card")
    ctx.reporter.image("reformat-composition", ctx.out_dir / "composition.png", "instances per task")
    return StageOutcome(
        rows={
            "train": sum(r["train"] for r in rows),
            "validation": sum(r["validation"] for r in rows),
            "contaminated": contaminated,
            "shards": len(rows),
            "seed_export": exported,
        },
        report={
            "rebuilt": shards.rebuilt,
            "reused": shards.reused,
            "decontamination": decontamination,
            "subversions": shards.subversions,
            "tasks": {r["task"]: {k: v for k, v in r.items() if k != "task"} for r in rows},
        },
    )
