"""Which model is served: a folder given by hand, or the profile's promoted export, else its latest.

The promotion record (:mod:`kositp.promote.record`) is the one place that says which model a
profile stands behind; serving anything else by default would put an unjudged model in front of
users. When nothing was ever promoted, the latest export is served and the log says so. Either
way the served artifact is opened through the store, so its checksums are verified first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kositp.errors import InputNotFound, PermanentError

MERGED_DIR = "merged"
Source = Literal["promoted", "latest", "path"]


@dataclass(frozen=True)
class ServedModel:
    path: Path  # a transformers folder: config, weights, tokenizer with the chat template
    name: str  # the model id clients send
    source: Source
    artifact: str | None = None  # ``export/<version>`` when it came from the artifact store
    profile: str | None = None

    def describe(self) -> str:
        if self.artifact:
            return f"{self.source} {self.artifact} of profile {self.profile!r} ({self.path})"
        return f"model folder {self.path}"

    def card(self) -> dict[str, Any]:
        """``/v1/models`` entry: OpenAI's fields plus where the model came from."""
        return {
            "id": self.name,
            "object": "model",
            "created": int(self.path.stat().st_mtime),
            "owned_by": "kositp",
            "kositp_artifact": self.artifact,
            "kositp_source": self.source,
            "kositp_profile": self.profile,
        }


def served_model(model: str | None, profile: str | None, name: str | None = None) -> ServedModel:
    """``--model REF`` (any reference a profile's base_model takes), else the profile's promoted export,
    else its latest export."""
    if model:
        path = model_folder(model)
        if not (path / "config.json").is_file():
            raise InputNotFound(f"--model {model}: not a model folder (no config.json in {path})")
        return ServedModel(path=path, name=name or "kositp", source="path")
    return profile_model(profile or "demo", name)


def model_folder(reference: str) -> Path:
    """The folder a reference is served from: built or converted once into the model cache, a Hub
    model from the Hub's own cache (downloaded there first where it is missing)."""
    from kositp.models.refs import ModelRef, model_cache_dir

    ref = ModelRef.parse(reference)
    if ref.kind != "hub":
        return Path(ref.resolve(model_cache_dir()))
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(ref.text))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        raise InputNotFound(f"--model {reference}: not in the Hub cache and not downloadable ({exc})") from exc


def profile_model(profile_name: str, name: str | None = None) -> ServedModel:
    from kositp.artifacts import ArtifactError, ArtifactStore
    from kositp.config import load_profile
    from kositp.promote.record import promoted

    profile = load_profile(profile_name)
    root, store = profile.root, ArtifactStore(profile.root)
    promotion = promoted(root, profile.name)
    try:
        if promotion is not None:
            source: Source = "promoted"
            version = promotion.export_version
        else:
            source, version = "latest", store.latest("export", profile.name)
        artifact = store.open("export", version)
    except ArtifactError as exc:
        raise InputNotFound(
            f"profile {profile.name!r}: no export to serve under {root} ({exc}); "
            f"run `kositp run --profile {profile.name}` first, or pass --model REF"
        ) from exc
    path = artifact.path / MERGED_DIR
    if not (path / "config.json").is_file():
        raise PermanentError(f"export/{version} under {root} has no {MERGED_DIR}/ model folder")
    return ServedModel(
        path=path,
        name=name or f"kositp-{profile.name}",
        source=source,
        artifact=f"export/{version}",
        profile=profile.name,
    )
