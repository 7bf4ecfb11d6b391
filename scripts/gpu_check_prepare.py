"""Prepare the GPU check's one device call (``scripts/gpu_check.sh``): the wheels it carries, checked here.

    .venv/bin/python scripts/gpu_check_prepare.py                # into .whl/, checked; prints the call
    .venv/bin/python scripts/gpu_check_prepare.py --no-unsloth   # the training and evaluation path only
    .venv/bin/python scripts/gpu_check_prepare.py --check DIR    # check a folder of wheels only

The device image (``scripts/gpu_check_image.txt``) has Python 3.12, torch 2.11, transformers 5.17,
peft, accelerate, pandas, pyarrow, ... and no trl, datasets, pydantic or unsloth; nothing can be
fetched there, and a call carries at most 64 MiB, working tree and wheels together. So the wheels
are made here and checked before any device time is spent; each check fails with one line:

- the set is the one wanted, one version per name, and every wheel installs on CPython 3.12,
  manylinux x86_64 (its tags);
- every requirement of a carried wheel (on Linux x86_64, Python 3.12, no extras) is carried, in the
  image, or one of ``OMITTED`` (reason given), and a carried (or the image's known) version meets it;
- wheels and the working tree that travels fit in the limit;
- where a Python 3.12 is found here: the set installs into a clean folder (``pip install
  --no-index --no-deps --target``, as on the device) and the carried modules that need nothing
  from the image import there (the compiled ones included).

Unsloth's declared set does not fit: bitsandbytes alone is 39 MiB beside its own 30 MiB. What is
carried leaves out ``OMITTED``; Unsloth imports both of those guarded and trains 16-bit LoRA
without them.
"""

from __future__ import annotations

import argparse
import email.parser
import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
IMAGE = REPO / "scripts" / "gpu_check_image.txt"
LOCK = REPO / "requirements" / "lock-cpu.txt"
LIMIT_MIB = 64
# The call a session with a GPU makes (the device tool's `run`); see docs/training.md, "GPU check".
RUN_CALL = "run(command='bash scripts/gpu_check.sh', carry=['.whl'], timeout_s=540)"

# What kositp.sft.recipe, TRL and datasets need beside the image, at the lock's versions (the ones
# the tests run). peft, typing-extensions and fsspec are in the image at versions it does not state:
# carried so that the project's peft 0.21, pydantic's typing-extensions >= 4.16 and datasets'
# fsspec <= 2026.2.0 hold there.
TRAINING = (
    "trl",
    "datasets",
    "dill",
    "multiprocess",
    "pydantic",
    "pydantic-core",
    "annotated-types",
    "typing-inspection",
    "peft",
    "typing-extensions",
    "fsspec",
)
# Unsloth (version: the gpu extra's pin) and what it and unsloth-zoo declare that the image lacks,
# at the versions this set was checked with.
UNSLOTH_DEPENDENCIES = {
    "unsloth-zoo": "2026.10.7",
    "tyro": "1.0.17",
    "docstring-parser": "0.18.0",
    "typeguard": "4.6.1",
    "torchao": "0.18.0",
    "cut-cross-entropy": "25.1.1",
    "msgspec": "0.23.0",
    "hf-transfer": "0.1.9",
    "diffusers": "0.42.1",
    "importlib-metadata": "8.7.1",
    "structlog": "26.1.0",
    "nest-asyncio": "1.6.0",
}
OMITTED = {
    "bitsandbytes": "39 MiB, over the limit beside Unsloth's 30 MiB; only 4-bit loading and the 8-bit "
    "optimizers need it, and Unsloth imports it guarded",
    "xformers": "PyPI's build is for CUDA 12.8 and the image's torch is cu130; Unsloth uses PyTorch attention without it",
}
# The tags pip accepts on the device: CPython 3.12, glibc 2.39 (Ubuntu 24.04's, which ships 3.12.3).
PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in range(5, 40)] + [
    "manylinux1_x86_64",
    "manylinux2010_x86_64",
    "manylinux2014_x86_64",
]
DEVICE_TAGS = {
    str(tag)
    for tag in [
        *cpython_tags((3, 12), abis=["cp312"], platforms=PLATFORMS),
        *compatible_tags((3, 12), "cp312", platforms=PLATFORMS),
    ]
}
# Environment markers on the device, for the carried wheels' requirements.
MARKERS = {
    "implementation_name": "cpython",
    "implementation_version": "3.12.3",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "python_full_version": "3.12.3",
    "python_version": "3.12",
    "sys_platform": "linux",
    "extra": "",
}


class PrepareError(Exception):
    """One line for the user: what is wrong and what to do."""


@dataclass(frozen=True)
class Wheel:
    path: Path
    name: str  # canonical
    version: Version
    requires: tuple[Requirement, ...]  # those that apply on the device
    modules: tuple[str, ...]  # top-level importable names

    @property
    def mib(self) -> float:
        return self.path.stat().st_size / 2**20


