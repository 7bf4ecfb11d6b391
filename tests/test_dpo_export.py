"""DPO (pairs, training, crash + resume) and export (merge check, reload, chat template) on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from kositp.artifacts import ArtifactStore
from kositp.dpo import preferences
from kositp.dpo import recipe as dpo
from kositp.dpo.config import DpoConfig, PairsConfig
from kositp.dpo.stage import STAGE as DPO_STAGE
from kositp.export import hub, merge
from kositp.export import stage as export
from kositp.export.config import ExportConfig
from kositp.export.stage import STAGE as EXPORT_STAGE
from kositp.pipeline import PlannedStage, execute
from kositp.reporting import ConsoleReporter
from kositp.train import common

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

TRAIN_ROWS = [
    ("다음 문장의 감정을 분류하세요: 배우들의 연기가 훌륭했다.", "긍정"),
    ("다음 문장의 감정을 분류하세요: 시간이 아까운 영화였다.", "부정"),
    ("두 문장이 같은 뜻인지 답하세요. 문장1: 비가 온다. 문장2: 비가 내린다.", "같은 뜻입니다."),
    (
        "다음 글을 한 문장으로 요약하세요: 서울시는 내년부터 버스 요금을 인상한다고 밝혔다.",
        "서울 버스 요금이 내년에 오른다.",
    ),
    ("대한민국의 수도는 어디인가요?", "대한민국의 수도는 서울입니다."),
    ("다음 문장에서 혐오 표현이 있는지 판단하세요: 오늘 점심은 맛있었다.", "혐오 표현이 없습니다."),
]
USER_PAIRS = [
    {
        "prompt": "한국의 전통 음식을 하나 알려주세요.",
        "chosen": "김치는 한국의 대표적인 전통 음식입니다.",
        "rejected": "잘 모르겠습니다.",
    },
    "이 줄은 JSON이 아닙니다",
    {"prompt": "부산은 어느 도시인가요?", "chosen": "부산은 한국 제2의 도시입니다."},
    {"prompt": "봄에 피는 꽃은?", "chosen": "진달래와 개나리가 핍니다.", "rejected": "눈이 옵니다."},
]


def _publish(
    store: ArtifactStore, stage: str, version: str, fill, inputs: dict[str, str] | None = None, params=None
) -> str:
    with store.build(stage, version) as staging:
        fill(staging.path)
        store.publish(staging, inputs=inputs or {}, params=params or {"fake": True}, code_version="test")
    return version


def _fake_sft(base_dir: Path):
    def fill(out: Path) -> None:
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.manual_seed(0)
        lora = LoraConfig(
            r=4,
            lora_alpha=16,
            target_modules=["q_proj", "v_proj", "o_proj"],
            task_type="CAUSAL_LM",
            init_lora_weights=False,
        )
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base_dir)), lora)
        model.save_pretrained(out / "adapter")
        AutoTokenizer.from_pretrained(str(base_dir)).save_pretrained(out / "adapter")
        # DPO and export take the base model from the SFT manifest, not from the path PEFT wrote here
        adapter_config = out / "adapter" / "adapter_config.json"
        settings = json.loads(adapter_config.read_text(encoding="utf-8"))
        adapter_config.write_text(json.dumps({**settings, "base_model_name_or_path": "/옮겨진/기반모델"}), encoding="utf-8")
        (out / "training_log.jsonl").write_text(json.dumps({"step": 1, "loss": 2.0}) + "\n", encoding="utf-8")

    return fill


def _fake_reformat(out: Path) -> None:
    shard = out / "shards" / "sentiment" / "train.parquet"
    shard.parent.mkdir(parents=True)
    pd.DataFrame(TRAIN_ROWS, columns=["prompt", "output"]).to_parquet(shard)


def _user_file(folder: Path) -> Path:
    path = folder / "pairs.jsonl"
    lines = [p if isinstance(p, str) else json.dumps(p, ensure_ascii=False) for p in USER_PAIRS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def store_with_sft(tiny_model_dir, tmp_path_factory) -> ArtifactStore:
    store = ArtifactStore(tmp_path_factory.mktemp("artifacts"))
    _publish(store, "reformat", "reformat0000001", _fake_reformat)
    _publish(
        store, "sft", "sft000000000001", _fake_sft(tiny_model_dir), inputs={"reformat": "reformat0000001"},
        params={"base_model": str(tiny_model_dir)},
    )
    return store


def _dpo_config(user_file: Path) -> DpoConfig:
    return DpoConfig(
        device="cpu",
        pairs=PairsConfig(
            user_file=str(user_file),
            on_policy_samples=4,
            similarity_threshold=0.99,
            max_answer_length=8,
            generation_batch_size=4,
        ),
        max_steps=4,
        save_steps=2,
        train_batch_size=2,
        logging_steps=1,
        learning_rate=1e-3,
        max_length=128,
    )


def _planned(stage, config, inputs: dict[str, str], version: str) -> PlannedStage:
    return PlannedStage(stage, config, config.model_dump(mode="json"), inputs, version)


def _with_callback(monkeypatch, callback_factory) -> None:
    """Wrap dpo.make_trainer so the test can watch or crash the training loop."""
    original = dpo.make_trainer

    def make_trainer(*args, **kwargs):
        trainer = original(*args, **kwargs)
        trainer.add_callback(callback_factory())
        return trainer

    monkeypatch.setattr(dpo, "make_trainer", make_trainer)


@pytest.fixture(scope="module")
def dpo_artifact(store_with_sft, tmp_path_factory):
    """DPO run that crashes at step 3, then a rerun that resumes; yields (artifact path, first step seen)."""
    from transformers import TrainerCallback

    monkeypatch = pytest.MonkeyPatch()
    user_file = _user_file(tmp_path_factory.mktemp("user"))
    item = _planned(
        DPO_STAGE,
        _dpo_config(user_file),
        {"sft": "sft000000000001", "reformat": "reformat0000001"},
        "dpo000000000001",
    )

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise RuntimeError("injected crash at step 3")

    first_steps: list[int] = []

    class FirstStep(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if not first_steps:
                first_steps.append(state.global_step)

    _with_callback(monkeypatch, Crash)
    with pytest.raises(RuntimeError, match="injected crash"):
        execute(item, store_with_sft, "test", ConsoleReporter(show_progress=False))
    monkeypatch.undo()
    staging = store_with_sft.staging_path("dpo", "dpo000000000001")
    checkpoints_after_crash = sorted(
        p.name for p in (staging / common.CHECKPOINT_DIR).iterdir() if p.is_dir()
    )

    _with_callback(monkeypatch, FirstStep)
    result = execute(item, store_with_sft, "test", ConsoleReporter(show_progress=False))
    monkeypatch.undo()
    return store_with_sft.open("dpo", result.version), first_steps[0], checkpoints_after_crash


@pytest.fixture(scope="module")
def uninterrupted_dpo(store_with_sft, dpo_artifact, tmp_path_factory):
    """The same DPO run without a crash, published under another version, for comparison."""
    item = _planned(
        DPO_STAGE,
        _dpo_config(_user_file(tmp_path_factory.mktemp("user"))),
        {"sft": "sft000000000001", "reformat": "reformat0000001"},
        "dpo000000000002",
    )
    result = execute(item, store_with_sft, "test", ConsoleReporter(show_progress=False))
    return store_with_sft.open("dpo", result.version)


def _adapter_weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter" / "adapter_model.safetensors"))


def test_user_pairs_keep_good_lines_and_report_bad_ones_by_number(tmp_path):
    pairs, problems = preferences.read_user_pairs(_user_file(tmp_path))
    assert [p.prompt for p in pairs] == ["한국의 전통 음식을 하나 알려주세요.", "봄에 피는 꽃은?"]
    assert len(problems) == 2
    assert problems[0].startswith("pairs.jsonl line 2: not valid JSON")
    assert problems[1].startswith("pairs.jsonl line 3:") and "'rejected'" in problems[1]


def test_prompts_are_drawn_by_index_with_the_task_they_came_from(tmp_path):
    for task, rows in (("task001_sentiment", TRAIN_ROWS[:2]), ("task002_qa", TRAIN_ROWS[2:])):
        shard = tmp_path / "shards" / task / "train.parquet"
        shard.parent.mkdir(parents=True)
        pd.DataFrame(rows, columns=["prompt", "output"]).to_parquet(shard)
    cache = tmp_path / "datasets"
    every = preferences.sample_training_prompts(tmp_path, 100, seed=3, cache_dir=cache)
    assert list(every["task"]) == ["task001_sentiment"] * 2 + ["task002_qa"] * 4
    assert list(zip(every["prompt"], every["output"])) == TRAIN_ROWS
    drawn = preferences.sample_training_prompts(tmp_path, 3, seed=3, cache_dir=cache)
    assert preferences.sample_training_prompts(tmp_path, 3, seed=3, cache_dir=cache).equals(drawn)
    assert any(
        not preferences.sample_training_prompts(tmp_path, 3, seed=s, cache_dir=cache).equals(drawn) for s in (4, 5)
    )


def test_on_policy_pairs_keep_only_answers_far_from_the_reference(tmp_path):
    _fake_reformat(tmp_path)
    samples = preferences.sample_training_prompts(tmp_path, 3, seed=1, cache_dir=tmp_path / "datasets")
    assert len(samples) == 3 and set(samples["task"]) == {"sentiment"}
    answers = [samples["output"][0], samples["output"][1] + "요", "전혀 상관없는 대답"]
    pairs, counts = preferences.on_policy_pairs(samples, answers, threshold=0.8)
    assert counts == {"on_policy_sampled": 3, "on_policy_close_to_reference": 2, "on_policy_pairs": 1}
    assert pairs[0].chosen == samples["output"][2] and pairs[0].rejected == "전혀 상관없는 대답"
    assert pairs[0].similarity < 0.8


def test_dpo_resumes_after_a_crash_and_publishes_the_adapter(dpo_artifact):
    artifact, first_step, checkpoints_after_crash = dpo_artifact
    assert checkpoints_after_crash == ["checkpoint-2"]
    assert first_step == 2  # the rerun continued from the checkpoint, it did not restart at 0
    report = artifact.report
    assert report["resumed_from"] == "checkpoint-2" and report["global_step"] == 4
    assert report["user_pairs"] == 2 and report["user_bad_lines"] == 2
    assert report["on_policy_sampled"] == 4 and report["pairs"] == artifact.rows["pairs"]
    assert report["examples"]
    assert not (artifact.path / common.CHECKPOINT_DIR).exists()
    assert (artifact.path / "adapter" / "adapter_model.safetensors").is_file()
    assert not (artifact.path / "adapter" / "ref").exists()
    assert (artifact.path / "loss.png").stat().st_size > 0  # TRL's frozen reference copy is not published
    steps = [
        json.loads(line).get("step")
        for line in (artifact.path / "training_log.jsonl").read_text().splitlines()
    ]
    assert {1, 2, 3, 4} <= set(steps)
    assert len(pd.read_parquet(artifact.path / "pairs.parquet")) == artifact.rows["pairs"]


def test_resumed_dpo_adapter_equals_an_uninterrupted_runs(dpo_artifact, uninterrupted_dpo, store_with_sft):
    """The policy restored at resume is the checkpoint's, not the SFT adapter started over."""
    resumed = _adapter_weights(dpo_artifact[0].path)
    straight = _adapter_weights(uninterrupted_dpo.path)
    sft = _adapter_weights(store_with_sft.open("sft", "sft000000000001").path)
    assert resumed.keys() == straight.keys() == sft.keys()
    moved = max((straight[name] - sft[name]).abs().max().item() for name in sft)
    assert moved > 1e-4  # training changed the adapter, so equality below says something
    for name, weight in straight.items():
        torch.testing.assert_close(resumed[name], weight, rtol=1e-4, atol=1e-6, msg=name)


