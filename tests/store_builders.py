"""Published artifacts with planted contents, for tests of what reads the store (promotion, retention)."""

from __future__ import annotations

import json
from pathlib import Path

from kositp.artifacts import MANIFEST, Artifact, ArtifactStore


def publish(
    store: ArtifactStore,
    stage: str,
    version: str,
    files: dict[str, str],
    inputs: dict[str, str] | None = None,
    params: dict | None = None,
    finished_at: str | None = None,
    report: dict | None = None,
) -> Artifact:
    with store.build(stage, version) as staging:
        for name, text in files.items():
            (staging.path / name).parent.mkdir(parents=True, exist_ok=True)
            (staging.path / name).write_text(text, encoding="utf-8")
        artifact = store.publish(
            staging, inputs=inputs or {}, params=params or {}, code_version="1", report=report or {}
        )
    if finished_at:  # the manifest is not among the checksummed files
        manifest_path = artifact.path / MANIFEST
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        manifest["finished_at"] = finished_at
        manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    return artifact


def metrics_json(scores: dict[str, float]) -> str:
    return json.dumps({"sets": {name: {"macro_f1": f, "n": 10} for name, f in scores.items()}})


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