def image_packages() -> dict[str, Version | None]:
    """The image's packages: canonical name -> version where known."""
    packages: dict[str, Version | None] = {}
    for line in IMAGE.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            packages[canonicalize_name(name)] = Version(version) if version else None
    return packages


def wanted(unsloth: bool) -> dict[str, str]:
    """The set to carry: canonical name -> version."""
    pins = dict(
        re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", LOCK.read_text(encoding="utf-8"), flags=re.MULTILINE)
    )
    pins = {canonicalize_name(name): version for name, version in pins.items()}
    out = {canonicalize_name(name): pins[canonicalize_name(name)] for name in TRAINING}
    if unsloth:
        extra = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        gpu = Requirement(extra["optional-dependencies"]["gpu"][0])
        out[canonicalize_name(gpu.name)] = str(next(iter(gpu.specifier)).version)
        out.update((canonicalize_name(name), version) for name, version in UNSLOTH_DEPENDENCIES.items())
    return out


def read_wheel(path: Path) -> Wheel:
    try:
        name, version, _, tags = parse_wheel_filename(path.name)
        with zipfile.ZipFile(path) as archive:
            members = archive.namelist()
            meta = next(m for m in members if m.count("/") == 1 and m.endswith(".dist-info/METADATA"))
            message = email.parser.Parser().parsestr(archive.read(meta).decode("utf-8"))
    except (ValueError, zipfile.BadZipFile, StopIteration, OSError) as exc:
        raise PrepareError(f"{path.name}: not a readable wheel ({exc})") from None
    if not {str(tag) for tag in tags} & DEVICE_TAGS:
        raise PrepareError(f"{path.name}: does not install on the device (CPython 3.12, manylinux x86_64)")
    requires = [Requirement(text) for text in message.get_all("Requires-Dist") or []]
    top = {member.split("/")[0] for member in members}
    modules = sorted(
        (
            {entry.split(".")[0] for entry in top if entry.endswith((".py", ".so"))}
            | {entry for entry in top if entry.isidentifier() and f"{entry}/__init__.py" in members}
        )
        - {"test", "tests"}  # torchao ships a top-level test package: not something the check imports
    )
    return Wheel(
        path,
        canonicalize_name(name),
        version,
        tuple(r for r in requires if r.marker is None or r.marker.evaluate(MARKERS)),
        tuple(modules),
    )


def check(folder: Path, unsloth: bool) -> list[Wheel]:
    """The wheels in ``folder``, checked as the module docstring says; PrepareError on the first fault."""
    wheels = sorted((read_wheel(path) for path in folder.glob("*.whl")), key=lambda w: w.name)
    by_name: dict[str, Wheel] = {}
    for wheel in wheels:
        if wheel.name in by_name:
            raise PrepareError(
                f"two versions of {wheel.name} in {folder} ({by_name[wheel.name].path.name}, {wheel.path.name}): "
                "pip installs neither; remove one"
            )
        by_name[wheel.name] = wheel
    want = wanted(unsloth)
    missing = sorted(set(want) - set(by_name))
    if missing:
        raise PrepareError(f"{folder} lacks {', '.join(missing)}: run scripts/gpu_check_prepare.py")
    extra = sorted(set(by_name) - set(want))
    if extra:
        raise PrepareError(f"{folder} holds {', '.join(extra)}, which the check does not carry: remove it")
    stale = [
        f"{name} {by_name[name].version}" for name in want if by_name[name].version != Version(want[name])
    ]
    if stale:
        raise PrepareError(
            f"{folder} holds {', '.join(stale)}, not the versions the check carries: run this script"
        )
    image = image_packages()
    for wheel in wheels:
        for requirement in wheel.requires:
            name = canonicalize_name(requirement.name)
            if name in by_name:
                have: Version | None = by_name[name].version
            elif name in image:
                have = image[name]
            elif name in OMITTED:
                continue
            else:
                raise PrepareError(
                    f"{wheel.path.name} requires {requirement}, which is neither carried nor in the device image"
                )
            if have is not None and not requirement.specifier.contains(have, prereleases=True):
                raise PrepareError(
                    f"{wheel.path.name} requires {requirement}; {name} {have} is what the device gets"
                )
    return wheels


