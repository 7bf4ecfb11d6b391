"""SFT on the tiny model: training, resume after a crash, backend choice, masking, seed configs."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kositp.artifacts import ArtifactStore
from kositp.config import seed_config_to_sft
from kositp.models.refs import ModelRef
from kositp.pipeline import PlannedStage, execute
from kositp.reporting import ConsoleReporter
from kositp.sft.config import SftConfig
from kositp.sft.recipe import run, to_prompt_completion
from kositp.sft.stage import STAGE
from kositp.stages import StageContext
from kositp.train import common
from kositp.train.shard_data import ShardError, load_split
from kositp.train.trl_compat import sft_trainer_class

PAIRS = [
    ("다음 문장의 감정을 긍정 또는 부정으로 분류하세요. 오늘 날씨가 정말 좋아서 기분이 상쾌하다.", "긍정"),
    ("다음 문장의 감정을 긍정 또는 부정으로 분류하세요. 버스를 놓쳐서 회의에 늦고 말았다.", "부정"),
    (
        "다음 문장을 요약하세요. 서울시는 내년부터 대중교통 요금을 동결하고 청년 할인을 확대한다고 밝혔다.",
        "서울시가 대중교통 요금을 동결한다.",
    ),
    ("질문에 답하세요. 대한민국의 수도는 어디입니까?", "서울"),
    ("다음 단어의 반대말을 쓰세요. 높다", "낮다"),
    ("다음 문장에서 틀린 맞춤법을 고치세요. 어의없는 일이 생겼다.", "어이없는 일이 생겼다."),
    ("질문에 답하세요. 한글을 만든 왕은 누구입니까?", "세종대왕"),
    ("다음 문장의 주제를 한 단어로 쓰세요. 축구 대표팀이 월드컵 본선에 진출했다.", "스포츠"),
]

TINY = {
    "base_model": "tiny-llama",
    "backend": "auto",
    "device": "cpu",
    "max_seq_length": 128,
    "max_steps": 6,
    "train_batch_size": 2,
    "eval_batch_size": 2,
    "gradient_accumulation_steps": 1,
    "learning_rate": 1e-3,
    "logging_steps": 1,
    "eval_steps": 2,
    "checkpoint_steps": 2,
    "save_total_limit": 5,
}


def _shard(rows: list[tuple[str, str]], split: str) -> pa.Table:
    return pa.table(
        {
            "id": [f"{split}-{i}" for i in range(len(rows))],
            "prompt": [p for p, _ in rows],
            "output": [o for _, o in rows],
            "split": [split] * len(rows),
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    """A store holding a tiny published reformat artifact (two task shards) as version ``r1``."""
    store = ArtifactStore(tmp_path / "artifacts")
    with store.build("reformat", "r1") as staging:
        for task, rows in (("task001_sentiment", PAIRS[:4]), ("task002_qa", PAIRS[4:])):
            folder = staging.path / "shards" / task
            folder.mkdir(parents=True)
            pq.write_table(_shard(rows[:3], "train"), folder / "train.parquet")
            pq.write_table(_shard(rows[3:], "validation"), folder / "validation.parquet")
        store.publish(staging, inputs={}, params={}, code_version="test")
    return store


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _planned(store: ArtifactStore, **overrides) -> PlannedStage:
    config = SftConfig(**{**TINY, **overrides})
    return PlannedStage(STAGE, config, config.model_dump(mode="json"), {"reformat": "r1"}, "s1")


def _context(store: ArtifactStore, staging_path: Path, item: PlannedStage, resumed: bool) -> StageContext:
    return StageContext(
        out_dir=staging_path,
        params=item.params,
        inputs={"reformat": store.open("reformat", "r1")},
        reporter=ConsoleReporter(show_progress=False),
        resumed=resumed,
        config=item.config,
        cache_dir=store.root / "_cache",
    )


class CrashAt:
    """Raises at a given step, like a worker dying mid-training."""

    def __init__(self, step: int):
        from transformers import TrainerCallback

        outer = self

        class _Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == outer.step:
                    raise RuntimeError(f"injected crash at step {outer.step}")

        self.step = step
        self.callback = _Callback()


def test_sft_trains_and_saves_a_loadable_adapter(store, caplog):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    caplog.set_level(logging.INFO, logger="kositp")
    result = execute(_planned(store), store, "test", ConsoleReporter(show_progress=False))

    artifact = store.open("sft", result.version)
    assert result.rows == {"train_examples": 6, "validation_examples": 2, "steps": 6}
    assert not (artifact.path / common.CHECKPOINT_DIR).exists()
    assert (artifact.path / common.LOSS_PLOT).is_file()
    log_rows = common.read_training_log(artifact.path / common.TRAINING_LOG)
    assert [r["step"] for r in log_rows if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert any("eval_loss" in r for r in log_rows)
    assert any(r.get("tokens_per_s", 0) > 0 for r in log_rows)
    report = artifact.report
    assert report["backend"] == "hf" and report["optimizer"] == "adamw_torch"
    assert report["throughput_tok_per_s"] > 0 and report["trained_tok"] > 0
    assert "adamw_8bit needs a CUDA GPU" in caplog.text

    adapter = artifact.path / common.ADAPTER_DIR
    tokenizer = AutoTokenizer.from_pretrained(adapter)
    base = AutoModelForCausalLM.from_pretrained(ModelRef.parse("tiny-llama").resolve(store.root / "_cache"))
    model = PeftModel.from_pretrained(base, adapter)
    lora_weights = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_weights and any(p.abs().sum() > 0 for p in lora_weights)
    assert tokenizer.eos_token == "</s>"


def test_crash_mid_training_then_rerun_resumes_from_checkpoint(store, caplog):
    item = _planned(store)
    with (
        pytest.raises(RuntimeError, match="injected crash at step 3"),
        store.build("sft", item.version, resumable=True) as staging,
    ):
        run(_context(store, staging.path, item, staging.resumed), callbacks=[CrashAt(3).callback])
    assert not store.exists("sft", item.version)
    assert common.checkpoint_step(common.last_checkpoint(store.staging_path("sft", item.version))) == 2

    caplog.set_level(logging.INFO, logger="kositp")
    result = execute(item, store, "test", ConsoleReporter(show_progress=False))

    report = store.open("sft", result.version).report
    assert report["resumed_from_step"] == 2
    assert report["global_step"] == 6
    first = store.open("sft", result.version).file(common.TRAINING_LOG)
    tokens_at_2 = next(r["tokens_seen"] for r in common.read_training_log(first) if r["step"] == 2)
    tokens_at_6 = max(r["tokens_seen"] for r in common.read_training_log(first))
    assert report["trained_tok"] == tokens_at_6 - tokens_at_2
    assert "resuming sft from checkpoint-2 (step 2)" in caplog.text
    log_rows = common.read_training_log(Path(result.path) / common.TRAINING_LOG)
    assert [r["step"] for r in log_rows if "loss" in r] == [1, 2, 3, 4, 5, 6]


def test_auto_backend_picks_hf_without_gpu_and_says_why(monkeypatch):
    monkeypatch.setattr(common, "cuda_available", lambda: False)
    choice = common.resolve_backend("auto", common.resolve_device("auto"))
    assert choice.name == "hf"
    assert "no CUDA GPU" in choice.reason


def test_auto_backend_picks_hf_on_gpu_without_unsloth(monkeypatch):
    monkeypatch.setattr(common, "unsloth_importable", lambda: False)
    choice = common.resolve_backend("auto", "cuda:0")
    assert choice.name == "hf" and "unsloth is not installed" in choice.reason


def test_forcing_unsloth_without_gpu_fails_before_loading_anything(store):
    item = _planned(store, backend="unsloth")
    with (
        pytest.raises(common.BackendError, match="needs a CUDA GPU"),
        store.build("sft", item.version, resumable=True) as staging,
    ):
        run(_context(store, staging.path, item, staging.resumed))


def test_forcing_a_missing_gpu_device_fails_clearly(monkeypatch):
    monkeypatch.setattr(common, "cuda_available", lambda: False)
    with pytest.raises(common.BackendError, match="no CUDA GPU is visible"):
        common.resolve_device("cuda:1")


def test_prompt_tokens_are_masked_out_of_the_loss(store, tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer
    from trl import SFTConfig as TrlConfig

    from kositp.sft.recipe import build_model

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = load_split(store.open("reformat", "r1").path, "train", tmp_path / "datasets")
    dataset = to_prompt_completion(rows.dataset, tokenizer.eos_token)
    model, tokenizer = build_model(SftConfig(**TINY), "hf", "cpu", str(tiny_model_dir))
    args = TrlConfig(
        output_dir=str(tmp_path / "trainer"), use_cpu=True, bf16=False, report_to="none", max_length=128
    )
    trainer = sft_trainer_class()(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer
    )

    example = trainer.train_dataset[0]
    prompt_len = len(tokenizer(dataset[0]["prompt"], add_special_tokens=False)["input_ids"])
    labels = example["labels"]
    assert all(label == -100 for label in labels[:prompt_len])
    assert labels[prompt_len:] == example["input_ids"][prompt_len:]
    assert tokenizer.decode(labels[prompt_len:]) == dataset[0]["completion"]
    assert dataset[0]["completion"].endswith("$&%" + tokenizer.eos_token)


def test_bad_shard_row_is_named_by_file_and_row(tmp_path):
    shards = (("task001", PAIRS[:3]), ("task002", []), ("task003", [PAIRS[3], ("빈 답", " "), PAIRS[4]]))
    for task, rows in shards:
        folder = tmp_path / "shards" / task
        folder.mkdir(parents=True)
        pq.write_table(_shard(rows, "train"), folder / "train.parquet")
    with pytest.raises(ShardError, match=r"task003/train.parquet: row 1 has an empty prompt or output"):
        load_split(tmp_path, "train", tmp_path / "datasets")


def test_a_split_is_read_from_memory_mapped_files_in_shard_order(store, tmp_path):
    cache = tmp_path / "datasets"
    empty = store.open("reformat", "r1").path / "shards" / "task001z_empty" / "train.parquet"
    empty.parent.mkdir()
    pq.write_table(_shard([], "train"), empty)  # a task with no training rows, between the two
    rows = load_split(store.open("reformat", "r1").path, "train", cache)
    assert rows.counts == {"task001_sentiment": 3, "task001z_empty": 0, "task002_qa": 3}
    assert len(rows.dataset) == len(rows) == 6
    assert rows.dataset.cache_files and all(Path(f["filename"]).is_relative_to(cache) for f in rows.dataset.cache_files)
    assert rows.dataset[4] == {"prompt": PAIRS[5][0], "output": PAIRS[5][1]}
    assert [rows.task_of(i) for i in (0, 2, 3, 5)] == ["task001_sentiment", "task001_sentiment", "task002_qa", "task002_qa"]
    seed_format = to_prompt_completion(rows.dataset, "</s>")
    assert seed_format.column_names == ["prompt", "completion"] and seed_format.cache_files
    assert seed_format[4]["completion"].startswith(PAIRS[5][1]) and seed_format[4]["completion"].endswith("$&%</s>")
    assert load_split(store.open("reformat", "r1").path, "test", cache).dataset is None


def test_seed_config_json_maps_onto_sft_config():
    seed = {
        "train_path": "Trainset.jsonl",
        "val_path": "Valset.jsonl",
        "max_seq_length": 2048,
        "pretrained_model_name": "davidkim205/komt-mistral-7b-v1",
        "lora_r": 8,
        "lora_alpha": 32,
        "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "lora_dropout": 0.0,
        "use_gradient_checkpointing": True,
        "random_state": 3407,
        "use_rslora": False,
        "num_train_epochs": 3,
        "train_batch_size": 4,
        "eval_batch_size": 4,
        "gradient_accumulation_steps": 4,
        "weight_decay": 0.01,
        "evaluation_strategy": "steps",
        "save_steps": 9811,
        "eval_steps": 9811,
        "learning_rate": 0.0002,
        "logging_steps": 100,
        "output_dir": "model_result/Mistral_Test",
        "optim": "adamw_8bit",
        "load_best_model_at_end": True,
        "save_total_limit": 3,
        "packing": False,
        "model_use_cache": False,
    }
    config = SftConfig(**seed_config_to_sft(seed))
    assert config.base_model == "davidkim205/komt-mistral-7b-v1"
    assert config.seed == 3407 and config.eval_strategy == "steps"
    assert config.checkpoint_interval == 9811
    assert STAGE.fingerprint(config) == {"base_model": "davidkim205/komt-mistral-7b-v1"}


def test_checkpoint_interval_must_line_up_with_eval_steps():
    with pytest.raises(ValueError, match="multiple of eval_steps"):
        SftConfig(**{**TINY, "checkpoint_steps": 3})


def test_the_sft_version_follows_a_local_base_models_files(tiny_model_dir, tmp_path):
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    before = STAGE.fingerprint(SftConfig(**{**TINY, "base_model": str(model_dir)}))
    weights = model_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same size: the weights changed in place
    weights.write_bytes(bytes(data))
    assert STAGE.fingerprint(SftConfig(**{**TINY, "base_model": str(model_dir)})) != before


def _recording_trainer(monkeypatch) -> list[dict]:
    """Make ``run`` build a trainer that keeps every training batch's token rows."""
    from kositp.sft import recipe as sft

    seen: list[dict] = []
    base = sft_trainer_class()

    class Recording(base):
        def compute_loss(self, model, inputs, *args, **kwargs):
            seen.append({key: inputs[key].detach().clone() for key in ("input_ids", "position_ids") if key in inputs})
            return super().compute_loss(model, inputs, *args, **kwargs)

    monkeypatch.setattr(sft, "sft_trainer_class", lambda backend: Recording)
    return seen


