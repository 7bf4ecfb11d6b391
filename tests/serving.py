"""Test helpers for serving: a real exported model in an artifact store, and servers as subprocesses.

The export is made by the export stage's own :func:`kositp.export.merge.save_merged` from the
tiny model and a random LoRA adapter, so the served folder is what the pipeline publishes (the
seed chat template, the stop-aware generation config, ``kositp_export.json``) without training.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from kositp.serve.vllm_backend import free_port  # noqa: F401 (re-exported with the other helpers)

API_KEY = "test-serve-key-0123456789"
PROFILE = "servetest"


def build_export(base_model: Path, root: Path) -> tuple[str, Path]:
    """Publishes ``export/<version>`` (with ``merged/``) under ``root`` and promotes it; returns both."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kositp.artifacts import ArtifactStore
    from kositp.export.merge import save_merged
    from kositp.promote.record import Promotion, record_decision

    adapter = root.parent / "adapter"
    torch.manual_seed(0)
    lora = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM",
                      init_lora_weights=False)
    get_peft_model(AutoModelForCausalLM.from_pretrained(str(base_model)), lora).save_pretrained(adapter)
    AutoTokenizer.from_pretrained(str(base_model)).save_pretrained(adapter)
    store, version = ArtifactStore(root), "0123456789abcdef"
    with store.build("export", version) as staging:
        save_merged(adapter, staging.path / "merged", "bfloat16", str(base_model))
        store.publish(staging, inputs={}, params={"test": True}, code_version="test")
    store.set_latest("export", PROFILE, version)
    record_decision(root, PROFILE, Promotion(version, "evaluate0000000", {"nsmc": 0.5}, 0.5, {}, "test"), "promoted")
    return version, root / "export" / version / "merged"


def write_profile(folder: Path, root: Path) -> Path:
    path = folder / f"{PROFILE}.yaml"
    path.write_text(f"name: {PROFILE}\nroot: {root}\n", encoding="utf-8")
    return path


@contextmanager
def running(args: list[str], log_path: Path, ready_url: str, env: dict[str, str] | None = None,
            timeout_s: float = 180.0, cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    """A command (a server) in the background until ``ready_url`` answers 200; stopped with SIGTERM."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                   env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    if httpx.get(ready_url, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(args)} did not come up:\n{log_path.read_text()[-4000:]}")
                time.sleep(0.3)
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def kositp(*args: str) -> list[str]:
    return [sys.executable, "-m", "kositp", *args]
