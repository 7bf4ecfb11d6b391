"""Gemma 3 270M's real shape with random weights, and a tokenizer that needs no download.

Speed needs the shape, not the weights. The GPU check (``bench_gpu.py``) builds this model on the
device, where nothing can be fetched and a call carries at most 64 MiB: the converted Gemma folder
is 1 GiB and its tokenizer.json alone 33 MB. ``gemma3_270m_config.json`` beside this file is the
converted model's ``config.json`` as it is (``tests/test_gpu_check.py`` compares the two where the
real model is installed).

The tokenizer maps the words ``t4`` ... ``t<vocab-1>`` to those ids, with Gemma's special tokens at
Gemma's ids (pad 0, eos 1, bos 2, unk 3), and puts BOS first as Gemma's does. A text of N such words
is N tokens, so a benchmark sets sequence lengths exactly and the pipeline's own code (SFT's
tokenization, ``HFBackend.choose``) runs unchanged; the prompt template's tags are unknown words.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

CONFIG_FILE = Path(__file__).with_name("gemma3_270m_config.json")
SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>")


def gemma_config(layers: int | None = None, vocab_size: int | None = None) -> Any:
    """Gemma 3 270M's ``Gemma3TextConfig``; ``layers`` keeps the first N layers (their attention
    pattern too), ``vocab_size`` shrinks the vocabulary (CPU checks only)."""
    from transformers import Gemma3TextConfig

    values = json.loads(CONFIG_FILE.read_text(encoding="utf-8"))
    if layers is not None:
        values["num_hidden_layers"] = layers
        values["layer_types"] = values["layer_types"][:layers]
    if vocab_size is not None:
        values["vocab_size"] = vocab_size
    return Gemma3TextConfig(**{key: value for key, value in values.items() if not key.startswith("_")})


def build(config: Any, device: str = "cpu", dtype: Any = None) -> Any:
    """``Gemma3ForCausalLM`` of ``config`` with random weights, created on ``device`` (``meta``: no memory)."""
    import torch
    from transformers import Gemma3ForCausalLM

    torch.manual_seed(0)
    with torch.device(device):
        model = Gemma3ForCausalLM(config)
    return model.to(dtype) if dtype is not None else model


def word_tokenizer(vocab_size: int) -> Any:
    """A fast tokenizer over ``vocab_size`` ids: Gemma's four special tokens, then the words ``t4`` ..."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIALS)}
    vocab.update((f"t{i}", i) for i in range(len(SPECIALS), vocab_size))
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>", unk_token="<unk>"
    )


def save(folder: Path, layers: int | None = None, vocab_size: int | None = None, device: str = "cpu") -> Path:
    """Model (bfloat16 on a GPU, float32 on the CPU, as ``load_causal_lm`` loads it) and tokenizer in
    ``folder``, loadable like any model folder."""
    from kositp.models.causal_lm import default_dtype

    config = gemma_config(layers, vocab_size)
    model = build(config, device, default_dtype(device))
    model.save_pretrained(folder)
    word_tokenizer(config.vocab_size).save_pretrained(folder)
    del model
    return folder


def words(rng: random.Random, count: int, vocab_size: int) -> str:
    """``count`` random words of the tokenizer's vocabulary: ``count`` tokens."""
    return " ".join(f"t{rng.randrange(len(SPECIALS), vocab_size)}" for _ in range(count))