def _sequences_per_row(batch: dict) -> list[int]:
    """How many examples each row of a batch holds: positions restart at 0 for each one."""
    if "position_ids" not in batch:
        return [1] * batch["input_ids"].shape[0]
    return [int((row == 0).sum()) for row in batch["position_ids"]]


def test_packing_puts_several_examples_in_one_step_of_two_rows(store, monkeypatch):
    seen = _recording_trainer(monkeypatch)
    result = execute(
        _planned(store, packing=True, max_seq_length=256, eval_strategy="no", load_best_model_at_end=False),
        store,
        "test",
        ConsoleReporter(show_progress=False),
    )
    assert len(seen) == 6 and store.open("sft", result.version).report["packing"] is True
    # two rows a step (train_batch_size); packed blocks of up to 256 tokens hold more examples than that
    assert all(sum(_sequences_per_row(batch)) > 2 for batch in seen)


def test_without_packing_a_step_trains_one_example_per_row(store, monkeypatch):
    seen = _recording_trainer(monkeypatch)
    execute(
        _planned(store, max_steps=2, max_seq_length=256, eval_strategy="no", load_best_model_at_end=False),
        store,
        "test",
        ConsoleReporter(show_progress=False),
    )
    assert len(seen) == 2 and all(sum(_sequences_per_row(batch)) == 2 for batch in seen)


