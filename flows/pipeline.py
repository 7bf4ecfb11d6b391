"""The KOSITP pipeline flow.

One flow serves every way people run it (see ``deployments/prefect.yaml``): a full rebuild, the
nightly retrain on the GPU pool, a single-stage rerun (``only``) and the CPU demo. Stages whose
version is already published are cache hits; a failing stage stops the run, and everything it
published before stays for the rerun.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.logging import get_run_logger

from kositp.artifacts import ArtifactStore
from kositp.config import load_profile
from kositp.pipeline import StageResult, plan, select
from tasks.secrets import export_secret_blocks
from tasks.stage_tasks import stage_task


class PipelineFailed(RuntimeError):
    """A stage failed after its retries; ``results`` holds every stage's outcome so far."""

    def __init__(self, message: str, results: list[dict[str, Any]]):
        super().__init__(message)
        self.results = results


@flow(name="kositp-pipeline")
def pipeline(
    profile: str = "demo",
    root: str | None = None,
    until: str | None = None,
    only: list[str] | None = None,
    overrides: list[str] | None = None,
    force: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Run the profile's stages in order; returns one ``StageResult`` dict per stage run."""
    logger = get_run_logger()
    for env_var in export_secret_blocks():
        logger.info("%s taken from its Prefect Secret block", env_var)
    loaded = load_profile(profile, overrides or [], root=root)
    store = ArtifactStore(loaded.root)
    settings = loaded.prefect
    forced = set(force or [])
    results: list[dict[str, Any]] = []
    for item in select(plan(loaded), until=until, only=only or []):
        existed = store.exists(item.name, item.version) and item.name not in forced
        task_run = stage_task(item.stage, settings, refresh=not existed)
        state = task_run(item, str(store.root), loaded.name, settings, item.name in forced, return_state=True)
        if state.is_failed():
            failure = StageResult(item.name, item.version, "failed", str(store.path(item.name, item.version)))
            failure.error = state.message or "failed"
            results.append(failure.as_dict())
            raise PipelineFailed(f"stage {item.name} failed: {failure.error}", results)
        outcome: StageResult = state.result()
        outcome.status = "cached" if existed else outcome.status
        logger.info("%s %s %s -> %s", item.name, item.version, outcome.status, outcome.path)
        results.append(outcome.as_dict())
    return results
