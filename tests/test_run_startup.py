"""``kositp run`` start-up: concurrent first runs, and no Prefect server left behind by a killed run."""

from __future__ import annotations

import json
import os
import signal
import socketserver
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = [sys.executable, "-c", "from kositp.cli import app; app()", "run", "--profile", "demo", "--json"]


def _env(prefect_home: Path) -> dict[str, str]:
    """A fresh Prefect home, as on a new machine: no database and no API URL."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return {**env, "PREFECT_HOME": str(prefect_home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "KOSITP_CACHE_DIR": str(prefect_home.parent / "hashes"), "PYTHONPATH": str(ROOT)}


def _children(pid: int) -> list[int]:
    found = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], check=False, capture_output=True, text=True).stdout
    return [int(p) for p in found.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], check=False, capture_output=True, text=True).stdout.strip()
    return bool(state) and not state.startswith("Z")


@pytest.mark.slow
def test_two_first_runs_at_once_both_finish(tmp_path):
    env = _env(tmp_path / "prefect")
    runs = [subprocess.Popen([*RUN, "--until", "ingest", "--root", str(tmp_path / f"결과{n}")], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in (1, 2)]
    for run in runs:
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err[-3000:]
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert [(line["stage"], line["status"]) for line in lines] == [("ingest", "ran")]


def _has_server(run: subprocess.Popen) -> bool:
    for child in _children(run.pid):
        args = subprocess.run(["ps", "-o", "args=", "-p", str(child)], check=False, capture_output=True, text=True).stdout
        if "uvicorn" in args:
            return True
    return False


@pytest.mark.slow
def test_a_second_run_on_the_same_prefect_home_waits_for_the_first_in_one_line(tmp_path):
    """Their servers shared one database: ``database is locked`` tracebacks and a 60 s stall."""
    env = _env(tmp_path / "prefect")
    command = [*RUN, "--until", "ingest", "--root"]
    first = subprocess.Popen([*command, str(tmp_path / "결과1")], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not _has_server(first) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    second = subprocess.Popen([*command, str(tmp_path / "결과2")], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    overlapped = False
    while first.poll() is None:  # the second run's server waits until the first run's is gone
        overlapped = overlapped or (_has_server(second) and _has_server(first))
        time.sleep(0.5)
    (_, err1), (_, err2) = first.communicate(timeout=600), second.communicate(timeout=600)
    assert first.returncode == second.returncode == 0, err1[-2000:] + err2[-2000:]
    assert not overlapped
    waiting = (
        "waiting for another kositp run to finish: runs on one PREFECT_HOME take turns "
        f"({tmp_path / 'prefect' / 'kositp-run.lock'})"
    )
    assert [line for line in err2.splitlines() if line.startswith("waiting")] == [waiting]
    assert "Traceback" not in err1 + err2 and "database is locked" not in err1 + err2


@pytest.mark.slow
def test_a_killed_run_leaves_no_prefect_server(tmp_path):
    run = subprocess.Popen([*RUN, "--until", "reformat", "--root", str(tmp_path / "결과")], env=_env(tmp_path / "prefect"),
                           cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, server = time.monotonic() + 300, None
    while server is None and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.5)
        for child in _children(run.pid):
            args = subprocess.run(["ps", "-o", "args=", "-p", str(child)], check=False, capture_output=True, text=True).stdout
            server = child if "uvicorn" in args else server
    assert server is not None, "the run never started its server"
    run.send_signal(signal.SIGKILL)
    run.wait()
    deadline = time.monotonic() + 15
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.2)
    orphan = _alive(server)
    if orphan:
        os.kill(server, signal.SIGKILL)
    assert not orphan, "Prefect's temporary server outlived the killed run"


_FAKE_SERVER = [sys.executable, "-c", "import time; time.sleep(120)", "prefect.server.api.server:create_app"]
_SPAWN_THEN_DIE = f"""
import os, signal, subprocess
from kositp.cli.prefect_server import watched
outside = subprocess.Popen({_FAKE_SERVER!r}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
with watched():
    inside = subprocess.Popen({_FAKE_SERVER!r}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(inside.pid, outside.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_server_spawned_just_before_the_kill_is_stopped_and_no_other_is(tmp_path):
    """No time passes between the spawn and the kill: a watchdog that polled the run's children missed such a server."""
    run = subprocess.run([sys.executable, "-c", _SPAWN_THEN_DIE], env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=60, check=False)
    inside, outside = (int(pid) for pid in run.stdout.split())
    try:
        deadline = time.monotonic() + 15
        while _alive(inside) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(inside), "the run's server outlived the killed run"
        assert _alive(outside), "a server without the run's token (another run's, say) was stopped"
    finally:
        for pid in (inside, outside):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_server_that_does_not_start_is_one_line_and_exit_1(monkeypatch, tmp_path):
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from typer.testing import CliRunner

    from kositp.cli import app

    def refuse(self, timeout=None):
        raise RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server.\nstderr: ...")

    monkeypatch.setattr(SubprocessASGIServer, "start", refuse)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):  # as on a machine with no server configured
        result = CliRunner().invoke(app, ["run", "--until", "ingest", "--root", str(tmp_path / "결과"), "--json"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (
        "error: the run stopped: ServerStartError: Prefect's temporary server did not start: "
        "Timed out while attempting to connect to ephemeral Prefect API server.")


class _ProxyRecorder(socketserver.ThreadingTCPServer):
    """An HTTP(S) proxy that forwards nothing: it records the first line of each request."""

    daemon_threads = True

    def __init__(self) -> None:
        self.requests: list[str] = []
        recorder = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                recorder.requests.append(self.rfile.readline(1024).decode("latin-1").strip())

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.mark.slow
def test_the_temporary_server_sends_no_telemetry(tmp_path):
    """Offline machines are the norm: the run's server tries no request beyond loopback (Prefect's is telemetry)."""
    import threading

    with _ProxyRecorder() as proxy:
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        address = f"http://127.0.0.1:{proxy.server_address[1]}"
        env = {k: v for k, v in _env(tmp_path / "prefect").items() if k != "PREFECT_SERVER_ANALYTICS_ENABLED"}
        env.update(HTTPS_PROXY=address, HTTP_PROXY=address, NO_PROXY="127.0.0.1,localhost")
        run = subprocess.run([*RUN, "--until", "ingest", "--root", str(tmp_path / "결과")], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=600, check=False)
        proxy.shutdown()
    assert run.returncode == 0, run.stderr[-3000:]
    assert proxy.requests == [], "the run's Prefect server reached for the internet"
    assert "telemetry" not in run.stderr
