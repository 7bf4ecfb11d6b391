"""``kositp artifacts gc``: old versions go; the promoted model, latest ones and their lineage stay."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from store_builders import metrics_json, publish

from kositp.artifacts import ArtifactStore
from kositp.promote.record import Promotion, record_decision
from kositp.retention import collect_garbage, plan_gc

DAY = 24 * 3600


def _night(store, n, reformat_version="reformat0000001"):
    """One nightly chain: sft -> export -> evaluate on a shared reformat."""
    sft = publish(store, "sft", f"sft{n:013d}", {"adapter/weights.bin": "가" * 1000},
                  inputs={"reformat": reformat_version}, finished_at=f"2026-12-0{n}T02:00:00+00:00")
    export = publish(store, "export", f"export{n:010d}", {"merged/model.bin": "나" * 5000},
                     inputs={"sft": sft.version}, finished_at=f"2026-12-0{n}T03:00:00+00:00")
    evaluate = publish(store, "evaluate", f"evaluate{n:08d}", {"metrics.json": metrics_json({"nsmc": 0.5})},
                       inputs={"export": export.version}, finished_at=f"2026-12-0{n}T04:00:00+00:00")
    return sft, export, evaluate


@pytest.fixture
def store(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    publish(store, "reformat", "reformat0000001", {"shards/task001/train.parquet": "다" * 100},
            finished_at="2026-11-30T00:00:00+00:00", report={"subversions": {"task001": "sub-kept"}})
    nights = [_night(store, n) for n in (1, 2, 3, 4)]
    _, export, evaluate = nights[0]
    record_decision(store.root, "demo", Promotion(export.version, evaluate.version, {"nsmc": 0.5}, 0.5, {}, "최초"), "promoted")
    return store


def _versions(store, stage):
    return store.versions(stage)


def test_gc_keeps_the_newest_the_promoted_model_and_its_lineage(store):
    removed, busy = collect_garbage(store, keep=1)
    assert busy == []
    assert _versions(store, "export") == ["export0000000001", "export0000000004"]  # promoted, newest
    assert _versions(store, "sft") == ["sft0000000000001", "sft0000000000004"]  # their lineage
    assert _versions(store, "evaluate") == ["evaluate00000001", "evaluate00000004"]
    assert _versions(store, "reformat") == ["reformat0000001"]  # an input of kept versions, however old
    assert sorted(r.version for r in removed if r.stage == "export") == ["export0000000002", "export0000000003"]
    for stage in ("sft", "export", "evaluate"):
        kept = set(_versions(store, stage))
        assert {p.stem for p in (store.root / stage / ".verified").iterdir()} == kept
    store.open("export", "export0000000001")  # what is kept is intact


def test_gc_dry_run_deletes_nothing_and_lists_what_would_go(store):
    planned, _ = collect_garbage(store, keep=1, dry_run=True)
    assert len(planned) == 6 and sum(r.bytes for r in planned) > 0
    assert len(_versions(store, "export")) == 4


def test_gc_removes_abandoned_staging_folders_and_prefect_results_of_removed_versions(store, tmp_path):
    abandoned = store.staging_path("sft", "sft0000000000009")
    (abandoned / "checkpoint-4").mkdir(parents=True)
    (abandoned / "checkpoint-4" / "optimizer.pt").write_bytes(b"0" * 100)
    old = time.time() - 2 * DAY
    for path in (abandoned, abandoned / "checkpoint-4", abandoned / "checkpoint-4" / "optimizer.pt"):
        os.utime(path, (old, old))
    running = store.staging_path("sft", "sft0000000000010")
    running.mkdir(parents=True)
    results = tmp_path / "prefect-storage"
    results.mkdir()
    gone = store.cache_key("export", "export0000000002")
    kept = store.cache_key("export", "export0000000004")
    other_root = ArtifactStore(tmp_path / "elsewhere").cache_key("export", "export0000000002")
    stale_failure, fresh_failure = results / "3f2a9c", results / "8b1d0e"
    for name in (gone, kept, other_root, stale_failure.name, fresh_failure.name):
        (results / name).write_text("{}")
    os.utime(stale_failure, (time.time() - 8 * DAY,) * 2)

    collect_garbage(store, keep=1, result_dirs=[results])
    assert not abandoned.exists() and running.exists()
    assert sorted(p.name for p in results.iterdir()) == sorted([kept, other_root, fresh_failure.name])


def test_gc_rejects_keep_below_one(store):
    with pytest.raises(ValueError, match="at least 1"):
        plan_gc(store, keep=0)


def test_gc_command_prints_what_it_frees(store):
    run = subprocess.run(
        [sys.executable, "-m", "kositp", "artifacts", "gc", "--keep", "2", "--root", str(store.root)], check=False,
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "250"},
    )
    assert run.returncode == 0, run.stderr
    assert "freed" in run.stdout and "in 3 folders" in run.stdout and "export0000000002" in run.stdout
    assert _versions(store, "export") == ["export0000000001", "export0000000003", "export0000000004"]


def test_gc_prunes_task_cache_entries_no_kept_reformat_version_uses(store):
    cache = store.root / "_cache" / "reformat"
    for entry in ("sub-kept", "sub-stale", ".tmp-crashed"):
        (cache / entry).mkdir(parents=True)
        (cache / entry / "train.parquet").write_text("라" * 10, encoding="utf-8")
    planned, _ = collect_garbage(store, keep=1, dry_run=True)
    assert [r.version for r in planned if r.stage == "_cache/reformat"] == [".tmp-crashed", "sub-stale"]
    removed, busy = collect_garbage(store, keep=1)
    assert {".tmp-crashed", "sub-stale"} <= {r.version for r in removed} and busy == []
    assert sorted(p.name for p in cache.iterdir() if p.is_dir()) == ["sub-kept"]
