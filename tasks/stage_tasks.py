"""One Prefect task per registered stage.

The task's cache key is the artifact version (qualified by the artifact root), so Prefect's
cache and the artifact store agree: a published version is a ``Cached`` task run in the UI and
a no-op on disk. GPU stages carry the ``gpu`` tag and hold a slot of the ``gpu`` global
concurrency limit while they run, so two trainings never share a card; where the limit does not
exist (the temporary server of ``kositp run``) they run without one, said once per run. A stage
that fails with a :class:`kositp.errors.PermanentError` (a bad profile, a missing input or model)
is not retried: the profile's retries are for failures that pass (out of memory, a network error,
a lost node).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from kositp_tasks.reporting import PrefectReporter
from prefect import Task, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import TaskRun
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectNotFound
from prefect.logging import get_run_logger
from prefect.runtime import flow_run
from prefect.states import State

from kositp.artifacts import ArtifactStore
from kositp.config import PrefectSettings
from kositp.errors import PermanentError
from kositp.pipeline import PlannedStage, StageResult, execute
from kositp.stages import Stage


def cache_key(_context: Any, parameters: dict[str, Any]) -> str:
    item: PlannedStage = parameters["item"]
    return ArtifactStore(parameters["root"]).cache_key(item.name, item.version)


def retry_unless_permanent(_task: Task, _task_run: TaskRun, state: State) -> bool:
    return not isinstance(state.result(raise_on_failure=False), PermanentError)


# (flow run, limit) pairs already warned about: a missing limit is one line per run, not one per stage
_WARNED_MISSING: set[tuple[str, str]] = set()


def gpu_slot(settings: PrefectSettings) -> AbstractContextManager[Any]:
    """A slot of the GPU concurrency limit; without the limit (no `kositp deploy` yet: the demo's
    temporary server) the stage runs unguarded, which is said once per flow run."""
    name = settings.gpu_concurrency_limit
    if settings.strict_gpu_limit or _limit_exists(name):
        return concurrency(name, occupy=1, strict=settings.strict_gpu_limit)
    key = (str(flow_run.get_id()), name)
    if key not in _WARNED_MISSING:
        _WARNED_MISSING.add(key)
        get_run_logger().warning(
            f"no `{name}` concurrency limit on this Prefect server: GPU stages run without a slot "
            "(`kositp deploy` creates it; prefect.strict_gpu_limit: true fails instead)"
        )
    return nullcontext()


def _limit_exists(name: str) -> bool:
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            return False
    return True


def _run_stage(item: PlannedStage, root: str, profile_name: str, settings: PrefectSettings, force: bool) -> StageResult:
    with gpu_slot(settings) if item.stage.gpu else nullcontext():
        return execute(item, ArtifactStore(root), profile_name, PrefectReporter(), force=force)


def make_stage_task(stage: Stage) -> Task:
    return task(
        _run_stage,
        name=stage.name,
        description=stage.description or None,
        tags=["kositp", "gpu"] if stage.gpu else ["kositp"],
        cache_key_fn=cache_key,
        persist_result=True,
        retry_condition_fn=retry_unless_permanent,
        task_run_name=f"{stage.name}-{{item.version}}",
    )


_STAGE_TASKS: dict[str, Task] = {}


def stage_task(stage: Stage, settings: PrefectSettings, refresh: bool) -> Task:
    """The stage's task with the profile's retry policy; ``refresh`` bypasses Prefect's cache."""
    if stage.name not in _STAGE_TASKS:
        _STAGE_TASKS[stage.name] = make_stage_task(stage)
    return _STAGE_TASKS[stage.name].with_options(
        retries=settings.retries_for(stage.name),
        retry_delay_seconds=settings.retry_delay_seconds,
        refresh_cache=refresh,
    )

