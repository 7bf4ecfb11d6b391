"""``kositp server`` (``make ui``): its port, and a signal to it leaves no Prefect server behind."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from serving import free_port, running

ROOT = Path(__file__).resolve().parents[1]


def test_make_ui_takes_its_port_from_port():
    shown = subprocess.run(["make", "-n", "ui", "PORT=4321"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "kositp server --port 4321" in shown.stdout


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory):
    """One Prefect home for the module: the first start creates its database, the others reuse it."""
    return tmp_path_factory.mktemp("server-home")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_to_kositp_server_stops_the_whole_process_tree(sig, prefect_home, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/health"
    env = {"PREFECT_HOME": str(prefect_home), "PREFECT_SERVER_UI_ENABLED": "false"}
    command = [sys.executable, "-m", "kositp", "server", "--port", str(port)]
    with running(command, tmp_path / "server.log", url, env=env) as server:
        tree = psutil.Process(server.pid).children(recursive=True)
        assert tree, "kositp server started Prefect's server as a child"
        server.send_signal(sig)
        code = server.wait(30)
        deadline = time.monotonic() + 15
        while (left := [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.2)
        orphans = [" ".join(p.cmdline()) for p in left]
        for process in left:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
    assert not orphans, f"{sig.name} to kositp server left {orphans} running"
    assert code == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=5)
    assert f"{sig.name}: stopping Prefect's server" in (tmp_path / "server.log").read_text(encoding="utf-8")
