"""Pipeline profiles: one YAML file per way of running the pipeline, plus CLI overrides.

A profile names the artifact root, the stages to run, orchestration settings and one section
per stage; each stage validates its own section with a pydantic model (unknown keys are errors,
so a typo never silently falls back to a default). The seed project's ``config.json`` training
files load too: their keys are mapped onto the ``sft`` section of the ``seed`` profile.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from kositp.errors import PermanentError
from kositp.names import UnsafeName, safe_name

log = logging.getLogger("kositp")

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIRS = (Path.cwd() / "configs", REPO_ROOT / "configs")

# seed config.json key -> sft key (None: meaningless here, reported and ignored)
SEED_SFT_KEYS: dict[str, str | None] = {
    "pretrained_model_name": "base_model",
    "max_seq_length": "max_seq_length",
    "lora_r": "lora_r",
    "lora_alpha": "lora_alpha",
    "lora_target_modules": "lora_target_modules",
    "lora_dropout": "lora_dropout",
    "use_gradient_checkpointing": "use_gradient_checkpointing",
    "random_state": "seed",
    "use_rslora": "use_rslora",
    "num_train_epochs": "num_train_epochs",
    "train_batch_size": "train_batch_size",
    "eval_batch_size": "eval_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "weight_decay": "weight_decay",
    "evaluation_strategy": "eval_strategy",
    "save_steps": "save_steps",
    "eval_steps": "eval_steps",
    "learning_rate": "learning_rate",
    "logging_steps": "logging_steps",
    "optim": "optim",
    "load_best_model_at_end": "load_best_model_at_end",
    "save_total_limit": "save_total_limit",
    "packing": "packing",
    "train_path": None,
    "val_path": None,
    "output_dir": None,
    "model_use_cache": None,
}


# Top-level profile keys besides one section per stage (``extends`` is read and removed by ``_read``).
PROFILE_KEYS = ("name", "root", "stages", "prefect")
# Profiles are a few KB; their longest strings are paths and model names. Anything far larger is
# not a profile, and every value is copied into the manifests.
MAX_PROFILE_BYTES = 1 << 20
MAX_STRING_CHARS = 16384


class ProfileError(PermanentError, ValueError):
    """The profile or an override is wrong; the message names the file, section or key."""


class _ProfileLoader(yaml.SafeLoader):
    """YAML without aliases: ten levels of anchors, each naming the one before ten times, expand to
    10^10 values (a 3 GB ``MemoryError`` once a profile section was validated, or minutes of work)."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            alias = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"YAML aliases (*{alias.anchor}) are not allowed in "
                                              "profiles; write the value out", alias.start_mark)
        return super().compose_node(parent, index)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_ProfileLoader)  # a SafeLoader: plain data only


class StageConfig(BaseModel):
    """Base for every stage's parameter model: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PrefectSettings(BaseModel):
    """The profile's ``prefect`` section: how the orchestrator retries stages and guards the GPU."""

    model_config = ConfigDict(extra="forbid")

    retries: int = Field(
        0,
        description="times Prefect reruns a failed stage before the run fails; raise it for nightly runs on "
        "machines that get preempted or run out of memory (a bad profile or missing input is never retried)",
    )
    retry_delay_seconds: float = Field(
        10.0, description="seconds between a failed attempt and its retry (a resumable stage continues from its "
        "checkpoints)"
    )
    stage_retries: dict[str, int] = Field(
        {}, description="retries for named stages, overriding `retries` for them (e.g. sft: 3 where only "
        "training hits out-of-memory kills)"
    )
    gpu_concurrency_limit: str = Field(
        "gpu",
        description="the Prefect global concurrency limit a GPU stage holds one slot of while it runs, so two "
        "trainings never share a card (`kositp deploy` creates `gpu` with limit 1)",
    )
    strict_gpu_limit: bool = Field(
        False,
        description="fail a GPU stage when that limit does not exist on the server; off: run it without a slot "
        "and warn once per run (the temporary server of `kositp run` has no limit)",
    )

    def retries_for(self, stage: str) -> int:
        return self.stage_retries.get(stage, self.retries)


@dataclass
class Profile:
    name: str
    data: dict[str, Any]
    source: str = ""
    overrides: list[str] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return Path(self.data.get("root", "./artifacts"))

    @property
    def stages(self) -> list[str] | None:
        return self.data.get("stages")

    @property
    def prefect(self) -> PrefectSettings:
        return PrefectSettings(**self.data.get("prefect", {}))

    def section(self, stage: str) -> dict[str, Any]:
        return copy.deepcopy(self.data.get(stage) or {})


def resolve_data_path(raw: str | Path) -> Path:
    """A relative data path from the working directory, else from the repository root, so the
    demo profile's ``data/demo/...`` works wherever ``kositp run`` is started."""
    path = Path(raw)
    if not path.is_absolute() and not path.exists() and (REPO_ROOT / path).exists():
        return REPO_ROOT / path
    return path


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def find_profile(ref: str) -> Path:
    candidate = Path(ref)
    if candidate.suffix in {".yaml", ".yml", ".json"}:
        if candidate.is_file():
            return candidate
        raise ProfileError(f"profile file not found: {candidate}")
    for folder in CONFIG_DIRS:
        for suffix in (".yaml", ".yml"):
            if (folder / f"{ref}{suffix}").is_file():
                return folder / f"{ref}{suffix}"
    known = sorted({p.stem for d in CONFIG_DIRS if d.is_dir() for p in d.glob("*.yaml")})
    raise ProfileError(f"unknown profile {ref!r}; known profiles: {', '.join(known) or 'none'}")


