"""Why a record was not kept, and the ledger that proves nothing was lost (read == kept + rejected)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

REASONS = (
    "malformed_json",
    "undecodable",
    "missing_field",
    "empty_text",
    "answer_not_in_context",
    "too_long",
    "duplicate",
    "near_duplicate",
    "unsupported_member",
    "unknown_format",
    "broken_archive",
)
QUARANTINE_COLUMNS = ("source_file", "location", "format", "reason", "detail")


class IngestError(ValueError):
    """Raised when an adapter is given something it cannot read at all (a bad format override)."""


class AccountingError(AssertionError):
    """read != kept + rejected: a record vanished, which must never happen."""


@dataclass(frozen=True)
class Reject:
    location: str
    reason: str
    detail: str = ""

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"unknown reject reason {self.reason!r}")


@dataclass
class FileTally:
    read: int = 0
    kept: int = 0
    rejected: int = 0


@dataclass
class Ledger:
    """Counts per file; :meth:`check` raises when any file (or the total) does not add up."""

    files: dict[str, FileTally] = field(default_factory=dict)
    by_reason: Counter = field(default_factory=Counter)

    def tally(self, source_file: str) -> FileTally:
        return self.files.setdefault(source_file, FileTally())

    def read(self, source_file: str) -> None:
        self.tally(source_file).read += 1

    def keep(self, source_file: str) -> None:
        self.tally(source_file).kept += 1

    def reject(self, source_file: str, reason: str) -> None:
        self.tally(source_file).rejected += 1
        self.by_reason[reason] += 1

    def unkeep(self, source_file: str, reason: str) -> None:
        """A kept record later found to be a duplicate moves to the rejected side."""
        self.tally(source_file).kept -= 1
        self.reject(source_file, reason)

    @property
    def totals(self) -> FileTally:
        total = FileTally()
        for t in self.files.values():
            total.read += t.read
            total.kept += t.kept
            total.rejected += t.rejected
        return total

    def check(self) -> None:
        for name, t in self.files.items():
            if t.read != t.kept + t.rejected:
                raise AccountingError(f"{name}: read {t.read} != kept {t.kept} + rejected {t.rejected}")
        total = self.totals
        if total.read != total.kept + total.rejected:
            raise AccountingError(f"total: read {total.read} != kept {total.kept} + rejected {total.rejected}")
