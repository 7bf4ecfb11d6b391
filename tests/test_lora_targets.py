"""LoRA target modules per architecture: ``auto`` picks the model's own projections; wrong names fail early."""

from __future__ import annotations

import pytest

from kositp.train.lora_targets import LLAMA_STYLE, LoraTargetError, resolve_targets


@pytest.fixture(scope="module")
def tiny_llama(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir)


def test_auto_takes_the_architectures_projections(tiny_llama):
    assert resolve_targets("auto", tiny_llama) == list(LLAMA_STYLE)


def test_an_explicit_list_is_kept_when_every_name_is_a_layer(tiny_llama):
    assert resolve_targets(["q_proj", "v_proj"], tiny_llama) == ["q_proj", "v_proj"]


def test_a_name_the_model_lacks_fails_listing_the_layers_it_has(tiny_llama):
    with pytest.raises(LoraTargetError) as error:
        resolve_targets(["q_proj", "c_attn"], tiny_llama)
    message = str(error.value)
    assert "['c_attn'] match no layer of this llama model" in message and "gate_proj" in message
    assert "lm_head" not in message  # the output head is not a LoRA target


def test_auto_on_an_architecture_without_a_table_entry_asks_for_a_list(tiny_llama, monkeypatch):
    monkeypatch.setattr(tiny_llama.config, "model_type", "새로운구조")
    with pytest.raises(LoraTargetError, match="auto knows no projections for model type '새로운구조'"):
        resolve_targets("auto", tiny_llama)


def test_gpt2_style_layers_are_found_by_their_own_names():
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=64, n_positions=32))
    assert resolve_targets("auto", gpt2) == ["c_attn", "c_proj", "c_fc"]
