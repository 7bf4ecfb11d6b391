import json

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
