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

    path: str = Field(
        description="an Alpaca-style JSONL file (instruction, input, output) or a glob of them, such as the seed's "
        "k_rlhf / every_lm / evolve_instr; relative: from the working directory, then the repository"
    )
    name: str = Field(
        pattern=r"^[a-z0-9_]+$", description="names the shard shards/supplementary_<name>/ (lower case, digits, _)"
    )
    ratio: float = Field(
        0.1,
        ge=0,
        description="rows per task training instance: 0.1 adds one for every ten (or every row the files have, "
        "if fewer), taken in a seeded order",
    )


class ReformatConfig(StageConfig):
    seed: int = Field(
        42, description="seeds each instance's instruction, the document split, the cap's sample and the "
        "supplementary rows' order"
    )
    validation_ratio: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="share of source documents (not instances) whose instances go to validation; a document's "
        "instances stay on one side in every task",
    )
    per_task_max: int | None = Field(
        None,
        ge=1,
        description="instances kept per task at most (both splits), a seeded uniform sample of the corpus; the rest "
        "count as capped; null: no cap",
    )
    per_task_min: int = Field(
        1, ge=0, description="training instances each task must have; see below_min for what happens when one is short"
    )
    below_min: Literal["fail", "warn"] = Field(
        "fail", description="a task below per_task_min: fail stops the stage naming each short task; warn reports it"
    )
    supplementary: list[SupplementarySource] = Field(
        default_factory=list,
        description="Alpaca-style instruction data mixed in beside the tasks, one shard per source",
    )
    decontaminate_against: str | None = Field(
        None,
        description="a folder of zero-shot evaluation files (jsonl, json, csv, tsv, txt, parquet): training "
        "instances sharing a character n-gram with them are dropped; its files are part of the version; "
        "null: no decontamination (reported as skipped)",
    )
    ngram: int = Field(
        13,
        ge=4,
        description="characters per n-gram for decontamination, counted after whitespace removal (13 syllables is "
        "four to five Korean words); shorter drops more",
    )
    seed_jsonl_export: bool = Field(
        False, description="also write seed_format.jsonl, every instance in the seed project's JSONL layout"
    )


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
