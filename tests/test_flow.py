"""The Prefect spine on a real local Prefect server: caching, failure, single-stage rerun."""

import asyncio
import json
import os

import pytest
from fakes import FAKE_REGISTRY, SPINE_PROFILE

import kositp.pipeline
from kositp.artifacts import ArtifactStore

pytestmark = pytest.mark.slow


@pytest.fixture
def fake_stages(monkeypatch):
    monkeypatch.setattr(kositp.pipeline, "registry", lambda: FAKE_REGISTRY)


def _task_run_states(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    async def read():
        async with get_client() as client:
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                sort=TaskRunSort.EXPECTED_START_TIME_ASC,
                limit=50,
            )
            return {run.name.split("-")[0]: run.state.name for run in runs}

    return asyncio.run(read())


def test_unchanged_second_run_is_cached_in_prefect_and_on_disk(prefect_server, fake_stages, tmp_path):
    from flows.pipeline import pipeline

    first = pipeline(profile=SPINE_PROFILE, root=str(tmp_path))
    assert [(r["stage"], r["status"]) for r in first] == [("ingest", "ran"), ("reformat", "ran")]
    state = pipeline(profile=SPINE_PROFILE, root=str(tmp_path), return_state=True)
    second = state.result()
    assert [r["status"] for r in second] == ["cached", "cached"]
    assert [r["version"] for r in second] == [r["version"] for r in first]
    assert _task_run_states(state.state_details.flow_run_id) == {"ingest": "Cached", "reformat": "Cached"}


def test_changed_parameter_reruns_only_downstream_of_the_change(prefect_server, fake_stages, tmp_path):
    from flows.pipeline import pipeline

    pipeline(profile=SPINE_PROFILE, root=str(tmp_path))
    changed = pipeline(profile=SPINE_PROFILE, root=str(tmp_path), overrides=["reformat.fail_once_marker=null"])
    assert [r["status"] for r in changed] == ["cached", "cached"]
    changed = pipeline(profile=SPINE_PROFILE, root=str(tmp_path), overrides=["ingest.words=[제주, 강릉]"])
    assert [r["status"] for r in changed] == ["ran", "ran"]


def test_failed_stage_then_rerun_of_just_that_stage(prefect_server, fake_stages, tmp_path):
    from flows.pipeline import PipelineFailed, pipeline

    marker = tmp_path / "failed-once"
    overrides = [f"reformat.fail_once_marker={marker}", "prefect.retries=0"]
    with pytest.raises(PipelineFailed) as failure:
        pipeline(profile=SPINE_PROFILE, root=str(tmp_path / "store"), overrides=overrides)
    statuses = [(r["stage"], r["status"]) for r in failure.value.results]
    assert statuses == [("ingest", "ran"), ("reformat", "failed")]
    assert "GPU가 선점되었습니다" in failure.value.results[-1]["error"]
    rerun = pipeline(profile=SPINE_PROFILE, root=str(tmp_path / "store"), overrides=overrides, only=["reformat"])
    assert [(r["stage"], r["status"]) for r in rerun] == [("reformat", "ran")]
    counts = json.loads((ArtifactStore(tmp_path / "store").path("reformat", rerun[0]["version"]) / "counts.json").read_text())
    assert counts["한국어"] == 3


def test_retries_recover_a_transient_failure(prefect_server, fake_stages, tmp_path):
    from flows.pipeline import pipeline

    overrides = [f"reformat.fail_once_marker={tmp_path / 'marker'}", "prefect.retries=1", "prefect.retry_delay_seconds=0"]
    results = pipeline(profile=SPINE_PROFILE, root=str(tmp_path / "store"), overrides=overrides)
    assert [r["status"] for r in results] == ["ran", "ran"]


def test_force_rebuilds_a_published_stage(prefect_server, fake_stages, tmp_path):
    from flows.pipeline import pipeline

    first = pipeline(profile=SPINE_PROFILE, root=str(tmp_path))
    forced = pipeline(profile=SPINE_PROFILE, root=str(tmp_path), force=["reformat"])
    assert [r["status"] for r in forced] == ["cached", "ran"]
    assert forced[1]["version"] == first[1]["version"]
    ArtifactStore(tmp_path).open("reformat", forced[1]["version"])


def test_secret_block_fills_an_unset_credential_without_overriding_the_environment(prefect_server, monkeypatch):
    from prefect.blocks.system import Secret

    from tasks.secrets import export_secret_blocks

    Secret(value="sk-블록에서-온-키").save("kositp-test-key", overwrite=True)
    monkeypatch.delenv("KOSITP_TEST_KEY", raising=False)
    assert export_secret_blocks(("KOSITP_TEST_KEY", "KOSITP_ABSENT_KEY")) == ["KOSITP_TEST_KEY"]
    assert os.environ["KOSITP_TEST_KEY"] == "sk-블록에서-온-키"
    monkeypatch.setenv("KOSITP_TEST_KEY", "from-env")
    assert export_secret_blocks(("KOSITP_TEST_KEY",)) == []
    assert os.environ["KOSITP_TEST_KEY"] == "from-env"
