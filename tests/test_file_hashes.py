"""Raw-file content hashes are reused while a file's stat is unchanged, and only then."""

from __future__ import annotations

import hashlib
import os

import pytest

from kositp import file_hashes
from kositp.file_hashes import FileHashes, tree_digest


@pytest.fixture
def reads(monkeypatch, tmp_path):
    """The paths actually read for hashing; the cache in tmp_path, with no racy window."""
    monkeypatch.setenv("KOSITP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(file_hashes, "_RACY_NS", -1)
    seen: list[str] = []
    real = file_hashes._sha256

    def counting(path):
        seen.append(path.name)
        return real(path)

    monkeypatch.setattr(file_hashes, "_sha256", counting)
    return seen


def test_an_unchanged_tree_is_stat_only_and_any_rewrite_is_read_again(tmp_path, reads):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "뉴스.json").write_text('{"data": ["첫 기사"]}', encoding="utf-8")
    (raw / "법률.json").write_text('{"data": ["판결문"]}', encoding="utf-8")
    first = tree_digest([raw])
    assert sorted(reads) == ["뉴스.json", "법률.json"]
    assert tree_digest([raw]) == first and len(reads) == 2

    stat = (raw / "뉴스.json").stat()
    (raw / "뉴스.json").write_text('{"data": ["둘째 기"]}', encoding="utf-8")  # same size, mtime put back
    os.utime(raw / "뉴스.json", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = tree_digest([raw])
    assert reads[2:] == ["뉴스.json"] and second != first


def test_a_recently_modified_file_is_hashed_but_not_remembered(tmp_path, monkeypatch):
    monkeypatch.setenv("KOSITP_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "평가.csv"
    path.write_text("문장,레이블\n좋아요,1\n", encoding="utf-8")
    with FileHashes() as hashes:
        assert hashes.sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
        assert hashes._fresh == []


def test_evaluate_fingerprint_follows_content_not_mtime_and_resolves_from_the_repository(tmp_path, monkeypatch, reads):
    from kositp.evaluate.stage import EvaluateConfig, _fingerprint

    monkeypatch.chdir(tmp_path)  # the demo started outside the repository: data/demo/eval is the repository's
    demo = _fingerprint(EvaluateConfig(data_dir="data/demo/eval"))
    assert "nsmc/ratings_test.txt" in demo["data"]

    sets = tmp_path / "eval" / "nsmc"
    sets.mkdir(parents=True)
    (sets / "ratings_test.txt").write_text("id\tdocument\tlabel\n1\t재미있어요\t1\n", encoding="utf-8")
    config = EvaluateConfig(data_dir=str(tmp_path / "eval"))
    before = _fingerprint(config)
    os.utime(sets / "ratings_test.txt", ns=(0, 10**18))  # touched only
    assert _fingerprint(config) == before
    (sets / "ratings_test.txt").write_text("id\tdocument\tlabel\n1\t재미없어요\t0\n", encoding="utf-8")
    assert _fingerprint(config) != before
