"""The ingest stage in the demo flow, its version fingerprint, the CLI line and the real AIHub samples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from ingest_fixtures import admin_mrc, every_admin_qa, write_json
from typer.testing import CliRunner

from kositp.cli import app
from kositp.config import load_profile
from kositp.ingest.stage import IngestConfig
from kositp.pipeline import plan

DEMO_RAW = Path(__file__).resolve().parents[1] / "data" / "demo" / "raw"


def test_config_rejects_unknown_format_and_keys():
    with pytest.raises(ValueError, match="unknown format"):
        IngestConfig(format="hwp")
    with pytest.raises(ValueError):
        IngestConfig(pathz=["x"])


def test_version_changes_when_raw_data_changes(tmp_path):
    raw = tmp_path / "raw"
    write_json(raw / "a.json", admin_mrc(every_admin_qa()))

    def version() -> str:
        profile = load_profile("demo", overrides=[f"ingest.paths=[{raw}]", "stages=[ingest]"])
        return plan(profile)[0].version

    before = version()
    assert version() == before
    write_json(raw / "a.json", admin_mrc(every_admin_qa()[:2]))
    assert version() != before


def test_demo_flow_builds_ingest_and_caches_it(prefect_server, tmp_path):
    from kositp_flows.pipeline import pipeline

    first = pipeline(profile="demo", root=str(tmp_path), until="ingest")
    assert [r["status"] for r in first if r["stage"] == "ingest"] == ["ran"]
    out = Path(first[0]["path"])
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    report = manifest["report"]
    assert report["read"] == report["kept"] + report["rejected"]
    files = pd.read_parquet(out / "files.parquet")
    assert len(files) == report["files"] and (files.read == files.kept + files.rejected).all()
    assert files.kept.sum() == report["kept"] and files.rejected.sum() == report["rejected"]
    records = pd.read_parquet(out / "records.parquet")
    quarantine = pd.read_parquet(out / "quarantine.parquet")
    assert (len(records), len(quarantine)) == (report["kept"], report["rejected"])
    assert {"answer_not_in_context", "empty_text", "malformed_json", "unsupported_member", "duplicate",
            "near_duplicate", "missing_field"} <= set(quarantine.reason)
    assert set(records.kind) == {"mrc", "summary", "paper", "table_qa"}
    assert set(records.qa_type.dropna()) == {"span", "long", "yes_no", "multiple_choice", "unanswerable", "table"}
    assert "kisti_papers_cp949.json" in " ".join(records.source_file)
    assert {"tech_mrc", "kisti_qa"} <= set(records.format)
    assert any(f.endswith("TL_기술과학문서.zip!TL_기술과학문서/TECH-2024-0001.json") for f in records.source_file)
    assert any("국내논문_QA.zip!Training/라벨링데이터.zip!" in f for f in records.source_file)
    assert "Ingest data card" in (out / "data_card.md").read_text(encoding="utf-8")
    second = pipeline(profile="demo", root=str(tmp_path), until="ingest")
    assert second[0]["status"] == "cached"


def test_cli_prints_one_json_line(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(DEMO_RAW / "aihub_admin_mrc", raw)
    result = CliRunner().invoke(app, ["ingest", str(raw), "--out", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert set(summary) == {"read", "kept", "rejected", "by_reason", "by_kind", "by_format"}
    assert summary["read"] == summary["kept"] + summary["rejected"]
    assert summary["by_reason"] == {"answer_not_in_context": 1, "empty_text": 1}
    assert (tmp_path / "out" / "data_card.md").is_file()


def test_cli_unknown_format_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["ingest", str(tmp_path), "--out", str(tmp_path / "out"), "--format", "hwp"])
    assert result.exit_code == 2 and "unknown format 'hwp'" in result.output


def test_real_admin_mrc_samples_are_all_accounted_for(shared_dir, tmp_path):
    samples = shared_dir / "datasets" / "raw_samples" / "aihub_admin_mrc"
    if not samples.is_dir():
        pytest.skip("real AIHub samples are not present")
    questions = passages = 0
    for path in samples.glob("*.json"):
        for doc in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for paragraph in doc["paragraphs"]:
                questions += len(paragraph.get("qas") or [])
                passages += "qas" not in paragraph
    result = CliRunner().invoke(app, ["ingest", str(samples), "--out", str(tmp_path / "out"), "--json"])
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["read"] == questions + passages == summary["kept"] + summary["rejected"]
    records = pd.read_parquet(tmp_path / "out" / "records.parquet")
    assert (records.kind != "text").sum() + summary["rejected"] == questions
    assert {"span", "multiple_choice", "unanswerable", "table"} <= set(records.qa_type.dropna())
