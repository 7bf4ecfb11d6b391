"""Debian's chromium for the browser tests: Playwright's own browser download is not reachable here."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")


def ensure_chromium() -> tuple[Path | None, str]:
    """``(path, "")`` once chromium is installed, installing it with apt when missing; else ``(None, why)``.

    Only a machine without apt (or without root for it) yields no browser: there the reason says so,
    and the caller skips. A failing apt run where apt exists is an error the caller reports as such.
    """
    if CHROMIUM.is_file():
        return CHROMIUM, ""
    if shutil.which("apt-get") is None:
        return None, "chromium is not installed and apt-get is not available to install it"
    if os.geteuid() != 0:
        return None, "chromium is not installed and installing it with apt-get needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}): {done.stderr[-2000:]}")
    if not CHROMIUM.is_file():
        raise RuntimeError(f"apt-get installed chromium but {CHROMIUM} is missing")
    return CHROMIUM, ""
