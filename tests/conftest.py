"""Shared fixtures: an isolated Prefect home, one real Prefect server per session, a tiny model."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def prefect_server():
    """``prefect server start`` as a user runs it (SQLite, services on), shared by the session.

    The scheduler loops every 2 s so that a test sees a cron deployment's runs appear. Yields the
    API URL; this process and every subprocess a test starts (CLI, workers) talk to it.
    """
    import httpx
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log = open(_PREFECT_HOME / "server.log", "wb")  # noqa: SIM115 (open for the whole session)
    env = {
        **os.environ,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"prefect server did not start:\n{(_PREFECT_HOME / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)
    os.environ["PREFECT_API_URL"] = url
    try:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
    finally:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)  # logs still queued for the server go before it does
        os.environ.pop("PREFECT_API_URL", None)
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


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
