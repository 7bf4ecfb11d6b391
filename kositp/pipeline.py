"""Plan and execute stages without any orchestrator.

Every version in a run is computable before anything runs: a stage's version depends only on
its code version, its validated parameters, the fingerprint of its external inputs and the
versions of its input stages. So the plan is made once, up front, and each stage is executed
against the artifact store, which turns an already published version into a cache hit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from kositp.artifacts import ROOT_ERRNOS, ArtifactStore, compute_version
from kositp.config import Profile, ProfileError
from kositp.reporting import ConsoleReporter, Reporter
from kositp.stages import Stage, StageContext, registry

Status = Literal["ran", "cached", "failed", "skipped"]


@dataclass
class PlannedStage:
    stage: Stage
    config: BaseModel
    params: dict[str, Any]
    inputs: dict[str, str]
    version: str

    @property
    def name(self) -> str:
        return self.stage.name


@dataclass
class StageResult:
    stage: str
    version: str
    status: Status
    path: str
    rows: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    note: str | None = None  # e.g. a damaged artifact that was moved aside and rebuilt

    def to_json(self) -> dict[str, Any]:
        out = {"stage": self.stage, "version": self.version, "status": self.status, "path": self.path}
        for key in ("error", "note"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def validate_section(stage: Stage, profile: Profile) -> BaseModel:
    try:
        return stage.config(**profile.section(stage.name))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or stage.name}: {error['msg']} (got {repr(error.get('input'))[:80]})"
            if error["type"] != "extra_forbidden"
            else f"{'.'.join(map(str, error['loc']))}: unknown key (known: {', '.join(stage.config.model_fields)})"
            for error in exc.errors()
        )
        raise ProfileError(f"profile {profile.source or profile.name}, section {stage.name!r}: {problems}") from exc


def plan(profile: Profile, stages: Mapping[str, Stage] | None = None) -> list[PlannedStage]:
    """Versions for every stage the profile selects, in pipeline order."""
    stages = registry() if stages is None else stages
    wanted = profile.stages or list(stages)
    unknown = [s for s in wanted if s not in stages]
    if unknown:
        raise ProfileError(
            f"profile {profile.name!r} names stages that are not available: {', '.join(unknown)} "
            f"(available: {', '.join(stages) or 'none'})"
        )
    planned: dict[str, PlannedStage] = {}
    for name, stage in stages.items():
        if name not in wanted:
            continue
        missing = [i for i in stage.inputs if i not in planned]
        if missing:
            raise ProfileError(f"stage {name!r} needs {', '.join(missing)}, which the profile does not run")
        config = validate_section(stage, profile)
        params = config.model_dump(mode="json")
        inputs = {i: planned[i].version for i in (*stage.inputs, *stage.optional_inputs) if i in planned}
        fingerprint = dict(stage.fingerprint(config)) if stage.fingerprint else {}
        version = compute_version(name, stage.code_version, params, inputs, fingerprint)
        planned[name] = PlannedStage(stage, config, params, inputs, version)
    return list(planned.values())


def select(planned: list[PlannedStage], until: str | None = None, only: Iterable[str] = ()) -> list[PlannedStage]:
    names = [p.name for p in planned]
    for requested in [until, *only]:
        if requested and requested not in names:
            raise ProfileError(f"stage {requested!r} is not in this run (stages: {', '.join(names)})")
    only = set(only)
    if only:
        return [p for p in planned if p.name in only]
    if until:
        return planned[: names.index(until) + 1]
    return planned


def execute(
    item: PlannedStage,
    store: ArtifactStore,
    profile_name: str,
    reporter: Reporter | None = None,
    force: bool = False,
) -> StageResult:
    """Build one planned stage unless an intact copy of its version is published; publish atomically.

    A published copy that fails verification is moved aside and rebuilt, never reported cached.
    """
    try:
        return _execute(item, store, profile_name, reporter or ConsoleReporter(), force)
    except OSError as exc:
        on_root = exc.filename is None or Path(exc.filename).is_relative_to(store.root)
        if exc.errno in ROOT_ERRNOS and on_root:  # a full, read-only or unwritable root: no retry makes room
            raise store.root_error(exc) from exc
        raise


def _execute(item: PlannedStage, store: ArtifactStore, profile_name: str, reporter: Reporter, force: bool) -> StageResult:
    stage = item.stage
    _, note = store.intact(stage.name, item.version)
    if note:
        reporter.warning(note)
    inputs = {}
    for name, version in item.inputs.items():
        if not store.exists(name, version):
            raise ProfileError(
                f"stage {stage.name!r} needs {name} version {version}, which is not built under "
                f"{store.root}; run the pipeline up to {name!r} first"
            )
        inputs[name] = store.open(name, version)
    with store.build(stage.name, item.version, resumable=stage.resumable, force=force) as staging:
        if staging is None:
            artifact = store.open(stage.name, item.version, verify=False)
            status: Status = "cached"
        else:
            if staging.resumed:
                reporter.info(f"{stage.name} {item.version}: resuming from {staging.path}")
            context = StageContext(
                out_dir=staging.path,
                params=item.params,
                inputs=inputs,
                reporter=reporter,
                resumed=staging.resumed,
                profile_name=profile_name,
                config=item.config,
                cache_dir=store.root / "_cache",
                root=store.root,
                version=item.version,
            )
            outcome = stage.run(context)
            artifact = store.publish(
                staging,
                inputs=item.inputs,
                params=item.params,
                code_version=stage.code_version,
                rows=outcome.rows,
                report=outcome.report,
                extra={"profile": profile_name},
                exclude=outcome.exclude,
            )
            status = "ran"
    store.set_latest(stage.name, profile_name, item.version)
    return StageResult(stage.name, item.version, status, str(artifact.path), rows=dict(artifact.rows), note=note)