def tree_bytes() -> int:
    """What the device call sends beside the wheels: tracked and untracked-not-ignored files, and a
    ``shared/`` folder inside the checkout."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8", errors="replace")
    files = {REPO / name for name in listed.split("\0") if name}
    shared = REPO / "shared"
    if shared.is_dir():
        files |= {path for path in shared.rglob("*")}
    return sum(path.stat().st_size for path in files if path.is_file() and not path.is_symlink())


def check_size(wheels: list[Wheel], limit_mib: float) -> str:
    carried = sum(w.path.stat().st_size for w in wheels) / 2**20
    tree = tree_bytes() / 2**20
    line = f"wheels {carried:.1f} MiB + working tree {tree:.1f} MiB = {carried + tree:.1f} MiB of {limit_mib:g} MiB"
    if carried + tree > limit_mib:
        raise PrepareError(f"over the device call's limit: {line}; prepare with --no-unsloth")
    return line


def python312() -> str | None:
    """A Python 3.12 that runs here (pyenv shims may exist without one)."""
    candidates = [
        shutil.which("python3.12"),
        *map(str, Path.home().glob(".pyenv/versions/3.12*/bin/python3.12")),
    ]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    return None


def self_contained(wheels: list[Wheel]) -> list[Wheel]:
    """Wheels whose requirements, all the way down, are carried: importable with nothing of the image."""
    names = {w.name for w in wheels}
    inside = {w.name: w for w in wheels if all(canonicalize_name(r.name) in names for r in w.requires)}
    changed = True
    while changed:
        changed = False
        for name, wheel in list(inside.items()):
            if any(canonicalize_name(r.name) not in inside for r in wheel.requires):
                del inside[name]
                changed = True
    return sorted(inside.values(), key=lambda w: w.name)


IMPORT_PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
found = {}
for module in sys.argv[2:]:
    try:
        __import__(module)
        found[module] = None
    except ModuleNotFoundError as exc:
        found[module] = ["missing", (exc.name or "").split(".")[0]]
    except Exception as exc:
        found[module] = ["error", f"{type(exc).__name__}: {exc}"]
print(json.dumps(found))
"""


def install_check(wheels: list[Wheel], python: str) -> str:
    """Install the set as the device does into a clean folder, then import what needs nothing else:
    a module may only miss one of the image's packages (some wheels import torch undeclared)."""
    with tempfile.TemporaryDirectory(prefix="kositp-gpu-wheels-") as target:
        install = subprocess.run(
            [
                python,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "--no-deps",
                "--no-compile",
                "--target",
                target,
            ]
            + [str(w.path) for w in wheels],
            capture_output=True,
            text=True,
            check=False,
        )
        if install.returncode != 0:
            last = (install.stderr.strip().splitlines() or ["no message"])[-1]
            raise PrepareError(f"pip install --target failed with {python}: {last}")
        modules = [module for w in self_contained(wheels) for module in w.modules]
        probe = subprocess.run(
            [python, "-S", "-c", IMPORT_PROBE, target, *modules], capture_output=True, text=True, check=False
        )
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or ["no message"])[-1]
            raise PrepareError(f"importing the carried modules under {python} failed: {last}")
    image = image_packages()
    imported, needs_image = [], set()
    for module, problem in json.loads(probe.stdout).items():
        if problem is None:
            imported.append(module)
        elif problem[0] == "missing" and canonicalize_name(problem[1]) in image:
            needs_image.add(problem[1])
        else:
            raise PrepareError(f"carried module {module} does not import under Python 3.12: {problem[1]}")
    needs = f"; the rest need the image's {', '.join(sorted(needs_image))}" if needs_image else ""
    return f"installed into a clean folder with {python}; imported without the image: {', '.join(imported)}{needs}"


def download(folder: Path, want: dict[str, str]) -> None:
    """The wanted wheels into ``folder``; wheels of other names or versions there are removed first."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.glob("*.whl"):
        try:
            name, version, _, _ = parse_wheel_filename(path.name)
        except ValueError:
            continue
        if want.get(canonicalize_name(name)) != str(version):
            path.unlink()
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    command += ["--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(folder)]
    result = subprocess.run(command + [f"{name}=={version}" for name, version in want.items()], check=False)
    if result.returncode != 0:
        raise PrepareError(f"pip download failed (exit {result.returncode}); see pip's message above")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dest", type=Path, default=REPO / ".whl", help="where the wheels go (default .whl/)"
    )
    parser.add_argument("--check", type=Path, metavar="DIR", help="check the wheels in DIR; download nothing")
    parser.add_argument("--no-unsloth", action="store_true", help="the training and evaluation path only")
    parser.add_argument("--limit-mib", type=float, default=LIMIT_MIB, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    unsloth = not ns.no_unsloth
    folder = ns.check or ns.dest
    try:
        if ns.check is None:
            download(folder, wanted(unsloth))
        wheels = check(folder, unsloth)
        size = check_size(wheels, ns.limit_mib)
        python = python312()
        installed = (
            install_check(wheels, python) if python else "no Python 3.12 here: the wheels' tags were checked"
        )
    except PrepareError as exc:
        print(f"gpu_check_prepare: {exc}", file=sys.stderr)
        return 1
    for wheel in wheels:
        print(f"{wheel.name:20} {wheel.version!s:12} {wheel.mib:7.2f} MiB")
    print(
        f"left out: {'; '.join(f'{name} ({why})' for name, why in OMITTED.items())}"
        if unsloth
        else "Unsloth: not carried"
    )
    print(size)
    print(installed)
    if folder.resolve() == (REPO / ".whl").resolve():
        print(f"device call: {RUN_CALL}")
    else:
        print(f"device call: move the wheels to .whl/ first, then {RUN_CALL}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
