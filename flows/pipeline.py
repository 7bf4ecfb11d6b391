"""The KOSITP pipeline flow.

One flow serves every way people run it (see ``deployments/prefect.yaml``): a full rebuild, the
nightly retrain on the GPU pool, a single-stage rerun (``only``) and the CPU demo. Stages whose
version is published and intact are cache hits; a damaged one is moved aside and rebuilt; a
failing stage stops the run, and everything it published before stays for the rerun. The
parameters are typed and documented (Google style) because Prefect turns them into the UI's Run
form: the stage fields are drop-downs of the stage names.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from kositp_tasks.secrets import export_secret_blocks
from kositp_tasks.stage_tasks import stage_task
from prefect import flow
from prefect.logging import get_run_logger
from prefect.settings import get_current_settings

from kositp.artifacts import ArtifactStore
from kositp.config import load_profile
from kositp.errors import PermanentError
from kositp.pipeline import StageResult, plan, select
from kositp.retention import collect_garbage
from kositp.stages import PIPELINE_ORDER

StageName = Literal[PIPELINE_ORDER]  # type: ignore[valid-type]

# Each stage's start and end, for a caller that shows progress (`kositp run`: one line per stage).
# The records carry a `stage_event` dict; the run logger's lines are what the Prefect UI shows.
stage_events = logging.getLogger("kositp.stage_events")
stage_events.setLevel(logging.INFO)
stage_events.propagate = False


class PipelineFailed(RuntimeError):
    """A stage failed after its retries; ``results`` holds every stage's outcome so far."""

    def __init__(self, message: str, results: list[dict[str, Any]]):
        super().__init__(message)
        self.results = results


def stage_names(value: list[str] | str) -> list[str]:
    """A stage field as a list: one name given alone means that stage."""
    return [value] if isinstance(value, str) else list(value)


class OneLineFailures(logging.Filter):
    """Prefect's engines log a failed task or flow with its traceback. For an error no retry can fix
    (a full or read-only artifact root, a missing model) and for this flow's report of a failed
    stage, the line says all there is: the traceback would only bury it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], PermanentError | PipelineFailed):
            record.exc_info = record.exc_text = None
        return True


_ONE_LINE = OneLineFailures()


@flow(name="kositp-pipeline")
def pipeline(
    profile: str = "demo",
    root: str | None = None,
    until: StageName | None = None,
    # An empty list, not None, so that the UI's Run form opens on the stages' multi-select; a single
    # name is accepted too (`prefect deployment run ... --param only=evaluate`).
    only: list[StageName] | StageName = [],  # noqa: B006
    overrides: list[str] = [],  # noqa: B006
    force: list[StageName] | StageName = [],  # noqa: B006
    keep_versions: int | None = None,
) -> list[dict[str, Any]]:
    """Run the profile's stages in order; returns one ``StageResult`` dict per stage run.

    Args:
        profile: A profile name from configs/ (demo, seed, solar-10.7b, mistral-7b, gemma-270m, ...) or
            a path, relative to the repository, to a YAML profile or a seed config.json.
        root: Artifact root; empty uses the profile's `root`.
        until: Run the stages up to and including this one.
        only: Run just these stages (e.g. sft after a failure; one name or a list); their inputs must be
            published.
        overrides: Profile overrides as section.key=value, e.g. sft.lora_r=16 or evaluate.limit=200.
        force: Rebuild these stages even though their version is published (one name or a list).
        keep_versions: After a successful run, delete artifact versions beyond the newest N per stage,
            except promoted and latest models and everything they were built from. Empty keeps all.
    """
    for engine in ("prefect.task_runs", "prefect.flow_runs"):
        logging.getLogger(engine).addFilter(_ONE_LINE)  # once: the same filter is not added twice
    logger = get_run_logger()
    for env_var in export_secret_blocks():
        logger.info("%s taken from its Prefect Secret block", env_var)
    loaded = load_profile(profile, overrides, root=root)
    store = ArtifactStore(loaded.root)
    settings = loaded.prefect
    forced = set(stage_names(force))
    results: list[dict[str, Any]] = []
    selected = select(plan(loaded), until=until, only=stage_names(only))
    for index, item in enumerate(selected, 1):
        event = {"stage": item.name, "version": item.version, "index": index, "total": len(selected)}
        stage_events.info("%s started", item.name, extra={"stage_event": {**event, "status": "started"}})
        intact, note = store.intact(item.name, item.version)
        if note:
            logger.warning(note)
        existed = intact and item.name not in forced
        task_run = stage_task(item.stage, settings, refresh=not existed)
        state = task_run(item, str(store.root), loaded.name, settings, item.name in forced, return_state=True)
        if state.is_failed():
            failure = StageResult(item.name, item.version, "failed", str(store.path(item.name, item.version)))
            failure.error = state.message or "failed"
            results.append(failure.as_dict())
            stage_events.info("%s failed", item.name, extra={"stage_event": {**event, "status": "failed"}})
            raise PipelineFailed(f"stage {item.name} failed: {failure.error}", results)
        outcome: StageResult = state.result()
        outcome.status = "cached" if existed else outcome.status
        outcome.note = note or outcome.note
        logger.info("%s %s %s -> %s", item.name, item.version, outcome.status, outcome.path)
        stage_events.info("%s %s", item.name, outcome.status, extra={"stage_event": {**event, "status": outcome.status}})
        results.append(outcome.as_dict())
    if keep_versions is not None:
        result_dir = get_current_settings().results.local_storage_path
        removed, busy = collect_garbage(store, keep_versions, result_dirs=[result_dir])
        logger.info(
            "retention: removed %d folders (%.1f MB)%s", len(removed), sum(r.bytes for r in removed) / 1e6,
            f"; {len(busy)} held by a running build" if busy else "",
        )
    return results
