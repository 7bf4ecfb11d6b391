"""The orchestrator-free runner: planning, selection, execution against the store."""

import json

import pytest
from fakes import FAKE_REGISTRY, SPINE_PROFILE

from kositp.artifacts import ArtifactStore
from kositp.config import ProfileError, load_profile
from kositp.pipeline import execute, plan, select


def _profile(tmp_path, *overrides):
    return load_profile(SPINE_PROFILE, list(overrides), root=tmp_path)


def test_plan_versions_chain_through_inputs(tmp_path):
    first = plan(_profile(tmp_path), FAKE_REGISTRY)
    changed = plan(_profile(tmp_path, "ingest.words=[서울, 부산, 대전]"), FAKE_REGISTRY)
    assert [p.name for p in first] == ["ingest", "reformat"]
    assert first[1].inputs == {"ingest": first[0].version}
    assert changed[0].version != first[0].version and changed[1].version != first[1].version


def test_unknown_profile_key_is_rejected(tmp_path):
    with pytest.raises(ProfileError, match="section 'ingest'"):
        plan(_profile(tmp_path, "ingest.wrods=[오타]"), FAKE_REGISTRY)


def test_execute_builds_then_caches(tmp_path):
    store = ArtifactStore(tmp_path)
    items = plan(_profile(tmp_path), FAKE_REGISTRY)
    results = [execute(item, store, "demo") for item in items]
    assert [r.status for r in results] == ["ran", "ran"]
    counts = json.loads((store.path("reformat", items[1].version) / "counts.json").read_text())
    assert counts == {"한국어": 3, "말뭉치": 3}
    assert store.open("reformat", items[1].version).report == {"longest": "한국어"}
    assert [execute(item, store, "demo").status for item in items] == ["cached", "cached"]
    assert store.latest("reformat", "demo") == items[1].version


def test_only_needs_upstream_to_exist(tmp_path):
    items = plan(_profile(tmp_path), FAKE_REGISTRY)
    (only,) = select(items, only=["reformat"])
    with pytest.raises(ProfileError, match="run the pipeline up to 'ingest' first"):
        execute(only, ArtifactStore(tmp_path), "demo")


def test_select_until_and_unknown_stage(tmp_path):
    items = plan(_profile(tmp_path), FAKE_REGISTRY)
    assert [p.name for p in select(items, until="ingest")] == ["ingest"]
    with pytest.raises(ProfileError, match="'sft' is not in this run"):
        select(items, until="sft")
