"""The demo profile end to end through the Prefect flow, once per session; stage tests hang off it."""

import pytest

from kositp.artifacts import ArtifactStore
from kositp.config import load_profile
from kositp.stages import PIPELINE_ORDER, registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def demo_run(prefect_server, tmp_path_factory):
    from flows.pipeline import pipeline

    root = tmp_path_factory.mktemp("demo-artifacts")
    return root, pipeline(profile="demo", root=str(root))


def test_demo_runs_every_stage_in_order(demo_run):
    root, results = demo_run
    assert [r["stage"] for r in results] == [s for s in PIPELINE_ORDER if s in registry()] == list(PIPELINE_ORDER)
    assert {r["status"] for r in results} == {"ran"}
    store = ArtifactStore(root)
    for result in results:
        artifact = store.open(result["stage"], result["version"])
        assert set(artifact.manifest["inputs"]) >= set(registry()[result["stage"]].inputs)


def test_second_demo_run_is_all_cache_hits(demo_run):
    from flows.pipeline import pipeline

    root, first = demo_run
    second = pipeline(profile="demo", root=str(root))
    assert [(r["stage"], r["version"], r["status"]) for r in second] == [
        (r["stage"], r["version"], "cached") for r in first
    ]


def test_demo_profile_validates_every_section():
    from kositp.pipeline import plan

    assert [p.name for p in plan(load_profile("demo"))] == list(PIPELINE_ORDER)