def test_export_merges_checks_and_reloads(dpo_artifact, tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    store = ArtifactStore(dpo_artifact[0].path.parent.parent)
    item = _planned(
        EXPORT_STAGE,
        ExportConfig(device="cpu", check_answer_length=12),
        {"sft": "sft000000000001", "dpo": "dpo000000000001"},
        "export000000001",
    )
    artifact = store.open(
        "export", execute(item, store, "test", ConsoleReporter(show_progress=False)).version
    )

    check = artifact.report["check"]
    assert check["all_equal"] and len(check["prompts"]) == 3
    assert artifact.report["exported"] == "dpo/dpo000000000001"
    assert artifact.report["gguf"]["skipped"]
    merged = artifact.path / "merged"
    info = json.loads((merged / "kositp_export.json").read_text(encoding="utf-8"))
    assert info["stop"] == ["$&%"]
    generation = json.loads((merged / "generation_config.json").read_text())
    assert info["eos_token_ids"] == generation["eos_token_id"]
    assert (artifact.path / "adapter" / "adapter_model.safetensors").is_file()

    tokenizer = AutoTokenizer.from_pretrained(str(merged))
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "안녕하세요"}], tokenize=False, add_generation_prompt=True
    )
    assert rendered == "###입력:안녕하세요\n\n###출력:"
    model = AutoModelForCausalLM.from_pretrained(str(merged))
    encoded = tokenizer(rendered, return_tensors="pt", add_special_tokens=False)
    generated = model.generate(**encoded, max_new_tokens=5, do_sample=False)
    assert generated.shape[1] > encoded["input_ids"].shape[1]

    from huggingface_hub import ModelCard

    card = ModelCard.load(artifact.path / "README.md")
    for stage, version in (
        ("reformat", "reformat0000001"),
        ("sft", "sft000000000001"),
        ("dpo", "dpo000000000001"),
    ):
        assert f"| {stage} | `{version}` |" in card.text
    metadata = card.data.to_dict()
    assert (metadata["library_name"], metadata["language"], metadata["license"]) == ("transformers", "ko", "other")
    assert "dpo" in metadata["tags"] and "eval_results" not in metadata  # scores come with promotion


