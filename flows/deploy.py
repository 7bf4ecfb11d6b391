"""Register the deployments of ``deployments/prefect.yaml`` with the Prefect server at ``PREFECT_API_URL``.

``prefect deploy --all`` needs the repository's location on the worker (its pull step), asks
questions, and fails when a work pool or the ``gpu`` concurrency limit is missing. This does the
whole set-up without prompting and can be run again at any time: missing work pools (process
type) and the ``gpu`` limit are created, existing ones are left as they are, and every
deployment is created or updated in place with the repository directory as its working directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, WorkPoolCreate
from prefect.exceptions import ObjectNotFound
from prefect.schedules import Cron

from kositp.errors import PermanentError


class DeploySpecError(PermanentError):
    """deployments/prefect.yaml is missing or does not say what is needed."""


@dataclass(frozen=True)
class Registered:
    kind: str  # work pool, concurrency limit, deployment
    name: str
    status: str  # created, exists, registered
    detail: str = ""


def read_spec(prefect_file: Path) -> list[dict[str, Any]]:
    try:
        spec = yaml.safe_load(prefect_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DeploySpecError(f"cannot read {prefect_file}: {exc}") from exc
    deployments = spec.get("deployments") if isinstance(spec, dict) else None
    if not deployments or not all(isinstance(d, dict) and d.get("name") and d.get("entrypoint") for d in deployments):
        raise DeploySpecError(f"{prefect_file}: `deployments` must list entries with a name and an entrypoint")
    return deployments


def ensure_work_pools(names: list[str]) -> list[Registered]:
    done = []
    with get_client(sync_client=True) as client:
        for name in dict.fromkeys(names):
            try:
                pool = client.read_work_pool(name)
                done.append(Registered("work pool", name, "exists", pool.type))
            except ObjectNotFound:
                client.create_work_pool(WorkPoolCreate(name=name, type="process"))
                done.append(Registered("work pool", name, "created", "process"))
    return done


def ensure_concurrency_limit(name: str, limit: int) -> Registered:
    with get_client(sync_client=True) as client:
        try:
            existing = client.read_global_concurrency_limit_by_name(name)
            return Registered("concurrency limit", name, "exists", f"limit {existing.limit}")
        except ObjectNotFound:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
            return Registered("concurrency limit", name, "created", f"limit {limit}")


def register(entry: dict[str, Any], repo_dir: Path) -> Registered:
    flow = Flow.from_source(source=str(repo_dir), entrypoint=entry["entrypoint"])
    # a slug per schedule makes a second deploy update the schedule instead of adding another
    schedules = [
        Cron(s["cron"], timezone=s.get("timezone"), slug=f"{entry['name']}-{i}")
        for i, s in enumerate(entry.get("schedules") or [])
    ]
    deployment_id = flow.deploy(
        name=entry["name"],
        work_pool_name=(entry.get("work_pool") or {}).get("name"),
        build=False,
        push=False,
        parameters=entry.get("parameters") or {},
        description=entry.get("description"),
        schedules=schedules,
        tags=entry.get("tags"),
        print_next_steps=False,
        ignore_warnings=True,
    )
    return Registered("deployment", f"{flow.name}/{entry['name']}", "registered", str(deployment_id))


def deploy_all(prefect_file: Path, repo_dir: Path, gpu_limit_name: str = "gpu", gpu_limit: int = 1) -> list[Registered]:
    deployments = read_spec(prefect_file)
    pools = [d["work_pool"]["name"] for d in deployments if (d.get("work_pool") or {}).get("name")]
    done = ensure_work_pools(pools)
    done.append(ensure_concurrency_limit(gpu_limit_name, gpu_limit))
    done.extend(register(entry, repo_dir.resolve()) for entry in deployments)
    return done
