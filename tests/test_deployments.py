"""What a user does with a real ``prefect server start``: deploy, list, schedule, worker pick-up.

These are the server paths that broke with fastapi 0.151+ (an explicit JSON null is rejected, so
``prefect deploy`` and every ``read_*`` fail) and SQLAlchemy 2.1 (the scheduler never creates a
run); the pins in pyproject.toml are held by these tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
KOSITP = [sys.executable, "-m", "kositp"]


def _client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


@pytest.fixture(scope="module")
def deployed(prefect_server):
    """``kositp deploy`` run twice, as a user re-running it after a change would."""
    runs = [subprocess.run([*KOSITP, "deploy"], check=False, capture_output=True, text=True, timeout=300) for _ in range(2)]
    return runs


def test_server_answers_an_explicit_json_null(prefect_server):
    for endpoint in ("deployments/filter", "flow_runs/filter", "work_pools/filter", "artifacts/filter"):
        reply = httpx.post(f"{prefect_server}/{endpoint}", json={"limit": None}, timeout=30)
        assert reply.status_code == 200, (endpoint, reply.text)


def test_deploy_is_idempotent_and_registers_every_deployment(deployed):
    for run in deployed:
        assert run.returncode == 0, run.stderr[-3000:]
    listing = subprocess.run(
        [sys.executable, "-m", "prefect", "deployment", "ls"], check=False,
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "250"},
    )
    assert listing.returncode == 0, listing.stderr[-2000:]
    for name in ("full-rebuild", "nightly-retrain", "rerun-stage", "demo"):
        assert name in listing.stdout
    with _client() as client:
        deployments = {d.name: d for d in client.read_deployments()}
        assert {"full-rebuild", "nightly-retrain", "rerun-stage", "demo"} <= set(deployments)
        nightly = deployments["nightly-retrain"]
        assert "gpu" in nightly.work_pool_name
        assert len(nightly.schedules) == 1, "a second deploy must update the schedule, not add one"
        schedule = nightly.schedules[0].schedule
        assert (schedule.cron, schedule.timezone) == ("0 2 * * *", "Asia/Seoul")
        assert nightly.pull_steps[0]["prefect.deployments.steps.set_working_directory"]["directory"] == str(REPO)
        only = nightly.parameter_openapi_schema["properties"]["only"]
        assert "sft" in only["anyOf"][0]["items"]["enum"] and only["description"]
        assert only["default"] == [], "the Run form opens on the stages' multi-select, not on a list/None toggle"
        assert client.read_global_concurrency_limit_by_name("gpu").limit == 1
        assert {p.name for p in client.read_work_pools()} >= {"gpu-pool", "cpu-pool"}


def test_scheduler_creates_the_nightly_runs(deployed):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    deadline = time.monotonic() + 90
    with _client() as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["nightly-retrain"]))
            )
            if runs:
                break
            time.sleep(2)
    assert runs, "the scheduler created no run of the nightly deployment"
    assert {r.state.type.value for r in runs} == {"SCHEDULED"}
    # 02:00 in Seoul is 17:00 UTC
    assert {(r.expected_start_time.hour, r.expected_start_time.minute) for r in runs} == {(17, 0)}


def test_a_one_stage_rerun_takes_the_stage_name_alone(deployed):
    """The README's command: `only` as one name, not a JSON list (the server checks it against the schema)."""
    run = subprocess.run(
        [sys.executable, "-m", "prefect", "deployment", "run", "kositp-pipeline/demo", "--param", "only=evaluate"],
        check=False, capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "250"},
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    (run_id,) = re.findall(r"UUID: ([0-9a-f-]{36})", run.stdout)
    with _client() as client:
        try:
            assert client.read_flow_run(run_id).parameters["only"] == "evaluate"
        finally:
            client.delete_flow_run(run_id)  # so that no worker of another test picks it up


def test_deploy_without_a_server_says_how_to_start_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    run = subprocess.run([*KOSITP, "deploy"], check=False, capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2
    assert "PREFECT_API_URL is not set" in run.stderr and "kositp server" in run.stderr


def _task_states(client, flow_run_id) -> dict[str, str]:
    """Each task run's final state. The server records task run states from the engine's events,
    after the flow run's final state can already be read (a CI run read a task run with no state
    yet), so this waits up to 60 s for every task run to have a final one."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    deadline = time.monotonic() + 60
    while True:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
            sort=TaskRunSort.EXPECTED_START_TIME_ASC,
        )
        if all(run.state is not None and run.state.is_final() for run in runs) or time.monotonic() > deadline:
            return {run.name.split("-")[0]: run.state.name if run.state else "no state" for run in runs}
        time.sleep(0.5)


def _run_on_a_worker(client, deployment: str, parameters: dict) -> tuple[str, dict[str, str], str]:
    """Queue a run of ``deployment``; a process worker on its pool picks it up and runs it to the end."""
    from prefect.deployments import run_deployment

    queued = run_deployment(f"kositp-pipeline/{deployment}", parameters=parameters, timeout=0)
    worker = subprocess.run(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", "cpu-pool", "--run-once"], check=False,
        capture_output=True, text=True, timeout=900, cwd="/",
    )
    finished = client.read_flow_run(queued.id)
    assert finished.state.is_final(), (finished.state, worker.stdout[-3000:], worker.stderr[-3000:])
    return finished.state.type.value, _task_states(client, queued.id), finished.state.message


def test_a_worker_runs_the_demo_then_caches_it_and_a_failed_run_resumes_at_the_failed_stage(deployed, tmp_path):
    root = str(tmp_path / "artifacts")
    upstream = ("ingest", "instructions", "reformat")
    with _client() as client:
        state, tasks, _ = _run_on_a_worker(client, "demo", {"root": root, "overrides": ["sft.device=cuda"]})
        assert state == "FAILED"
        assert {s: tasks[s] for s in (*upstream, "sft")} == {**dict.fromkeys(upstream, "Completed"), "sft": "Failed"}

        state, tasks, message = _run_on_a_worker(client, "demo", {"root": root})
        assert state == "COMPLETED", message
        assert {s: tasks[s] for s in upstream} == dict.fromkeys(upstream, "Cached")
        assert {tasks[s] for s in ("sft", "dpo", "export", "evaluate", "promote")} == {"Completed"}

        state, tasks, message = _run_on_a_worker(client, "demo", {"root": root})
        assert state == "COMPLETED", message
        assert set(tasks.values()) == {"Cached"} and len(tasks) == 8
