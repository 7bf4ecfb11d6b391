import json
import resource
import subprocess
import sys

import pytest

from kositp.config import ProfileError, load_profile, seed_config_to_sft

SEED_LIKE = {
    "train_path": "../01_Data_Processing/Trainset.jsonl",
    "pretrained_model_name": "upstage/SOLAR-10.7B-v1.0",
    "max_seq_length": 2048,
    "lora_r": 8,
    "lora_alpha": 32,
    "random_state": 3407,
    "optim": "adamw_8bit",
    "output_dir": "model_result/SoLAR_Test",
}


def test_demo_profile_loads_with_root_override(tmp_path):
    profile = load_profile("demo", root=tmp_path)
    assert profile.name == "demo" and profile.root == tmp_path


def test_model_profiles_extend_seed_with_its_hyper_parameters():
    solar = load_profile("solar-10.7b")
    assert solar.section("sft")["base_model"] == "upstage/SOLAR-10.7B-v1.0"
    assert solar.section("sft")["lora_r"] == 8 and solar.section("sft")["learning_rate"] == 0.0002
    assert load_profile("mistral-7b").section("sft")["base_model"] == "davidkim205/komt-mistral-7b-v1"


def test_overrides_are_typed_and_nested():
    profile = load_profile("mistral-7b", ["sft.base_model=/models/내모델", "sft.lora_r=16", "sft.packing=true"])
    sft = profile.section("sft")
    assert sft["base_model"] == "/models/내모델" and sft["lora_r"] == 16 and sft["packing"] is True


def test_bad_override_and_unknown_profile_are_clear():
    with pytest.raises(ProfileError, match="section.key=value"):
        load_profile("demo", ["sft.lora_r"])
    with pytest.raises(ProfileError, match="known profiles: .*demo"):
        load_profile("없는-프로파일")


def test_seed_config_json_maps_onto_sft(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(SEED_LIKE), encoding="utf-8")
    profile = load_profile(str(path))
    sft = profile.section("sft")
    assert sft["base_model"] == "upstage/SOLAR-10.7B-v1.0" and sft["seed"] == 3407
    assert "train_path" not in sft and "output_dir" not in sft
    assert sft["eval_strategy"] == "steps"  # from the seed profile it extends


def test_unknown_seed_key_is_an_error():
    with pytest.raises(ProfileError, match="unknown seed training key 'lora_rank'"):
        seed_config_to_sft({"lora_rank": 8})


def test_the_seed_projects_own_configs_load(shared_dir):
    for name, model in [("SOLAR_train_config.json", "upstage/SOLAR-10.7B-v1.0"),
                        ("Mistral_train_config.json", "davidkim205/komt-mistral-7b-v1")]:
        sft = load_profile(str(shared_dir / "seed" / name)).section("sft")
        assert sft["base_model"] == model and sft["lora_target_modules"][-1] == "down_proj"


@pytest.mark.parametrize("name", ["demo", "seed", "solar-10.7b", "mistral-7b"])
def test_every_shipped_profile_validates_every_stage_section(name):
    from kositp.pipeline import plan
    from kositp.stages import PIPELINE_ORDER

    assert [p.name for p in plan(load_profile(name))] == list(PIPELINE_ORDER)


def _alias_bomb(indent: str) -> str:
    """Ten anchors, each a list naming the one before ten times: 10^10 strings once expanded."""
    lines = [f"{indent}- &l0 [한국어 말뭉치, 한국어 말뭉치, 한국어 말뭉치, 한국어 말뭉치, 한국어 말뭉치]"]
    lines += [f"{indent}- &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, 10)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("where", ["name", "ingest.columns", "ingest.paths"])
def test_a_yaml_alias_bomb_is_refused_in_one_line_while_loading(tmp_path, where):
    """Under ``ingest.columns`` or ``name`` it reached a MemoryError at 3.1 GB after 40-144 s; under
    ``ingest.paths`` it ran past 300 s."""
    section, _, key = where.partition(".")
    path = tmp_path / "폭탄.yaml"
    path.write_text(f"{section}:\n  {key}:\n{_alias_bomb('    ')}" if key else f"{section}:\n{_alias_bomb('  ')}",
                    encoding="utf-8")
    limit = 1 << 30
    done = subprocess.run([sys.executable, "-m", "kositp", "run", "--profile", str(path), "--root", str(tmp_path / "root")],
                          check=False, capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}: cannot parse profile: YAML aliases (*l0) are not allowed in profiles")


@pytest.mark.parametrize(("override", "says"), [
    ("stages=[[1]]", "'stages' must be a list of stage names, got [[1]]"),
    ("stages=ingest", "'stages' must be a list of stage names, got ingest"),
    ("root=[1]", "'root' must be a string, got list"),
    (f"sft.base_model={'가' * 20000}", "sft.base_model holds a string of 20000 characters (at most 16384)"),
    ("name=../../../x", "the profile name '../../../x' is not a safe name"),
])
def test_overrides_of_the_wrong_type_or_size_or_an_unsafe_name_are_one_line(tmp_path, override, says):
    """``--set 'stages=[[1]]'`` gave a traceback; a 50 MB value went into every manifest;
    ``--set name=../../../x`` wrote ``<root>/x.json``."""
    from typer.testing import CliRunner

    from kositp.cli import app

    result = CliRunner().invoke(app, ["run", "--set", override, "--until", "ingest", "--root", str(tmp_path / "결과")])
    assert result.exit_code == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and says in result.stderr


def test_an_empty_name_falls_back_to_the_profile_file_s_name():
    assert load_profile("demo", ["name="]).name == "demo"


def test_a_profile_file_too_large_or_with_a_too_long_string_is_refused(tmp_path):
    huge = tmp_path / "huge.yaml"
    huge.write_text("name: huge\n# " + "주석 " * 400_000 + "\n", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"huge.yaml: \d+ bytes is not a profile \(at most 1048576\)"):
        load_profile(str(huge))
    long = tmp_path / "long.yaml"
    long.write_text(f"name: long\ningest:\n  paths: [data/raw, {'원천' * 9000}]\n", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"ingest.paths.1 holds a string of 18000 characters"):
        load_profile(str(long))


def _settings_without_a_description(model) -> list[str]:
    """Every setting of ``model``'s JSON schema (what a schema-driven form renders), nested models
    included, that carries no description."""
    schema = model.model_json_schema()
    models = {model.__name__: schema, **schema.get("$defs", {})}
    return [
        f"{name}.{key}"
        for name, definition in models.items()
        for key, prop in definition.get("properties", {}).items()
        if not prop.get("description", "").strip()
    ]


def test_every_profile_setting_explains_itself():
    from kositp.config import PrefectSettings
    from kositp.stages import registry

    models = [PrefectSettings, *(stage.config for stage in registry().values())]
    assert [setting for model in models for setting in _settings_without_a_description(model)] == []