def test_export_fails_when_the_merged_model_answers_differently(dpo_artifact, tiny_model_dir, monkeypatch):
    import shutil

    store = ArtifactStore(dpo_artifact[0].path.parent.parent)
    original = merge.save_merged

    def save_base_instead(adapter_dir, merged_dir, dtype, base):
        info = original(adapter_dir, merged_dir, dtype, base)
        shutil.copy(tiny_model_dir / "model.safetensors", merged_dir / "model.safetensors")
        return info

    monkeypatch.setattr(merge, "save_merged", save_base_instead)
    item = _planned(
        EXPORT_STAGE,
        ExportConfig(device="cpu", dtype="float32", check_answer_length=12, check_logprob_tolerance=0.0),
        {"sft": "sft000000000001", "dpo": "dpo000000000001"},
        "export000000002",
    )
    with pytest.raises(export.ExportError, match="answers differently"):
        execute(item, store, "test", ConsoleReporter(show_progress=False))
    assert not store.exists("export", "export000000002")


def test_export_takes_sft_when_the_profile_has_no_dpo(store_with_sft):
    sft = store_with_sft.open("sft", "sft000000000001")
    assert export.training_artifact({"sft": sft}) is sft
    with pytest.raises(export.ExportError, match="neither"):
        export.training_artifact({})


def test_hub_push_needs_both_a_repo_id_and_a_token(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    reporter = ConsoleReporter(show_progress=False)
    assert hub.push_to_hub(tmp_path, ExportConfig(), reporter) is None
    assert hub.push_to_hub(tmp_path, ExportConfig(hub_repo_id="kositp/demo"), reporter) is None
    assert "HF_TOKEN is not" in caplog.text


def test_dpo_with_unsloth_fails_at_once_without_a_gpu(store_with_sft, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    config = _dpo_config(_user_file(tmp_path)).model_copy(update={"backend": "unsloth", "device": "auto"})
    item = _planned(
        DPO_STAGE, config, {"sft": "sft000000000001", "reformat": "reformat0000001"}, "dpo000000000099"
    )
    with pytest.raises(Exception, match="(?i)unsloth"):
        execute(item, store_with_sft, "test", ConsoleReporter(show_progress=False))