def seed_config_to_sft(seed: Mapping[str, Any], source: str = "seed config") -> dict[str, Any]:
    """Map a seed ``config.json`` onto the ``sft`` section, naming any key it cannot use."""
    sft: dict[str, Any] = {}
    for key, value in seed.items():
        if key not in SEED_SFT_KEYS:
            raise ProfileError(f"{source}: unknown seed training key {key!r}")
        target = SEED_SFT_KEYS[key]
        if target is None:
            log.info("%s: %r is not used (the artifact store and the reformat stage own it)", source, key)
            continue
        sft[target] = value
    return sft


def _read(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path.resolve() in seen:
        raise ProfileError(f"profile {path} extends itself")
    if path.stat().st_size > MAX_PROFILE_BYTES:
        raise ProfileError(f"{path}: {path.stat().st_size} bytes is not a profile (at most {MAX_PROFILE_BYTES})")
    text = path.read_text(encoding="utf-8")
    try:
        raw = json.loads(text) if path.suffix == ".json" else _yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ProfileError(f"{path}: cannot parse profile: {exc.problem or exc.context}{where}") from exc
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ProfileError(f"{path}: cannot parse profile ({exc})") from exc
    if not isinstance(raw, dict):
        raise ProfileError(f"{path}: a profile must be a mapping, got {type(raw).__name__}")
    if path.suffix == ".json" and "pretrained_model_name" in raw:
        base = _read(find_profile("seed"), seen + (path.resolve(),))
        return _deep_merge(base, {"name": path.stem, "sft": seed_config_to_sft(raw, str(path))})
    parent = raw.pop("extends", None)
    if parent:
        return _deep_merge(_read(find_profile(parent), seen + (path.resolve(),)), raw)
    return raw


def parse_override(item: str) -> tuple[list[str], Any]:
    key, sep, value = item.partition("=")
    path = key.strip().split(".")
    if not sep or not all(part.strip() for part in path):
        raise ProfileError(f"override {item!r} must look like section.key=value")
    try:
        parsed = _yaml(value) if value else ""
    except yaml.YAMLError:  # an alias too: the text stays the plain string it is
        parsed = value
    return [part.strip() for part in path], parsed


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for item in overrides:
        path, value = parse_override(item)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ProfileError(f"override {item!r}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return data


def check_sections(data: Mapping[str, Any], source: str) -> None:
    """Every top-level key is known and every section a mapping, so a typo (``sftt:``,
    ``--set sfft.lora_r=16``) or a section set to a scalar (``--set sft=5``) fails here, in one line."""
    from kositp.stages import PIPELINE_ORDER  # stages imports the artifact store; config stays light

    known = (*PROFILE_KEYS, *PIPELINE_ORDER)
    unknown = [str(key) for key in data if key not in known]
    if unknown:
        raise ProfileError(f"{source}: unknown top-level key(s) {', '.join(map(repr, unknown))}; "
                           f"known: {', '.join(known)}")
    for key in ("prefect", *PIPELINE_ORDER):
        if data.get(key) is not None and not isinstance(data[key], Mapping):
            raise ProfileError(f"{source}: section {key!r} must be a mapping of settings, got "
                               f"{type(data[key]).__name__} (set one key: {key}.NAME=VALUE)")
    for key in ("name", "root"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ProfileError(f"{source}: {key!r} must be a string, got {type(data[key]).__name__}")
    stages = data.get("stages")
    if stages is not None and not (isinstance(stages, list) and all(isinstance(s, str) for s in stages)):
        raise ProfileError(f"{source}: 'stages' must be a list of stage names, got {str(stages)[:80]}")
    _check_strings(data, source)


def _check_strings(data: Mapping[str, Any], source: str) -> None:
    """No key or value longer than ``MAX_STRING_CHARS`` (a 50 MB ``--set`` value went into every manifest)."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        where, node = stack.pop()
        children = node.items() if isinstance(node, Mapping) else enumerate(node) if isinstance(node, list) else ()
        for key, value in children:
            at = f"{where}.{key}" if where else str(key)
            for text in (key, value):
                if isinstance(text, str) and len(text) > MAX_STRING_CHARS:
                    raise ProfileError(f"{source}: {at[:120]} holds a string of {len(text)} characters "
                                       f"(at most {MAX_STRING_CHARS})")
            stack.append((at, value))


def load_profile(ref: str, overrides: Sequence[str] = (), root: str | Path | None = None) -> Profile:
    """A profile by name (``configs/NAME.yaml``) or path (YAML profile or seed ``config.json``)."""
    path = find_profile(ref)
    data = apply_overrides(_read(path), overrides)
    source = f"profile {path}" + (" with --set overrides" if overrides else "")
    check_sections(data, source)
    if root is not None:
        data["root"] = str(root)
    try:
        name = safe_name(data.get("name") or path.stem, "the profile name")
    except UnsafeName as exc:
        raise ProfileError(f"{source}: {exc} (it names files under the artifact root)") from exc
    return Profile(name=name, data=data, source=str(path), overrides=list(overrides))
