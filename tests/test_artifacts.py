import json
import multiprocessing
import os
import subprocess
import sys
import time

import pytest

from kositp.artifacts import (
    AmbiguousVersion,
    ArtifactNotFound,
    ArtifactStore,
    CorruptArtifact,
    UnsafeArtifactName,
    compute_version,
)

BASE = {"stage": "reformat", "code_version": "1", "params": {"seed": 42}, "inputs": {"ingest": "abc"}, "fingerprint": {"f": 1}}


def test_version_ignores_key_order_at_every_depth():
    first = dict(BASE, params={"a": 1, "b": {"x": [1, 2], "y": "값"}}, inputs={"ingest": "abc", "instructions": "def"})
    second = dict(BASE, params={"b": {"y": "값", "x": [1, 2]}, "a": 1}, inputs={"instructions": "def", "ingest": "abc"})
    assert compute_version(**first) == compute_version(**second)


def test_version_is_the_same_in_another_process():
    """A version names a folder on disk: a new process (another hash seed) must find it again."""
    script = (
        "import json, sys; from kositp.artifacts import compute_version; "
        "print(compute_version(**json.loads(sys.argv[1])))"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    other = subprocess.run([sys.executable, "-c", script, json.dumps(BASE)], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert other == compute_version(**BASE)


@pytest.mark.parametrize(
    "change",
    [
        {"stage": "sft"},
        {"code_version": "2"},
        {"params": {"seed": 43}},
        {"inputs": {"ingest": "abd"}},
        {"fingerprint": {"f": 2}},
    ],
)
def test_version_changes_with_every_input(change):
    assert compute_version(**BASE) != compute_version(**dict(BASE, **change))


def _publish(store, stage="ingest", version="v1", text="정상 기록", **kwargs):
    with store.build(stage, version) as staging:
        assert staging is not None
        (staging.path / "data").mkdir()
        (staging.path / "data" / "records.txt").write_text(text, encoding="utf-8")
        return store.publish(staging, inputs={}, params=kwargs.get("params", {}), code_version="1", rows={"kept": 1})


def test_publish_writes_manifest_with_checksums_and_redacted_params(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-비밀키-123456")
    store = ArtifactStore(tmp_path)
    artifact = _publish(store, params={"api_key": "sk-live", "base_url": "http://h/sk-test-비밀키-123456"})
    manifest = json.loads((artifact.path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["stage"] == "ingest" and manifest["version"] == "v1"
    assert manifest["files"]["data/records.txt"]["bytes"] == len("정상 기록".encode())
    assert manifest["rows"] == {"kept": 1}
    assert manifest["params"]["api_key"] == "***"
    assert "비밀키" not in json.dumps(manifest, ensure_ascii=False)
    assert manifest["started_at"] <= manifest["finished_at"]
    assert not store.staging_path("ingest", "v1").exists()
    assert store.open("ingest", "v1").rows == {"kept": 1}


def test_published_version_is_not_built_twice(tmp_path):
    store = ArtifactStore(tmp_path)
    _publish(store)
    with store.build("ingest", "v1") as staging:
        assert staging is None


def test_crash_before_publish_leaves_nothing_published(tmp_path):
    store = ArtifactStore(tmp_path)
    with pytest.raises(RuntimeError), store.build("ingest", "v1") as staging:
        (staging.path / "half.txt").write_text("반쯤 쓴 파일")
        raise RuntimeError("killed")
    assert not store.exists("ingest", "v1")
    assert store.versions("ingest") == []
    with store.build("ingest", "v1") as staging:
        assert not staging.resumed and list(staging.path.iterdir()) == []


def test_crash_during_final_rename_leaves_nothing_published(tmp_path, monkeypatch):
    store = ArtifactStore(tmp_path)
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst) == str(store.path("ingest", "v1")):
            raise OSError("disk went away")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        _publish(store)
    assert not store.exists("ingest", "v1")
    with pytest.raises(ArtifactNotFound):
        store.open("ingest", "v1")


def test_resumable_stage_keeps_its_staging_folder(tmp_path):
    store = ArtifactStore(tmp_path)
    with pytest.raises(RuntimeError), store.build("sft", "v1", resumable=True) as staging:
        (staging.path / "checkpoint-10").mkdir()
        raise RuntimeError("preempted")
    with store.build("sft", "v1", resumable=True) as staging:
        assert staging.resumed and (staging.path / "checkpoint-10").is_dir()
        (staging.path / "adapter.bin").write_text("w")
        artifact = store.publish(staging, inputs={}, params={}, code_version="1", exclude=("checkpoint-10",))
    assert list(artifact.manifest["files"]) == ["adapter.bin"]
    assert not (artifact.path / "checkpoint-10").exists()


def _concurrent_publisher(root: str, results) -> None:
    store = ArtifactStore(root)
    with store.build("ingest", "same") as staging:
        if staging is None:
            results.put("cached")
            return
        (staging.path / "who.txt").write_text(str(os.getpid()))
        time.sleep(0.5)
        store.publish(staging, inputs={}, params={}, code_version="1")
        results.put("built")


def test_two_concurrent_publishers_leave_one_intact_copy(tmp_path):
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [context.Process(target=_concurrent_publisher, args=(str(tmp_path), results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert sorted(results.get(timeout=5) for _ in workers) == ["built", "cached"]
    store = ArtifactStore(tmp_path)
    assert store.versions("ingest") == ["same"]
    store.open("ingest", "same")  # verifies checksums
    assert not any(p.name.startswith(".retired") for p in (tmp_path / "ingest").iterdir())


def test_corrupted_file_is_reported_by_name_and_not_used(tmp_path):
    store = ArtifactStore(tmp_path)
    artifact = _publish(store)
    target = artifact.path / "data" / "records.txt"
    tampered = "변조 기록".encode()
    assert len(tampered) == target.stat().st_size  # same size: only the checksum can tell
    target.write_bytes(tampered)
    with pytest.raises(CorruptArtifact, match="records.txt: checksum mismatch"):
        store.open("ingest", "v1")


def test_missing_file_is_reported(tmp_path):
    store = ArtifactStore(tmp_path)
    artifact = _publish(store)
    (artifact.path / "data" / "records.txt").unlink()
    with pytest.raises(CorruptArtifact, match="records.txt: missing"):
        store.open("ingest", "v1")


def test_resolve_by_prefix_and_latest(tmp_path):
    store = ArtifactStore(tmp_path)
    _publish(store, version="abc111")
    _publish(store, version="abc222")
    assert store.resolve("ingest", "abc1") == "abc111"
    with pytest.raises(AmbiguousVersion):
        store.resolve("ingest", "abc")
    with pytest.raises(ArtifactNotFound):
        store.resolve("ingest", "zzz")
    store.set_latest("ingest", "demo", "abc111")
    assert store.resolve("ingest", "latest:demo") == "abc111"
    assert store.latest("ingest") == "abc222"
    assert [a.version for a in store.list()] == ["abc111", "abc222"]


@pytest.mark.parametrize(("call", "says"), [
    (lambda store: store.resolve("ingest", ""), "version prefix ''"),
    (lambda store: store.resolve("..", "abc"), "stage name '..'"),
    (lambda store: store.resolve("ingest", "latest:../../x"), "profile name '../../x'"),
    (lambda store: store.set_latest("ingest", "../../x", "abc111"), "profile name '../../x'"),
    (lambda store: store.open("ingest", "../ingest/abc111"), "version '../ingest/abc111'"),
])
def test_names_that_would_leave_their_folder_are_refused(tmp_path, call, says):
    """An empty prefix matched every version; a name with a separator or ``..`` reached a path outside its folder."""
    store = ArtifactStore(tmp_path / "root")
    _publish(store, version="abc111")
    with pytest.raises(UnsafeArtifactName, match=f"^{says} is not a safe name"):
        call(store)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]


def test_folders_under_the_root_that_are_not_stage_names_are_not_listed(tmp_path):
    store = ArtifactStore(tmp_path)
    _publish(store, version="abc111")
    (tmp_path / "내 메모").mkdir()
    assert [(a.stage, a.version) for a in store.list()] == [("ingest", "abc111")]


def test_redaction_masks_credentials_but_not_their_settings():
    from kositp.secrets import redact

    masked = redact({"hf_token": "hf_abc", "openai_api_key": "sk-1", "password": "pw",
                     "max_tokens": 256, "api_key_env": "OPENAI_API_KEY", "nested": [{"token": "t"}]}, [])
    assert masked == {"hf_token": "***", "openai_api_key": "***", "password": "***",
                      "max_tokens": 256, "api_key_env": "OPENAI_API_KEY", "nested": [{"token": "***"}]}


def test_a_staged_file_is_named_where_it_will_be_published(tmp_path):
    from kositp.artifacts import published_location

    store = ArtifactStore(tmp_path)
    with store.build("sft", "0123456789abcdef") as staging:
        staged = staging.path / "loss.png"
        staged.write_bytes(b"\x89PNG")
        artifact = store.publish(staging, inputs={}, params={}, code_version="1")
    assert published_location(staged) == artifact.path / "loss.png"
    assert (artifact.path / "loss.png").is_file() and not staged.exists()
    assert published_location(artifact.path / "loss.png") == artifact.path / "loss.png"
