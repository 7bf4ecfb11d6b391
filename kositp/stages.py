"""The stage contract and the registry that orders the pipeline.

A stage is plain Python: it receives a :class:`StageContext` (its validated parameters, its
opened input artifacts, an empty or resumed staging folder, a reporter) and returns a
:class:`StageOutcome` (row counts and a report for the manifest). The runner in
:mod:`kositp.pipeline` computes versions, handles caching and publishing; the orchestrator wraps
the runner. A stage that is not built yet is simply not registered.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from kositp.artifacts import Artifact
from kositp.reporting import Reporter


@dataclass
class StageContext:
    out_dir: Path
    params: dict[str, Any]
    inputs: dict[str, Artifact]
    reporter: Reporter
    resumed: bool = False
    profile_name: str = ""
    config: BaseModel | None = None
    cache_dir: Path | None = None
    root: Path | None = None  # the artifact store's root: stages that read beyond their inputs (promote)
    version: str = ""


@dataclass
class StageOutcome:
    rows: dict[str, int] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stage:
    """One pipeline stage.

    ``code_version`` is bumped by hand whenever the stage's output for the same inputs changes;
    it is part of the artifact version. ``fingerprint`` adds facts about external inputs named in
    the parameters (raw files, a local base model), so changing them changes the version.
    """

    name: str
    code_version: str
    config: type[BaseModel]
    run: Callable[[StageContext], StageOutcome]
    inputs: tuple[str, ...] = ()
    optional_inputs: tuple[str, ...] = ()
    fingerprint: Callable[[BaseModel], Mapping[str, Any]] | None = None
    gpu: bool = False
    resumable: bool = False
    description: str = ""


PIPELINE_ORDER = ("ingest", "instructions", "reformat", "sft", "dpo", "export", "evaluate", "promote")

_STAGE_MODULES: tuple[str, ...] = (
    "kositp.ingest.stage",
    "kositp.instructions.stage",
    "kositp.reformat.stage",
    "kositp.sft.stage",
    "kositp.dpo.stage",
    "kositp.export.stage",
    "kositp.evaluate.stage",
    "kositp.promote.stage",
)


def registry() -> dict[str, Stage]:
    """Registered stages in pipeline order; each module exposes a module-level ``STAGE``."""
    stages = {m.STAGE.name: m.STAGE for m in map(importlib.import_module, _STAGE_MODULES)}
    return {name: stages[name] for name in PIPELINE_ORDER if name in stages}