def test_forcing_unsloth_on_a_gpu_without_the_package_names_it(monkeypatch):
    monkeypatch.setattr(common, "unsloth_importable", lambda: False)
    with pytest.raises(common.BackendError, match="pip install unsloth"):
        common.resolve_backend("unsloth", "cuda:0")


@pytest.mark.parametrize(
    ("profile", "seed_file"), [("solar-10.7b", "SOLAR_train_config.json"), ("mistral-7b", "Mistral_train_config.json")]
)
def test_model_profiles_train_as_the_seed_projects_own_configs(profile, seed_file, shared_dir):
    """The shipped profiles and the seed's config.json files give the same SFT settings, field by field."""
    from kositp.config import load_profile

    ours = SftConfig(**load_profile(profile).section("sft"))
    seeds = SftConfig(**load_profile(str(shared_dir / "seed" / seed_file)).section("sft"))
    assert ours == seeds

def test_a_resumed_runs_train_loss_covers_every_step(store):
    """The trainer alone reports (loss after the resume) / (all steps): 4.46 instead of 6.69."""
    whole = execute(_planned(store), store, "test", ConsoleReporter(show_progress=False))
    same = _planned(store)
    item = PlannedStage(STAGE, same.config, same.params, same.inputs, "s2")
    with pytest.raises(RuntimeError, match="injected crash"), store.build("sft", "s2", resumable=True) as staging:
        run(_context(store, staging.path, item, staging.resumed), callbacks=[CrashAt(5).callback])
    resumed = execute(item, store, "test", ConsoleReporter(show_progress=False))
    expected = store.open("sft", whole.version).report["train_loss"]
    report = store.open("sft", resumed.version).report
    assert report["resumed_from_step"] == 4
    assert report["train_loss"] == pytest.approx(expected, rel=0.02)


def test_the_trainers_loss_and_gradients_equal_the_full_logits_loss(tiny_model_dir):
    """The output layer runs at the completion positions only; the loss and LoRA gradients are unchanged."""
    from sft_loss import losses_and_gradients, relative_gradient_errors

    result = losses_and_gradients(str(tiny_model_dir))
    assert result["trainer"][0] == pytest.approx(result["full_logits"][0], rel=1e-5)
    errors = relative_gradient_errors(result)
    assert max(errors.values()) < 1e-4, max(errors.items(), key=lambda item: item[1])
