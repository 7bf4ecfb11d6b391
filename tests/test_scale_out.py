"""SFT and DPO under ``accelerate launch``: two CPU processes (gloo) on the tiny model.

The stage is run through the pipeline's ``execute``, as the orchestrator does: the launched ranks
train, rank 0 publishes one adapter, and a run whose process group is killed after a checkpoint
resumes from that checkpoint on the next attempt.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kositp.artifacts import ArtifactStore
from kositp.dpo.config import DpoConfig, PairsConfig
from kositp.dpo.stage import STAGE as DPO_STAGE
from kositp.errors import PermanentError
from kositp.pipeline import PlannedStage, execute
from kositp.reporting import ConsoleReporter
from kositp.sft.config import SftConfig
from kositp.sft.stage import STAGE as SFT_STAGE
from kositp.train import common, distributed

pytestmark = pytest.mark.slow

ROWS = [
    ("다음 문장의 감정을 긍정 또는 부정으로 분류하세요. 오늘 날씨가 정말 좋아서 기분이 상쾌하다.", "긍정"),
    ("다음 문장의 감정을 긍정 또는 부정으로 분류하세요. 버스를 놓쳐서 회의에 늦고 말았다.", "부정"),
    ("질문에 답하세요. 대한민국의 수도는 어디입니까?", "서울"),
    ("다음 단어의 반대말을 쓰세요. 높다", "낮다"),
    ("질문에 답하세요. 한글을 만든 왕은 누구입니까?", "세종대왕"),
    ("다음 문장의 주제를 한 단어로 쓰세요. 축구 대표팀이 월드컵 본선에 진출했다.", "스포츠"),
]

SFT = {
    "base_model": "tiny-llama",
    "device": "cpu",
    "num_processes": 2,
    "max_seq_length": 64,
    "max_steps": 12,
    "train_batch_size": 1,
    "gradient_accumulation_steps": 1,
    "learning_rate": 1e-3,
    "logging_steps": 1,
    "eval_strategy": "no",
    "load_best_model_at_end": False,
    "checkpoint_steps": 2,
    "save_total_limit": 2,
    "use_gradient_checkpointing": False,
}


class Recorder(ConsoleReporter):
    """Keeps what the stage reported, to check that rank 0's tables and images reach the stage's reporter."""

    def __init__(self) -> None:
        super().__init__(show_progress=False)
        self.lines: list[str] = []
        self.tables: dict[str, list] = {}
        self.images: list[str] = []

    def info(self, message: str) -> None:
        super().info(message)
        self.lines.append(message)

    def table(self, key, rows, description=""):
        self.tables[key] = list(rows)

    def image(self, key, path, description=""):
        self.images.append(key)


@pytest.fixture
def store(tmp_path: Path, tiny_model_dir: Path) -> ArtifactStore:
    """A published reformat artifact with one shard, and the tiny model already in the store's cache."""
    store = ArtifactStore(tmp_path / "artifacts")
    with store.build("reformat", "r1") as staging:
        folder = staging.path / "shards" / "task001"
        folder.mkdir(parents=True)
        table = pa.table({"prompt": [p for p, _ in ROWS], "output": [o for _, o in ROWS]})
        pq.write_table(table, folder / "train.parquet")
        store.publish(staging, inputs={}, params={}, code_version="test")
    cached = store.root / "_cache" / "models" / tiny_model_dir.name
    cached.parent.mkdir(parents=True)
    cached.symlink_to(tiny_model_dir)
    return store


def _planned(stage, config, inputs: dict[str, str], version: str) -> PlannedStage:
    return PlannedStage(stage, config, config.model_dump(mode="json"), inputs, version)


def _kill_after_first_checkpoint(staging: Path, done: threading.Event) -> None:
    """Kill the launched process group (the ranks and their launcher) once a checkpoint is on disk."""
    import psutil

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not done.is_set():
        if (staging / common.CHECKPOINT_DIR / "checkpoint-2" / "trainer_state.json").is_file():
            for child in psutil.Process().children():
                if "accelerate.commands.launch" in " ".join(child.cmdline()):
                    os.killpg(child.pid, signal.SIGKILL)
                    return
        time.sleep(0.02)


