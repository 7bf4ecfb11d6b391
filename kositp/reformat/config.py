"""The ``reformat`` profile section and the external inputs it names (supplementary files, the eval
folder), read by planning (:mod:`kositp.reformat.stage`) and by the build (:mod:`kositp.reformat.build`)."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kositp.artifacts import canonical_json, file_sha256
from kositp.config import REPO_ROOT, StageConfig
from kositp.reformat.eval_sources import eval_fingerprint


class SupplementarySource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str  # a file or a glob of Alpaca-style JSONL files
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    ratio: float = Field(0.1, ge=0)


class ReformatConfig(StageConfig):
    seed: int = 42
    validation_ratio: float = Field(0.1, ge=0, lt=1)
    per_task_max: int | None = Field(None, ge=1)
    per_task_min: int = Field(1, ge=0)
    below_min: Literal["fail", "warn"] = "fail"
    supplementary: list[SupplementarySource] = Field(default_factory=list)
    decontaminate_against: str | None = None
    ngram: int = Field(13, ge=4)
    seed_jsonl_export: bool = False


# The artifact's code version: bump when the shards change for the same inputs. The per-task
# cache does not rely on it: it is keyed by the source of the shard-building modules
# (kositp.reformat.build.BUILD_MODULES) and all they import.
CODE_VERSION = "3"


class ReformatError(ValueError):
    pass


def supplementary_files(source: SupplementarySource) -> list[Path]:
    """Files matching the glob, relative to the working directory or else to the repository."""
    files = sorted(Path(p) for p in glob.glob(source.path))
    if not files and not Path(source.path).is_absolute():
        files = sorted(Path(p) for p in glob.glob(str(REPO_ROOT / source.path)))
    if not files:
        raise ReformatError(f"supplementary {source.name!r}: no file matches {source.path!r}")
    return files


def eval_folder(config: ReformatConfig) -> Path | None:
    """The eval folder, relative to the working directory or else to the repository."""
    if not config.decontaminate_against:
        return None
    folder = Path(config.decontaminate_against)
    if not folder.is_absolute() and not folder.exists() and (REPO_ROOT / folder).is_dir():
        return REPO_ROOT / folder
    return folder


def fingerprint(config: ReformatConfig) -> dict[str, str]:
    """External inputs named in the parameters: supplementary files and the eval folder."""
    eval_dir = eval_folder(config)
    return {
        "supplementary": canonical_json(
            {s.name: [file_sha256(p) for p in supplementary_files(s)] for s in config.supplementary}
        ),
        "eval": eval_fingerprint(eval_dir),
    }
