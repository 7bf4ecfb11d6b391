"""Shared fixtures: an isolated Prefect home, one real Prefect server per session, a tiny model."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
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
# ... and the raw-file hash cache (kositp.file_hashes) out of ~/.cache/kositp.
os.environ["KOSITP_CACHE_DIR"] = str(_PREFECT_HOME / "kositp-cache")

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def prefect_server():
    """``prefect server start`` as a user runs it (SQLite, services on), shared by the session.

    The scheduler loops every 2 s so that a test sees a cron deployment's runs appear. Yields the
    API URL; this process and every subprocess a test starts (CLI, workers) talk to it.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from serving import running

    from kositp.serve.vllm_backend import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
    }
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with running(command, _PREFECT_HOME / "server.log", f"{url}/health", env=env, timeout_s=120):
        os.environ["PREFECT_API_URL"] = url
        try:
            with temporary_settings(updates={PREFECT_API_URL: url}):
                yield url
        finally:
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=5)  # logs still queued for the server go before it does
            os.environ.pop("PREFECT_API_URL", None)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny Llama + Korean BPE tokenizer, built once per session."""
    from kositp.models.refs import ModelRef

    return Path(ModelRef.parse("tiny-llama").resolve(tmp_path_factory.mktemp("models-cache")))


@pytest.fixture
def shared_dir() -> Path:
    """The read-only ../shared folder (real data); tests using it skip cleanly where it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present in this checkout")
    return SHARED
