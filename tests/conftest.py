"""Shared fixtures: an isolated Prefect home, one local Prefect server per session, a tiny model."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Before Prefect is imported anywhere: keep its database and result storage out of ~/.prefect.
_PREFECT_HOME = Path(tempfile.mkdtemp(prefix="kositp-prefect-"))
atexit.register(shutil.rmtree, _PREFECT_HOME, ignore_errors=True)
os.environ["PREFECT_HOME"] = str(_PREFECT_HOME)
os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = str(_PREFECT_HOME / "storage")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.pop("PREFECT_API_URL", None)

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def prefect_server():
    """A real local Prefect server for the whole session (it takes ~25 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny Llama + Korean BPE tokenizer, built once per session."""
    from kositp.tiny_model import resolve_base_model

    return Path(resolve_base_model("tiny-llama", tmp_path_factory.mktemp("models-cache")))


@pytest.fixture
def shared_dir() -> Path:
    """The read-only ../shared folder (real data); tests using it skip cleanly where it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present in this checkout")
    return SHARED
