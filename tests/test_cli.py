import json

import pytest
from fakes import FAKE_REGISTRY, SPINE_PROFILE
from typer.testing import CliRunner

import kositp.pipeline
from kositp.cli import app

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "run" in result.output and "artifacts" in result.output


def test_artifacts_list_and_show(tmp_path):
    from kositp.artifacts import ArtifactStore

    store = ArtifactStore(tmp_path)
    with store.build("ingest", "0123456789abcdef") as staging:
        (staging.path / "records.txt").write_text("뉴스 기사", encoding="utf-8")
        store.publish(staging, inputs={}, params={"paths": ["원천"]}, code_version="1", rows={"kept": 1})
    listed = runner.invoke(app, ["artifacts", "list", "--root", str(tmp_path), "--json"])
    assert listed.exit_code == 0
    assert json.loads(listed.output.splitlines()[0])["version"] == "0123456789abcdef"
    shown = runner.invoke(app, ["artifacts", "show", "ingest/0123", "--root", str(tmp_path)])
    assert shown.exit_code == 0 and json.loads(shown.output)["params"] == {"paths": ["원천"]}
    missing = runner.invoke(app, ["artifacts", "show", "ingest/ffff", "--root", str(tmp_path)])
    assert missing.exit_code == 1 and "no ingest artifact matches 'ffff'" in missing.output


def test_run_with_unknown_profile_fails_clearly():
    result = runner.invoke(app, ["run", "--profile", "없는-프로파일"])
    assert result.exit_code == 2 and "unknown profile" in result.output


@pytest.mark.slow
def test_run_json_reports_every_stage_and_fails_nonzero(prefect_server, monkeypatch, tmp_path):
    monkeypatch.setattr(kositp.pipeline, "registry", lambda: FAKE_REGISTRY)
    ok = runner.invoke(app, ["run", "--profile", SPINE_PROFILE, "--root", str(tmp_path), "--json"])
    assert ok.exit_code == 0, ok.output
    lines = [json.loads(line) for line in ok.stdout.splitlines() if line.startswith("{")]
    assert [(line["stage"], line["status"]) for line in lines] == [("ingest", "ran"), ("reformat", "ran")]
    assert set(lines[0]) == {"stage", "version", "status", "path"}
    again = runner.invoke(app, ["run", "--profile", SPINE_PROFILE, "--root", str(tmp_path), "--json", "--until", "ingest"])
    assert [json.loads(line)["status"] for line in again.stdout.splitlines() if line.startswith("{")] == ["cached"]
    failing = runner.invoke(app, ["run", "--profile", SPINE_PROFILE, "--root", str(tmp_path / "other"), "--json", "--set", "ingest.fail=true",
                                  "--set", "prefect.retries=0"])
    assert failing.exit_code == 1
    failed = [json.loads(line) for line in failing.stdout.splitlines() if line.startswith("{")]
    assert failed[-1]["status"] == "failed" and "원천 데이터를 읽을 수 없습니다" in failed[-1]["error"]


def test_run_rejects_a_bad_override_before_starting_prefect():
    result = runner.invoke(app, ["run", "--set", "sft.lora_rank=8"])
    assert result.exit_code == 2 and "section 'sft'" in result.output and "lora_rank" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "sfft.lora_r=16"], "unknown top-level key(s) 'sfft'; known: name, root, stages, prefect, ingest"),
        (["--set", ".x=1"], "override '.x=1' must look like section.key=value"),
        (["--set", "sft=5"], "section 'sft' must be a mapping of settings, got int"),
        (["--set", "sft.lora_r=-5"], "lora_r: Input should be greater than or equal to 1"),
    ],
)
def test_run_rejects_unknown_sections_and_bad_values_before_any_stage(args, message, tmp_path):
    result = runner.invoke(app, ["run", "--root", str(tmp_path), "--json", *args])
    assert result.exit_code == 2 and message in result.output
    assert result.stdout == "" and not any(tmp_path.iterdir())


def test_a_misspelt_profile_section_exits_2_in_one_line(tmp_path):
    profile = tmp_path / "오타.yaml"
    profile.write_text("extends: demo\nsftt:\n  lora_r: 16\n", encoding="utf-8")
    result = runner.invoke(app, ["run", "--profile", str(profile), "--root", str(tmp_path / "a")])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "unknown top-level key(s) 'sftt'; known: name, root" in result.output


def test_a_bad_value_and_an_unknown_key_are_one_line_each_naming_the_key():
    result = runner.invoke(app, ["run", "--set", "sft.lora_r=-5", "--set", "sft.lora_rank=8"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1
    assert "lora_r: Input should be greater than or equal to 1 (got -5)" in lines[0]
    assert "lora_rank: unknown key (known: " in lines[0] and "lora_alpha" in lines[0]


@pytest.mark.slow
def test_run_rebuilds_a_same_size_damaged_artifact_and_says_so(prefect_server, monkeypatch, tmp_path):
    monkeypatch.setattr(kositp.pipeline, "registry", lambda: FAKE_REGISTRY)
    args = ["run", "--profile", SPINE_PROFILE, "--root", str(tmp_path), "--json"]
    first = [json.loads(line) for line in runner.invoke(app, args).stdout.splitlines() if line.startswith("{")]
    words = tmp_path / "ingest" / first[0]["version"] / "words.json"
    words.write_text(words.read_text(encoding="utf-8").replace("말뭉치", "말모음"), encoding="utf-8")
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    lines = [json.loads(line) for line in again.stdout.splitlines() if line.startswith("{")]
    assert [(line["stage"], line["status"]) for line in lines] == [("ingest", "ran"), ("reformat", "cached")]
    assert "checksum mismatch" in lines[0]["note"] and ".damaged" in lines[0]["note"]
