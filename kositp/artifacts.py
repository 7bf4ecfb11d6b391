"""Versioned, content-checked artifact store: the pipeline's cache and its record of lineage.

An artifact lives at ``<root>/<stage>/<version>/`` with a ``manifest.json``. The version is a
hash of everything that determines the output, so the same inputs always land in the same
folder and a finished version is never built twice. Builds happen in a staging folder
(``<root>/<stage>/.staging/<version>/``) and are published by one atomic rename, under a file
lock, so a crash never leaves a half artifact that looks finished and two concurrent builders
of one version leave one intact copy.

Opening an artifact verifies it: sizes always, sha256 checksums unless a verification stamp
(``<root>/<stage>/.verified/<version>.json``, each file's size, mtime and inode when it last
checked out, as git's index keeps them) says the file has not been touched since. A damaged
artifact is moved aside to ``<root>/<stage>/.damaged/`` for inspection, never used or reused.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from kositp.errors import PermanentError
from kositp.names import is_safe_name, safe_name
from kositp.secrets import redact

MANIFEST = "manifest.json"
VERSION_LENGTH = 16
_CHUNK = 1 << 20
# Coarse filesystem clocks tick every few milliseconds; a file younger than this when a stamp is
# taken is hashed again next time rather than trusted by its size and mtime.
_RACY_MARGIN_NS = 2_000_000_000


class ArtifactError(Exception):
    """Base class for artifact store errors; the message always names the artifact or file."""


class ArtifactNotFound(ArtifactError):
    pass


class AmbiguousVersion(ArtifactError):
    pass


class CorruptArtifact(ArtifactError):
    pass


class UnsafeArtifactName(ArtifactError, PermanentError):
    """A stage, version or profile name that would not stay one folder or file name under the root."""


class ArtifactRootError(ArtifactError, PermanentError):
    """The artifact root cannot be written: a file in its place, a read-only or full disk, no
    permission. A retry meets the same root, so none is made."""


# What writing under the root fails with when the root itself is the problem.
ROOT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENOTDIR, errno.EACCES, errno.EPERM})


def _stage(stage: str) -> str:
    return safe_name(stage, "stage name", UnsafeArtifactName)


def _version(version: str) -> str:
    return safe_name(version, "version", UnsafeArtifactName)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace variance, so equal values hash equally."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def compute_version(
    stage: str,
    code_version: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, str],
    fingerprint: Mapping[str, Any] | None = None,
) -> str:
    """Stable hash of what determines a stage's output.

    ``fingerprint`` carries facts about external inputs (raw files, a base model on disk) that
    the parameters only name by path.
    """
    payload = {
        "stage": stage,
        "code_version": code_version,
        "params": params,
        "inputs": dict(inputs),
        "fingerprint": fingerprint or {},
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()[:VERSION_LENGTH]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def published_location(path: Path) -> Path:
    """Where a file a stage writes into its staging folder will be once the artifact is published."""
    parts = Path(path).parts
    if ".staging" not in parts:
        return Path(path)
    cut = parts.index(".staging")
    return Path(*parts[:cut], *parts[cut + 1 :])


def _file_key(path: Path) -> list[int]:
    """What changes when a file is rewritten, touched or replaced: size, mtime (ns) and inode."""
    info = path.stat()
    return [info.st_size, info.st_mtime_ns, info.st_ino]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Artifact:
    """A published, verified artifact: its folder and its manifest."""

    stage: str
    version: str
    path: Path
    manifest: dict[str, Any]

    def file(self, relative: str) -> Path:
        target = self.path / relative
        if not target.exists():
            raise ArtifactNotFound(f"{self.stage}/{self.version} has no file {relative!r}")
        return target

    @property
    def rows(self) -> dict[str, int]:
        return self.manifest.get("rows", {})

    @property
    def report(self) -> dict[str, Any]:
        return self.manifest.get("report", {})


@dataclass
class Staging:
    """A build in progress. ``resumed`` says the folder survived an earlier, unfinished attempt."""

    stage: str
    version: str
    path: Path
    resumed: bool
    started_at: str = field(default_factory=_now)
    started_monotonic: float = field(default_factory=time.monotonic)


class ArtifactStore:
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def check_writable(self) -> None:
        """The root takes a folder and a small file now, or :class:`ArtifactRootError` says why in one
        line (before an orchestrator is started for a run that could not publish anything)."""
        probe = self.root / f".write-check-{os.getpid()}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with open(probe, "wb") as handle:
                handle.write(bytes(4096))
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise self.root_error(exc) from exc
        finally:
            with contextlib.suppress(OSError):
                probe.unlink(missing_ok=True)

    def root_error(self, exc: OSError) -> ArtifactRootError:
        """One line for a root that cannot be written, naming the path that failed when it is not the root."""
        if self.root.exists() and not self.root.is_dir():
            return ArtifactRootError(f"the artifact root {self.root} is a file, not a folder")
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(self.root) else ""
        # the system's wording: pyarrow's writers put their own ("Error writing bytes to file...") in strerror
        reason = os.strerror(exc.errno) if exc.errno else exc.strerror or str(exc)
        return ArtifactRootError(f"the artifact root {self.root} cannot be written: {reason}{where}")

    def path(self, stage: str, version: str) -> Path:
        return self.root / _stage(stage) / _version(version)

    def cache_key(self, stage: str, version: str) -> str:
        """The orchestrator's cache key (and result file name) for a version of this store."""
        return f"kositp-{stage}-{version}-{hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:8]}"

    def staging_path(self, stage: str, version: str) -> Path:
        return self.root / _stage(stage) / ".staging" / _version(version)

    def _lock(self, stage: str, version: str) -> FileLock:
        lock_dir = self.root / _stage(stage) / ".locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(lock_dir / f"{_version(version)}.lock"))

    def exists(self, stage: str, version: str) -> bool:
        return (self.path(stage, version) / MANIFEST).is_file()

    def _stamp_path(self, stage: str, version: str) -> Path:
        return self.root / _stage(stage) / ".verified" / f"{_version(version)}.json"

    def intact(self, stage: str, version: str) -> tuple[bool, str | None]:
        """Whether the version is published and intact; a damaged one is moved aside first.

        Returns ``(False, note)`` with a note naming the damage and where the folder went, so the
        caller rebuilds it and says so; ``(False, None)`` when it was simply never published.
        """
        if not self.exists(stage, version):
            return False, None
        try:
            self.open(stage, version)
        except CorruptArtifact as exc:
            moved = self.set_aside(stage, version)
            return False, f"{stage}/{version} was damaged ({exc}); moved to {moved}, rebuilding it"
        return True, None

    def set_aside(self, stage: str, version: str) -> Path:
        """Move a damaged version out of the way (kept for inspection) so it can be rebuilt."""
        with self._lock(stage, version):
            target = self.root / stage / ".damaged" / f"{version}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.path(stage, version), target)
            self._stamp_path(stage, version).unlink(missing_ok=True)
            return target

    @contextmanager
    def build(
        self, stage: str, version: str, *, resumable: bool = False, force: bool = False
    ) -> Iterator[Staging | None]:
        """Hold the version's lock while the caller fills a staging folder.

        Yields ``None`` when the version is already published (and ``force`` is off): the caller
        has nothing to build. On an exception the staging folder is kept, so a resumable stage
        (training) continues from its checkpoints on the next attempt; a non-resumable stage
        starts from an empty folder every time.
        """
        with self._lock(stage, version):
            if self.exists(stage, version) and not force:
                yield None
                return
            staging_dir = self.staging_path(stage, version)
            resumed = staging_dir.exists() and any(staging_dir.iterdir())
            if resumed and not resumable:
                shutil.rmtree(staging_dir)
                resumed = False
            staging_dir.mkdir(parents=True, exist_ok=True)
            yield Staging(stage=stage, version=version, path=staging_dir, resumed=resumed)

    def publish(
        self,
        staging: Staging,
        *,
        inputs: Mapping[str, str],
        params: Mapping[str, Any],
        code_version: str,
        rows: Mapping[str, int] | None = None,
        report: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
        exclude: tuple[str, ...] = (),
    ) -> Artifact:
        """Checksum the staged files, write the manifest and rename the folder into place.

        Must be called inside :meth:`build`, which holds the lock. ``exclude`` names top-level
        entries of the staging folder (checkpoints, scratch) that are deleted, not published.
        """
        for name in exclude:
            victim = staging.path / name
            if victim.is_dir():
                shutil.rmtree(victim)
            elif victim.exists():
                victim.unlink()
        paths = [p for p in sorted(staging.path.rglob("*")) if p.is_file() and p.name != MANIFEST]
        # One thread per core: hashlib lets go of the GIL, and a reformat publishes 600 MB of shards at 150k records.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            digests = list(pool.map(file_sha256, paths))
        files = {
            str(p.relative_to(staging.path)): {"sha256": digest, "bytes": p.stat().st_size}
            for p, digest in zip(paths, digests, strict=True)
        }
        manifest = {
            "stage": staging.stage,
            "version": staging.version,
            "inputs": dict(inputs),
            "params": redact(dict(params)),
            "code_version": code_version,
            "source_revision": source_revision(),
            "rows": dict(rows or {}),
            "files": files,
            "started_at": staging.started_at,
            "finished_at": _now(),
            "duration_s": round(time.monotonic() - staging.started_monotonic, 3),
            "report": redact(dict(report or {})),
            **redact(dict(extra or {})),
        }
        tmp_manifest = staging.path / (MANIFEST + ".tmp")
        tmp_manifest.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        os.replace(tmp_manifest, staging.path / MANIFEST)
        final = self.path(staging.stage, staging.version)
        if final.exists():
            retired = final.with_name(f".retired-{staging.version}-{os.getpid()}")
            os.replace(final, retired)
            os.replace(staging.path, final)
            shutil.rmtree(retired)
        else:
            os.replace(staging.path, final)
        self._write_stamp(staging.stage, staging.version, final, files)
        return Artifact(staging.stage, staging.version, final, manifest)

    def open(self, stage: str, version: str, *, verify: bool = True) -> Artifact:
        """Load a published artifact, checking every file against the manifest's checksums."""
        folder = self.path(stage, version)
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            raise ArtifactNotFound(f"no published artifact {stage}/{version} under {self.root}")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CorruptArtifact(f"{manifest_path}: manifest is not valid JSON ({exc})") from exc
        if verify:
            self._verify(stage, version, folder, manifest)
        return Artifact(stage, version, folder, manifest)

    def _read_stamp(self, stage: str, version: str) -> dict[str, list[int]]:
        """File keys that may be trusted without hashing.

        As in git's "racy clean" rule, a file modified within the filesystem's timestamp
        granularity of when the stamp was taken could change again with the same mtime, so
        only files older than that margin are trusted; the others are hashed next time.
        """
        try:
            stamp = json.loads(self._stamp_path(stage, version).read_text(encoding="utf-8"))
            cutoff = int(stamp["written_ns"]) - _RACY_MARGIN_NS
            return {k: v for k, v in stamp["files"].items() if isinstance(v, list) and len(v) == 3 and v[1] < cutoff}
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return {}

    def _write_stamp(self, stage: str, version: str, folder: Path, files: Mapping[str, Any]) -> None:
        """A cache of checksums that held: without it the next open hashes again, so a stamp that
        cannot be written (a full or read-only disk) is skipped, leaving nothing half-written."""
        stamp = {"written_ns": time.time_ns(), "files": {relative: _file_key(folder / relative) for relative in files}}
        target = self._stamp_path(stage, version)
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(stamp), encoding="utf-8")
            os.replace(tmp, target)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)

    def _verify(self, stage: str, version: str, folder: Path, manifest: Mapping[str, Any]) -> None:
        problems = []
        stamp = self._read_stamp(stage, version)
        files = manifest.get("files", {})
        for relative, expected in files.items():
            target = folder / relative
            if not target.is_file():
                problems.append(f"{target}: missing")
            elif target.stat().st_size != expected["bytes"]:
                problems.append(f"{target}: size {target.stat().st_size} != {expected['bytes']}")
            elif stamp.get(relative) != _file_key(target) and file_sha256(target) != expected["sha256"]:
                problems.append(f"{target}: checksum mismatch")
        if problems:
            raise CorruptArtifact("corrupted artifact, not used:\n  " + "\n  ".join(problems))
        if any(stamp.get(relative) != _file_key(folder / relative) for relative in files):
            self._write_stamp(stage, version, folder, files)

    def versions(self, stage: str) -> list[str]:
        stage_dir = self.root / _stage(stage)
        if not stage_dir.is_dir():
            return []
        return sorted(p.name for p in stage_dir.iterdir() if (p / MANIFEST).is_file())

    def stages(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and is_safe_name(p.name) and self.versions(p.name))

    def list(self, stage: str | None = None) -> list[Artifact]:
        """Every published artifact (unverified: listing must stay cheap), oldest first."""
        found = [
            self.open(s, v, verify=False)
            for s in ([stage] if stage else self.stages())
            for v in self.versions(s)
        ]
        return sorted(found, key=lambda a: (a.manifest.get("finished_at", ""), a.stage))

    def resolve(self, stage: str, prefix: str) -> str:
        """Full version from a unique prefix, or from ``latest`` / ``latest:<profile>``."""
        if prefix == "latest" or prefix.startswith("latest:"):
            profile = prefix.partition(":")[2] or None
            return self.latest(stage, profile)
        safe_name(prefix, "version prefix", UnsafeArtifactName)  # never empty: '' would match every version
        matches = [v for v in self.versions(stage) if v.startswith(prefix)]
        if not matches:
            raise ArtifactNotFound(f"no {stage} artifact matches {prefix!r} under {self.root}")
        if len(matches) > 1:
            raise AmbiguousVersion(f"{prefix!r} matches {len(matches)} {stage} versions: {', '.join(matches)}")
        return matches[0]

    def _latest_file(self, stage: str, profile: str) -> Path:
        return self.root / _stage(stage) / f"latest-{safe_name(profile, 'profile name', UnsafeArtifactName)}.json"

    def set_latest(self, stage: str, profile: str, version: str) -> None:
        target = self._latest_file(stage, profile)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"version": version, "updated_at": _now()}), encoding="utf-8")
        os.replace(tmp, target)

    def latest(self, stage: str, profile: str | None = None) -> str:
        """Latest version for a profile, or the most recently finished one of any profile."""
        if profile:
            target = self._latest_file(stage, profile)
            if not target.is_file():
                raise ArtifactNotFound(f"no latest {stage} artifact for profile {profile!r} under {self.root}")
            return json.loads(target.read_text(encoding="utf-8"))["version"]
        published = self.list(stage)
        if not published:
            raise ArtifactNotFound(f"no {stage} artifact under {self.root}")
        return published[-1].version


def source_revision() -> str | None:
    """The git commit of the running code (informational: it is not part of any version)."""
    head = Path(__file__).resolve().parent.parent / ".git"
    try:
        ref = (head / "HEAD").read_text().strip()
        if ref.startswith("ref: "):
            ref_file = head / ref[5:]
            if ref_file.is_file():
                return ref_file.read_text().strip()
            packed = head / "packed-refs"
            for line in packed.read_text().splitlines() if packed.is_file() else []:
                if line.endswith(ref[5:]):
                    return line.split()[0]
            return None
        return ref
    except OSError:
        return None
