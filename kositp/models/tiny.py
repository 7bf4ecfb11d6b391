"""A tiny Llama model with a Korean byte-level BPE tokenizer, built locally and deterministically.

No model hub is reachable from CI or an offline machine, so the demo profile and the tests build
their base model here: a ``LlamaForCausalLM`` with a few hidden units and a tokenizer trained on
Korean text, written to a folder like any hub checkpoint. Profiles name it as
``tiny-llama`` or ``tiny-llama:seed=1,hidden=64``; real profiles name hub ids or paths.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock

from kositp.artifacts import canonical_json

TINY_PREFIX = "tiny-llama"
SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
CORPUS = Path(__file__).parents[1] / "data" / "korean_corpus.txt"


@dataclass(frozen=True)
class TinySpec:
    seed: int = 0
    vocab_size: int = 800
    hidden: int = 32
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 64
    max_positions: int = 2048

    @classmethod
    def parse(cls, ref: str) -> TinySpec:
        """``tiny-llama`` or ``tiny-llama:seed=1,hidden=64`` (integers only)."""
        _, _, options = ref.partition(":")
        values = {}
        for item in filter(None, options.split(",")):
            key, _, value = item.partition("=")
            if key not in cls.__dataclass_fields__:
                raise ValueError(f"{ref!r}: unknown tiny model option {key!r}")
            values[key] = int(value)
        return cls(**values)

    @property
    def slug(self) -> str:
        import hashlib

        return hashlib.sha256(canonical_json(asdict(self)).encode()).hexdigest()[:12]


def is_tiny(ref: str) -> bool:
    return ref == TINY_PREFIX or ref.startswith(TINY_PREFIX + ":")


def _train_tokenizer(texts: list[str], spec: TinySpec):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        special_tokens=[SPECIAL_TOKENS[k] for k in ("unk_token", "bos_token", "eos_token", "pad_token")],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=spec.max_positions, **SPECIAL_TOKENS)


def build_tiny_model(out_dir: Path, spec: TinySpec = TinySpec(), texts: Iterable[str] | None = None) -> Path:
    """Write a tiny Llama checkpoint + tokenizer to ``out_dir`` (same spec and texts, same weights)."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    corpus = list(texts) if texts is not None else CORPUS.read_text(encoding="utf-8").splitlines()
    tokenizer = _train_tokenizer([t for t in corpus if t.strip()], spec)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden,
        intermediate_size=spec.intermediate,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads,
        max_position_embeddings=spec.max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    generator = torch.Generator().manual_seed(spec.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = LlamaForCausalLM(config)
    for parameter in model.parameters():
        if parameter.dim() > 1:
            parameter.data = torch.randn(parameter.shape, generator=generator) * 0.02
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "tiny_spec.json").write_text(json.dumps(asdict(spec)), encoding="utf-8")
    return out_dir


def cached_tiny_model(spec: TinySpec, cache_dir: Path) -> Path:
    """The tiny model of ``spec``, built once into ``cache_dir`` (concurrent builders wait for the first)."""
    target = cache_dir / "models" / f"tiny-llama-{spec.slug}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / "tiny_spec.json").is_file():
            scratch = target.with_name(target.name + f".tmp{os.getpid()}")
            shutil.rmtree(scratch, ignore_errors=True)
            build_tiny_model(scratch, spec)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(scratch, target)
    return target