def test_sft_on_two_processes_resumes_after_a_kill_and_publishes_one_adapter(store):
    config = SftConfig(**SFT)
    item = _planned(SFT_STAGE, config, {"reformat": "r1"}, "s2")
    staging = store.staging_path("sft", "s2")
    done = threading.Event()
    killer = threading.Thread(target=_kill_after_first_checkpoint, args=(staging, done))
    killer.start()
    with pytest.raises(distributed.LaunchError, match="sft: the launched ranks exited"):
        execute(item, store, "test", Recorder())
    done.set()
    killer.join()
    assert not store.exists("sft", "s2")
    killed_at = common.checkpoint_step(common.last_checkpoint(staging))
    assert 2 <= killed_at < SFT["max_steps"]

    reporter = Recorder()
    result = execute(item, store, "test", reporter)

    assert result.status == "ran"
    artifact = store.open("sft", "s2")
    report = artifact.report
    assert report["num_processes"] == 2 and report["resumed_from_step"] == killed_at
    assert report["global_step"] == SFT["max_steps"]
    assert sorted(p.name for p in artifact.path.iterdir()) == [
        "adapter",
        "loss.png",
        "manifest.json",
        "training_log.jsonl",
    ]
    assert (artifact.path / "adapter" / "adapter_model.safetensors").is_file()
    steps = [
        row["step"] for row in common.read_training_log(artifact.path / common.TRAINING_LOG) if "loss" in row
    ]
    assert steps == list(range(1, SFT["max_steps"] + 1))  # one writer: every step once, none twice
    assert f"resuming sft from checkpoint-{killed_at} (step {killed_at})" in reporter.lines
    assert "sft_result" in reporter.tables and "sft-loss" in reporter.images


def test_dpo_on_two_processes_publishes_the_policy_adapter(store, tiny_model_dir, tmp_path):
    sft_config = SftConfig(**{**SFT, "num_processes": 1, "max_steps": 2})
    execute(_planned(SFT_STAGE, sft_config, {"reformat": "r1"}, "s1"), store, "test", Recorder())
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(
            json.dumps({"prompt": p, "chosen": o, "rejected": "잘 모르겠습니다."}, ensure_ascii=False) + "\n"
            for p, o in ROWS
        ),
        encoding="utf-8",
    )
    config = DpoConfig(
        device="cpu",
        num_processes=2,
        pairs=PairsConfig(user_file=str(pairs), on_policy=False),
        max_steps=2,
        save_steps=1,
        train_batch_size=1,
        logging_steps=1,
        max_length=64,
    )
    reporter = Recorder()
    execute(_planned(DPO_STAGE, config, {"sft": "s1", "reformat": "r1"}, "d2"), store, "test", reporter)

    artifact = store.open("dpo", "d2")
    assert artifact.report["num_processes"] == 2 and artifact.report["pairs"] == len(ROWS)
    adapter = artifact.path / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and not (adapter / "ref").exists()
    assert not (artifact.path / distributed.LAUNCH_DIR).exists()


def test_a_failing_rank_fails_the_stage_with_its_error_and_no_retry_when_permanent(store):
    config = SftConfig(**{**SFT, "base_model": str(store.root / "no-such-model")})
    with pytest.raises(
        distributed.LaunchError, match=r"^sft failed on rank \d of 2: .*no-such-model"
    ) as failed:
        execute(_planned(SFT_STAGE, config, {"reformat": "r1"}, "s3"), store, "test", Recorder())
    assert isinstance(failed.value, PermanentError)  # a missing model is not retried
    assert "\n" not in str(failed.value)


def test_more_processes_need_a_backend_and_device_that_can_launch():
    with pytest.raises(ValueError, match="backend hf"):
        SftConfig(num_processes=2, backend="unsloth")
    with pytest.raises(ValueError, match="load_in_4bit: false"):
        SftConfig(num_processes=2, distributed="fsdp")  # the seed's default loads 4-bit
    with pytest.raises(ValueError, match="one card per process"):
        DpoConfig(num_processes=2, device="cuda:1")
    assert SftConfig(num_processes=2).model_dump()["num_processes"] == 2


FAKE_VLLM = """
class SamplingParams:
    def __init__(self, **kw):
        self.kw = kw

class _Completion:
    def __init__(self, text):
        self.text = text

class _Output:
    def __init__(self, text):
        self.outputs = [_Completion(text)]

class LLM:
    def __init__(self, model, seed=0, tensor_parallel_size=1):
        self.tensor_parallel_size = tensor_parallel_size

    def generate(self, prompts, params):
        return [_Output(f"tensor_parallel_size={self.tensor_parallel_size}") for _ in prompts]
"""


def test_vllm_evaluation_shards_the_model_over_the_profiles_gpus(monkeypatch, tmp_path: Path):
    """The evaluate section's tensor_parallel_size reaches vLLM's engine (a stand-in module here)."""
    import sys

    from kositp.evaluate.stage import EvaluateConfig, evaluate_to

    (tmp_path / "vllm").mkdir()
    (tmp_path / "vllm" / "__init__.py").write_text(FAKE_VLLM, encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    config = EvaluateConfig(
        data_dir=str(Path(__file__).resolve().parents[1] / "data" / "demo" / "eval"),
        sets=["nsmc"],
        limit=2,
        method="generate",
        backend="vllm",
        vllm_python=sys.executable,
        tensor_parallel_size=4,
    )
    predictions, _ = evaluate_to(tmp_path / "out", tmp_path, config, Recorder(), None, "stand-in")
    assert predictions["raw_output"].tolist() == ["tensor_parallel_size=4"] * 2
    with pytest.raises(ValueError, match="tensor_parallel_size"):
        EvaluateConfig(tensor_parallel_size=0)
