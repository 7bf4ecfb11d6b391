"""The promotion record: ``<root>/promoted-<profile>.json``, the one place that says which model is served.

Artifacts are immutable; whether a model is *the* model of a profile changes over time, so it is
kept beside them in one small JSON file per profile: the current promotion and the history of
every decision (the gate's and a person's), each with versions, scores, time and reason. Writes
are atomic and serialised by a file lock, so two runs deciding at once never lose an entry. A
damaged record is never overwritten: the decision fails with a line naming the file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock

from kositp.errors import PermanentError
from kositp.names import safe_name

# rescored: the promoted model was re-evaluated with new settings; its scores are replaced
Decision = Literal["promoted", "kept", "rescored"]
DecidedBy = Literal["gate", "manual"]
# A record is a few hundred bytes per decision; anything far larger is not ours.
MAX_RECORD_BYTES = 64 << 20


class PromotionError(PermanentError):
    """The promotion record is damaged, or a requested promotion is impossible."""


@dataclass(frozen=True)
class Promotion:
    """One model's standing: its export and evaluate versions and the scores it was judged by."""

    export_version: str
    evaluate_version: str
    scores: dict[str, float]
    mean_macro_f1: float
    settings: dict[str, Any]
    reason: str
    by: DecidedBy = "gate"
    promote_version: str | None = None
    metric: str = "raw"  # which macro F1 the scores are: raw or batch-calibrated
    held_in_mean: float | None = None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Promotion:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class PromotionHistory:
    profile: str
    current: Promotion | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "current": asdict(self.current) if self.current else None,
            "history": self.history,
        }


def record_path(root: str | os.PathLike[str], profile: str) -> Path:
    return Path(root) / f"promoted-{safe_name(profile, 'profile name', PromotionError)}.json"


def read_history(root: str | os.PathLike[str], profile: str) -> PromotionHistory:
    """The profile's record; an empty one if nothing was ever promoted."""
    path = record_path(root, profile)
    if not path.is_file():
        return PromotionHistory(profile)
    if path.stat().st_size > MAX_RECORD_BYTES:
        raise PromotionError(f"promotion record {path} is {path.stat().st_size} bytes; not a record, not used")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        current = data.get("current")
        return PromotionHistory(
            profile=profile,
            current=Promotion.from_json(current) if current else None,
            history=list(data.get("history", [])),
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise PromotionError(
            f"promotion record {path} is damaged ({type(exc).__name__}: {exc}); fix it or move it aside"
        ) from exc


def promoted(root: str | os.PathLike[str], profile: str) -> Promotion | None:
    """The profile's promoted model, or ``None`` when no model was ever promoted."""
    return read_history(root, profile).current


def record_decision(
    root: str | os.PathLike[str],
    profile: str,
    candidate: Promotion,
    decision: Decision,
) -> PromotionHistory:
    """Append a decision about ``candidate``; when promoted (or rescored) it becomes ``current``."""
    path = record_path(root, profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        record = read_history(root, profile)
        record.history.append({"decision": decision, **asdict(candidate)})
        if decision in ("promoted", "rescored"):
            record.current = candidate
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(record.to_json(), ensure_ascii=False, indent=2), encoding="utf-8")
        os.replace(tmp, path)
    return record
