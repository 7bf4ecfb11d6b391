"""The Prefect spine on a real local Prefect server: caching, failure, single-stage rerun."""

import json
import os
import time

import pytest
from fakes import FAKE_REGISTRY, SPINE_PROFILE

import kositp.pipeline
from kositp.artifacts import ArtifactStore

pytestmark = pytest.mark.slow


@pytest.fixture
def fake_stages(monkeypatch):
    monkeypatch.setattr(kositp.pipeline, "registry", lambda: FAKE_REGISTRY)


def _task_runs(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        return {run.name.split("-")[0]: run for run in runs}


def _task_run_states(flow_run_id, timeout: float = 60) -> dict[str, str]:
    """Task run states as the server records them; it records them from events, a moment after the run."""
    deadline = time.monotonic() + timeout
    while True:
        states = {name: run.state for name, run in _task_runs(flow_run_id).items()}
        if all(state.is_final() for state in states.values()) or time.monotonic() > deadline:
            return {name: state.name for name, state in states.items()}
        time.sleep(0.5)


def test_unchanged_second_run_is_cached_in_prefect_and_on_disk(prefect_server, fake_stages, tmp_path):
    from kositp_flows.pipeline import pipeline

    first = pipeline(profile=SPINE_PROFILE, root=str(tmp_path))
    assert [(r["stage"], r["status"]) for r in first] == [("ingest", "ran"), ("reformat", "ran")]
    state = pipeline(profile=SPINE_PROFILE, root=str(tmp_path), return_state=True)
    second = state.result()
    assert [r["status"] for r in second] == ["cached", "cached"]
    assert [r["version"] for r in second] == [r["version"] for r in first]
    assert _task_run_states(state.state_details.flow_run_id) == {"ingest": "Cached", "reformat": "Cached"}


def test_changed_parameter_reruns_only_downstream_of_the_change(prefect_server, fake_stages, tmp_path):
    from kositp_flows.pipeline import pipeline

    pipeline(profile=SPINE_PROFILE, root=str(tmp_path))
    changed = pipeline(profile=SPINE_PROFILE, root=str(tmp_path), overrides=["reformat.fail_once_marker=null"])
    assert [r["status"] for r in changed] == ["cached", "cached"]
    changed = pipeline(profile=SPINE_PROFILE, root=str(tmp_path), overrides=["ingest.words=[제주, 강릉]"])
    assert [r["status"] for r in changed] == ["ran", "ran"]


def test_failed_stage_then_rerun_of_just_that_stage(prefect_server, fake_stages, tmp_path):
    from kositp_flows.pipeline import PipelineFailed, pipeline

    marker = tmp_path / "failed-once"
    overrides = [f"reformat.fail_once_marker={marker}", "prefect.retries=0"]
    with pytest.raises(PipelineFailed) as failure:
        pipeline(profile=SPINE_PROFILE, root=str(tmp_path / "store"), overrides=overrides)
    statuses = [(r["stage"], r["status"]) for r in failure.value.results]
    assert statuses == [("ingest", "ran"), ("reformat", "failed")]
    assert "GPU가 선점되었습니다" in failure.value.results[-1]["error"]
    # one stage by name, as `prefect deployment run ... --param only=reformat` passes it
    rerun = pipeline(profile=SPINE_PROFILE, root=str(tmp_path / "store"), overrides=overrides, only="reformat")
    assert [(r["stage"], r["status"]) for r in rerun] == [("reformat", "ran")]
    counts = json.loads((ArtifactStore(tmp_path / "store").path("reformat", rerun[0]["version"]) / "counts.json").read_text())
    assert counts["한국어"] == 3


def test_retries_recover_a_transient_failure(prefect_server, fake_stages, tmp_path):
    from kositp_flows.pipeline import pipeline

    overrides = [f"reformat.fail_once_marker={tmp_path / 'marker'}", "prefect.retries=1", "prefect.retry_delay_seconds=0"]
    results = pipeline(profile=SPINE_PROFILE, root=str(tmp_path / "store"), overrides=overrides)
    assert [r["status"] for r in results] == ["ran", "ran"]


def test_an_error_no_retry_can_fix_is_not_retried(prefect_server, fake_stages, tmp_path):
    from kositp_flows.pipeline import pipeline

    overrides = ["reformat.missing_input=/없는/경로", "prefect.retries=3", "prefect.retry_delay_seconds=0"]
    state = pipeline(profile=SPINE_PROFILE, root=str(tmp_path), overrides=overrides, return_state=True)
    assert state.is_failed() and "입력 경로가 없습니다: /없는/경로" in state.message
    assert _task_run_states(state.state_details.flow_run_id)["reformat"] == "Failed"
    assert _task_runs(state.state_details.flow_run_id)["reformat"].run_count == 1


def test_a_damaged_published_artifact_is_moved_aside_and_rebuilt(prefect_server, fake_stages, tmp_path):
    from kositp_flows.pipeline import pipeline

    first = pipeline(profile=SPINE_PROFILE, root=str(tmp_path))
    words = tmp_path / "ingest" / first[0]["version"] / "words.json"
    text = words.read_text(encoding="utf-8")
    words.write_text(text.replace("한국어", "한국인"), encoding="utf-8")  # same size: only the checksum differs
    state = pipeline(profile=SPINE_PROFILE, root=str(tmp_path), return_state=True)
    second = state.result()
    assert [(r["stage"], r["status"]) for r in second] == [("ingest", "ran"), ("reformat", "cached")]
    assert "damaged" in second[0]["note"] and "checksum mismatch" in second[0]["note"]
    assert _task_run_states(state.state_details.flow_run_id) == {"ingest": "Completed", "reformat": "Cached"}
    (aside,) = (tmp_path / "ingest" / ".damaged").iterdir()
    assert "한국인" in (aside / "words.json").read_text(encoding="utf-8")
    assert words.read_text(encoding="utf-8") == text
    ArtifactStore(tmp_path).open("ingest", first[0]["version"])


def test_force_rebuilds_a_published_stage(prefect_server, fake_stages, tmp_path):
    from kositp_flows.pipeline import pipeline

    first = pipeline(profile=SPINE_PROFILE, root=str(tmp_path))
    forced = pipeline(profile=SPINE_PROFILE, root=str(tmp_path), force=["reformat"])
    assert [r["status"] for r in forced] == ["cached", "ran"]
    assert forced[1]["version"] == first[1]["version"]
    ArtifactStore(tmp_path).open("reformat", forced[1]["version"])


def test_secret_block_fills_an_unset_credential_without_overriding_the_environment(prefect_server, monkeypatch):
    from kositp_tasks.secrets import export_secret_blocks
    from prefect.blocks.system import Secret

    Secret(value="sk-블록에서-온-키").save("kositp-test-key", overwrite=True)
    monkeypatch.delenv("KOSITP_TEST_KEY", raising=False)
    assert export_secret_blocks(("KOSITP_TEST_KEY", "KOSITP_ABSENT_KEY")) == ["KOSITP_TEST_KEY"]
    assert os.environ["KOSITP_TEST_KEY"] == "sk-블록에서-온-키"
    monkeypatch.setenv("KOSITP_TEST_KEY", "from-env")
    assert export_secret_blocks(("KOSITP_TEST_KEY",)) == []
    assert os.environ["KOSITP_TEST_KEY"] == "from-env"


def test_keep_versions_removes_older_versions_after_a_successful_run(prefect_server, fake_stages, tmp_path):
    from kositp_flows.pipeline import pipeline

    old = pipeline(profile=SPINE_PROFILE, root=str(tmp_path), overrides=["ingest.words=[서울, 부산]"])
    new = pipeline(profile=SPINE_PROFILE, root=str(tmp_path), keep_versions=1)
    store = ArtifactStore(tmp_path)
    for before, after in zip(old, new, strict=True):
        assert store.versions(after["stage"]) == [after["version"]] != [before["version"]]


def test_a_missing_gpu_limit_is_one_warning_per_run_not_one_per_stage(prefect_server, monkeypatch, tmp_path):
    """The demo's temporary server has no `gpu` limit (no `kositp deploy`): its GPU stages say so once."""
    from dataclasses import replace

    from fakes import COUNTS, WORDS
    from kositp_flows.pipeline import pipeline
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    gpu_stages = {s.name: replace(s, gpu=True) for s in (WORDS, COUNTS)}
    monkeypatch.setattr(kositp.pipeline, "registry", lambda: gpu_stages)
    overrides = [f"prefect.gpu_concurrency_limit=gpu-{tmp_path.name}"]  # a limit this server does not have
    state = pipeline(profile=SPINE_PROFILE, root=str(tmp_path), overrides=overrides, return_state=True)
    assert [r["status"] for r in state.result()] == ["ran", "ran"]
    APILogWorker.drain_all(timeout=10)
    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    warnings = [log.message for log in logs if log.level >= 30]
    assert len(warnings) == 1 and f"no `gpu-{tmp_path.name}` concurrency limit" in warnings[0], warnings
