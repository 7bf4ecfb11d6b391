"""Retention: ``kositp artifacts gc`` keeps what a person or the pipeline can still need.

A nightly retrain publishes a merged 16-bit model every night it trains; nothing else ever
deletes one. A version is kept when it is among the newest ``keep`` of its stage, is a
profile's latest or promoted model (or the promote decision and evaluation behind it), or is an
input, at any depth, of a kept version (its lineage): the served model can always be traced back
to the data it came from and rebuilt. Everything else goes, with the bookkeeping that only
makes sense beside it (verification stamps, locks, Prefect result files keyed by its version),
and so do staging folders that nobody has written to for a day, half-finished publishes and the
reformat stage's per-task shard cache entries that no kept reformat version uses.
Prefect keeps a result file per stage version (named by the task's cache key, which holds the
version) and one per failure (a random name): the first go with their version, the second after
a week, so Prefect's result storage stays bounded too.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from kositp.artifacts import MANIFEST, Artifact, ArtifactStore
from kositp.promote.record import read_history
from kositp.reformat.task_cache import cache_in_use, prune_cache, referenced_subversions

ABANDONED_AFTER_S = 24 * 3600
FAILURE_RESULTS_KEPT_S = 7 * 24 * 3600
RESULTS = "prefect-results"
TASK_CACHE = "_cache/reformat"


@dataclass(frozen=True)
class Removal:
    stage: str
    version: str
    path: Path
    bytes: int
    why: str


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def newest_mtime(path: Path) -> float:
    """The last time anything under ``path`` changed (a training writes deep inside its folder)."""
    return max([path.stat().st_mtime, *(p.stat().st_mtime for p in path.rglob("*"))])


def _manifest_inputs(store: ArtifactStore, stage: str, version: str) -> dict[str, str]:
    try:
        manifest = json.loads((store.path(stage, version) / MANIFEST).read_text(encoding="utf-8"))
        return dict(manifest.get("inputs", {}))
    except (OSError, ValueError):
        return {}


def pinned_versions(store: ArtifactStore) -> dict[tuple[str, str], str]:
    """Versions kept whatever their age: each profile's latest and promoted ones, with the reason."""
    pinned: dict[tuple[str, str], str] = {}
    for stage in store.stages():
        for pointer in (store.root / stage).glob("latest-*.json"):
            try:
                version = json.loads(pointer.read_text(encoding="utf-8"))["version"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            pinned[(stage, version)] = f"latest of {pointer.stem.removeprefix('latest-')}"
    for record in store.root.glob("promoted-*.json"):
        profile = record.stem.removeprefix("promoted-")
        current = read_history(store.root, profile).current
        if current is None:
            continue
        pinned[("export", current.export_version)] = f"promoted for {profile}"
        pinned[("evaluate", current.evaluate_version)] = f"promoted for {profile}"
        if current.promote_version:
            pinned[("promote", current.promote_version)] = f"promoted for {profile}"
    return pinned


def _age_key(artifact: Artifact) -> tuple[str, int]:
    """Newest last: the manifest's time (to the second), then when the manifest was written."""
    return artifact.manifest.get("finished_at", ""), (artifact.path / MANIFEST).stat().st_mtime_ns


def kept_versions(store: ArtifactStore, keep: int) -> dict[tuple[str, str], str]:
    """Every version to keep, with why; lineage is followed through the manifests' inputs."""
    kept = pinned_versions(store)
    for stage in store.stages():
        newest = sorted(store.list(stage), key=_age_key, reverse=True)[:keep]
        for artifact in newest:
            kept.setdefault((stage, artifact.version), f"among the newest {keep}")
    pending = list(kept)
    while pending:
        stage, version = pending.pop()
        for input_stage, input_version in _manifest_inputs(store, stage, version).items():
            if (input_stage, input_version) not in kept:
                kept[(input_stage, input_version)] = f"input of {stage}/{version}"
                pending.append((input_stage, input_version))
    return kept


def plan_gc(
    store: ArtifactStore, keep: int, result_dirs: Iterable[Path] = (), now: float | None = None
) -> list[Removal]:
    """What ``gc`` would remove: unkept versions (and their Prefect results), abandoned staging
    folders, leftover retirements and week-old Prefect failure results."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1 (got {keep}): the newest version of a stage is always kept")
    now = time.time() if now is None else now
    kept = kept_versions(store, keep)
    removals = []
    for stage in store.stages():
        for version in store.versions(stage):
            if (stage, version) not in kept:
                path = store.path(stage, version)
                removals.append(Removal(stage, version, path, tree_size(path), "not kept"))
    for stage_dir in (p for p in store.root.iterdir() if p.is_dir()) if store.root.is_dir() else ():
        staging = stage_dir / ".staging"
        for folder in sorted(staging.iterdir()) if staging.is_dir() else ():
            if now - newest_mtime(folder) > ABANDONED_AFTER_S:
                removals.append(
                    Removal(stage_dir.name, folder.name, folder, tree_size(folder), "staging untouched for a day")
                )
        for retired in sorted(stage_dir.glob(".retired-*")):
            removals.append(Removal(stage_dir.name, retired.name, retired, tree_size(retired), "left by a re-publish"))
    cache = store.root / TASK_CACHE
    used = referenced_subversions(store.root, [v for s, v in kept if s == "reformat"])
    for entry in sorted(cache.iterdir()) if cache.is_dir() else ():
        if entry.is_dir() and entry.name not in used:
            removals.append(Removal(TASK_CACHE, entry.name, entry, tree_size(entry), "no kept reformat version uses it"))
    unkept = {store.cache_key(r.stage, r.version): r.stage for r in removals if r.why == "not kept"}
    for folder in result_dirs:
        for result in sorted(folder.iterdir()) if folder.is_dir() else ():
            if not result.is_file():
                continue
            if result.name in unkept:
                removals.append(Removal(RESULTS, result.name, result, result.stat().st_size, f"result of {unkept[result.name]}"))
            elif not result.name.startswith("kositp-") and now - result.stat().st_mtime > FAILURE_RESULTS_KEPT_S:
                removals.append(Removal(RESULTS, result.name, result, result.stat().st_size, "failure older than a week"))
    return removals


def _remove(store: ArtifactStore, removal: Removal) -> bool:
    """Delete one planned removal (a version under its lock); ``False`` when a build holds it."""
    if removal.stage == RESULTS:
        removal.path.unlink(missing_ok=True)
        return True
    lock_dir = store.root / removal.stage / ".locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_dir / f"{removal.version}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return False
    try:
        shutil.rmtree(removal.path)
        (store.root / removal.stage / ".verified" / f"{removal.version}.json").unlink(missing_ok=True)
    finally:
        lock.release()
    if removal.why == "not kept":
        Path(lock.lock_file).unlink(missing_ok=True)
    return True


def collect_garbage(
    store: ArtifactStore, keep: int, *, dry_run: bool = False, result_dirs: Iterable[str | os.PathLike[str]] = ()
) -> tuple[list[Removal], list[Removal]]:
    """Remove what :func:`plan_gc` lists; returns (removed, skipped because a build holds them)."""
    planned = plan_gc(store, keep, [Path(f) for f in result_dirs])
    if dry_run:
        return planned, []
    removed, busy = [], []
    for removal in planned:
        if removal.stage != TASK_CACHE:
            (removed if _remove(store, removal) else busy).append(removal)
    cached = [r for r in planned if r.stage == TASK_CACHE]
    if cached:
        with cache_in_use(store.root / TASK_CACHE) as lock:
            kept = {e.name for e in (store.root / TASK_CACHE).iterdir()} - {r.version for r in cached}
            pruned = set(prune_cache(lock, store.root / TASK_CACHE, kept))
        removed += [r for r in cached if r.version in pruned]
        busy += [r for r in cached if r.version not in pruned]
    return removed, busy
