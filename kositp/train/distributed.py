"""Training on more than one device: the stage process launches its ranks with ``accelerate launch``.

A profile that sets ``sft.num_processes > 1`` (or ``dpo.num_processes``) keeps the stage exactly
as it is (same version, same staging folder, same checkpoints, same published adapter); only the
training runs in ``num_processes`` processes, one per GPU (DDP, or FSDP when the model does not
fit one card), or on the CPU with gloo. The stage process:

1. writes the stage's validated parameters and paths to ``_launch/spec.json`` in the staging folder;
2. runs ``accelerate launch ... -m kositp.train.launched_rank spec.json`` in its own process group;
3. streams the ranks' output to the reporter: rank 0's reporter calls arrive as event lines and
   are replayed (tables, images and progress reach the Prefect UI as in a one-process run), any
   other line is logged with its rank;
4. fails with one line naming the failing rank and its error when any rank fails, or returns the
   outcome rank 0 wrote. Only rank 0 writes the adapter, the training log and the report.

Killing the stage process kills the launcher and its ranks with it (:func:`die_with_parent`); the
checkpoints they left in the staging folder are where the next attempt resumes, as in a
one-process run.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from kositp.config import StageConfig
from kositp.errors import PermanentError
from kositp.reporting import Reporter
from kositp.stages import StageContext, StageOutcome

LAUNCH_DIR = "_launch"
SPEC_FILE = "spec.json"
OUTCOME_FILE = "outcome.json"
EVENT_PREFIX = "@kositp-event "
# Set for the launched ranks only: a stage's ``run`` launches when it is absent and trains when present.
SPEC_ENV = "KOSITP_LAUNCH_SPEC"
STAGE_MODULES = {"sft": "kositp.sft.stage", "dpo": "kositp.dpo.stage"}
_TAIL_LINES = 20
_PR_SET_PDEATHSIG = 1
# resolved here, not in a forked child (no dynamic loading between fork and exec)
_PRCTL = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None) if sys.platform == "linux" else None
_MAX_LINE = 4000  # characters of a plain line kept for the log
_MAX_READ = 1 << 20  # bytes read per line at most: an event line (a table) fits, memory stays bounded
# torchrun's --tee prefixes every line of local rank N with "[<role>N]:"
_RANK_PREFIX = re.compile(r"^\[[A-Za-z_]*?(\d+)\]:(.*)$")


class LaunchError(RuntimeError):
    """A launched rank failed (a retry may succeed: an out-of-memory kill, a lost node)."""


class PermanentLaunchError(PermanentError, LaunchError):
    """A launched rank failed with an error no retry fixes, or the launch cannot be set up here."""


class ScaleOutSettings(StageConfig):
    """How many processes train, and how they share the model; part of the training sections.

    Both fields are part of the stage's version: ``num_processes`` multiplies the effective batch
    (``train_batch_size x gradient_accumulation_steps x num_processes``), so it changes the result.
    """

    num_processes: int = Field(
        1,
        ge=1,
        le=64,
        description="training processes: above 1, the stage trains under accelerate launch, one process per GPU "
        "(or CPU processes over gloo); multiplies the effective batch",
    )
    distributed: Literal["ddp", "fsdp"] = Field(
        "ddp",
        description="with num_processes above 1: ddp keeps a whole model per card and splits the batches; fsdp "
        "shards the weights, for a model one card cannot hold (needs load_in_4bit: false)",
    )

    @model_validator(mode="after")
    def _launchable(self) -> ScaleOutSettings:
        if self.num_processes == 1:
            return self
        if getattr(self, "backend", "hf") == "unsloth":
            raise ValueError(
                "num_processes > 1 trains with backend hf (Unsloth trains on one GPU); set backend: hf or auto"
            )
        if self.distributed == "fsdp" and getattr(self, "load_in_4bit", False):
            raise ValueError("distributed: fsdp shards 16-bit weights; set load_in_4bit: false")
        if getattr(self, "device", "auto") not in ("auto", "cpu", "cuda"):
            raise ValueError(
                f"num_processes > 1 takes one card per process: device must be auto, cuda or cpu, not {self.device!r}"
            )
        return self


def launched() -> bool:
    """Whether this process is one of the ranks of a launched stage."""
    return SPEC_ENV in os.environ


def is_main_process() -> bool:
    """Rank 0 of a launched stage, or any process that was not launched."""
    return not launched() or int(os.environ.get("RANK", "0")) == 0


def should_launch(config: ScaleOutSettings) -> bool:
    return config.num_processes > 1 and not launched()


def launch(ctx: StageContext, stage: str, config: ScaleOutSettings) -> StageOutcome:
    """Run ``stage`` in ``config.num_processes`` ranks and return the outcome rank 0 reports."""
    from kositp.train.common import resolve_device

    device = resolve_device(getattr(config, "device", "auto"))
    on_gpu = device.startswith("cuda")
    if on_gpu:
        import torch

        visible = torch.cuda.device_count()
        if visible < config.num_processes:
            raise PermanentLaunchError(
                f"{stage}.num_processes={config.num_processes} needs as many GPUs; this worker sees {visible}"
            )
    launch_dir = ctx.out_dir / LAUNCH_DIR
    launch_dir.mkdir(parents=True, exist_ok=True)
    # an earlier attempt's outcome or errors must not be read as this one's
    for stale in launch_dir.iterdir():
        stale.unlink()
    spec_path = launch_dir / SPEC_FILE
    spec_path.write_text(json.dumps(_spec(ctx, stage, on_gpu), ensure_ascii=False), encoding="utf-8")
    ctx.reporter.info(
        f"{stage}: launching {config.num_processes} processes ({config.distributed} on {'GPUs' if on_gpu else 'the CPU, gloo'})"
    )
    returncode, tails = _run_streaming(
        launch_command(config, spec_path, on_gpu), _launch_env(spec_path), ctx.reporter
    )
    if returncode != 0:
        raise _failure(stage, launch_dir, returncode, tails, config.num_processes)
    outcome_path = launch_dir / OUTCOME_FILE
    if not outcome_path.is_file():
        raise LaunchError(f"{stage}: the launched ranks exited 0 but rank 0 wrote no {outcome_path}")
    outcome = json.loads(outcome_path.read_text(encoding="utf-8"))
    report = {**outcome["report"], "num_processes": config.num_processes, "distributed": config.distributed}
    return StageOutcome(rows=outcome["rows"], report=report, exclude=(*outcome["exclude"], LAUNCH_DIR))


def launch_command(config: ScaleOutSettings, spec_path: Path, on_gpu: bool) -> list[str]:
    """``accelerate launch`` for one machine: DDP through torchrun (gloo on the CPU), or FSDP on GPUs."""
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--num_processes", str(config.num_processes),
        "--num_machines", "1",
        "--mixed_precision", "no",  # the trainer's own bf16/fp16 setting decides
        "--dynamo_backend", "no",
        "--main_process_port", "0",  # a free port, so concurrent launches on one machine do not collide
        "--max_restarts", "0",  # a failed rank fails the stage; the orchestrator's retry resumes it
        "--tee", "3",  # every line prefixed with its rank
    ]  # fmt: skip
    if config.distributed == "fsdp":
        if not on_gpu:
            raise PermanentLaunchError("distributed: fsdp needs CUDA GPUs; use ddp on the CPU")
        command += [
            "--use_fsdp",
            "--fsdp_version", "2",
            "--fsdp_auto_wrap_policy", "TRANSFORMER_BASED_WRAP",
            "--fsdp_state_dict_type", "FULL_STATE_DICT",
            "--fsdp_cpu_ram_efficient_loading", "false",
        ]  # fmt: skip
    else:
        command.append("--multi_gpu")  # torchrun's multi-process launcher; on a CPU the ranks use gloo
    return [*command, "--module", "kositp.train.launched_rank", str(spec_path)]


def main_process_only(*callbacks: Any) -> list[Any]:
    """``callbacks`` in the process that writes the outputs, none in the other ranks (a file has one writer)."""
    return list(callbacks) if is_main_process() else []


def save_adapter(trainer: Any, adapter_dir: Path, **save_kwargs: Any) -> bool:
    """Save the trained adapter; True in the one process that goes on to write the outputs.

    Under FSDP every rank holds a shard, so every rank takes part in gathering the weights and
    rank 0 writes them; under DDP every rank holds the same weights and rank 0 writes its own.
    """
    if not launched():
        trainer.model.save_pretrained(adapter_dir, **save_kwargs)
        return True
    if trainer.is_fsdp_enabled:
        state_dict = trainer.accelerator.get_state_dict(trainer.model)
        if trainer.is_world_process_zero():
            model = trainer.accelerator.unwrap_model(trainer.model)
            model.save_pretrained(adapter_dir, state_dict=state_dict, **save_kwargs)
    elif trainer.is_world_process_zero():
        trainer.model.save_pretrained(adapter_dir, **save_kwargs)
    return bool(trainer.is_world_process_zero())


@contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the block first and the other ranks wait for it (a no-op when not launched)."""
    if not launched():
        yield
        return
    from accelerate import PartialState

    with PartialState().main_process_first():
        yield


def _spec(ctx: StageContext, stage: str, on_gpu: bool) -> dict[str, Any]:
    """What a rank needs to rebuild the stage context; the device and backend are the ranks' own.

    ``auto`` backends become ``hf`` (Unsloth trains on one GPU) and ``device`` becomes ``cuda``
    (each rank takes ``cuda:<local rank>``) or ``cpu``. The manifest keeps the profile's values.
    """
    params = dict(ctx.params)
    params["backend"] = "hf"
    params["device"] = "cuda" if on_gpu else "cpu"
    return {
        "stage": stage,
        "out_dir": str(ctx.out_dir),
        "params": params,
        "inputs": {
            name: {"stage": a.stage, "version": a.version, "path": str(a.path)}
            for name, a in ctx.inputs.items()
        },
        "resumed": ctx.resumed,
        "profile_name": ctx.profile_name,
        "cache_dir": str(ctx.cache_dir) if ctx.cache_dir else None,
    }


def _launch_env(spec_path: Path) -> dict[str, str]:
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env[SPEC_ENV] = str(spec_path)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env["TQDM_DISABLE"] = "1"  # progress reaches the reporter as events, not as carriage-return bars
    return env


def _run_streaming(
    command: list[str], env: Mapping[str, str], reporter: Reporter
) -> tuple[int, dict[str, deque[str]]]:
    """Run the launcher in its own process group, replaying its output; kill the group if we stop early."""
    tails: dict[str, deque[str]] = {}
    replay = _Replay(reporter)
    process = subprocess.Popen(
        command,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent,  # noqa: PLW1509 - one prctl call, resolved before the fork
    )
    try:
        assert process.stdout is not None
        for raw in iter(lambda: process.stdout.readline(_MAX_READ), b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            match = _RANK_PREFIX.match(line)
            rank, text = (match.group(1), match.group(2)) if match else ("launcher", line)
            if text.startswith(EVENT_PREFIX) and rank == "0":
                replay.event(text[len(EVENT_PREFIX) :])
                continue
            text = text[:_MAX_LINE]
            if text.strip():
                tails.setdefault(rank, deque(maxlen=_TAIL_LINES)).append(text)
                reporter.info(f"rank {rank}: {text}" if match else text)
        return process.wait(), tails
    finally:
        replay.close()
        if process.poll() is None:
            _kill_group(process)


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux; elsewhere a no-op).

    torchrun starts every rank in a session of its own, so killing the stage process or the
    launcher's process group would leave the ranks training into the staging folder, where the
    next attempt resumes. The launcher (before it execs) and every rank call this, so the whole
    tree dies with the stage process. The kernel watches the thread that started the process;
    the stage's thread waits for the launcher, so it outlives it.
    """
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def _failure(
    stage: str, launch_dir: Path, returncode: int, tails: Mapping[str, deque[str]], ranks: int
) -> LaunchError:
    """One line: the first rank that failed and its error, or the ranks' last lines when none wrote one.

    The earliest error is the cause: the other ranks fail after it (a closed connection) or are stopped.
    """
    errors = []
    for path in sorted(launch_dir.glob("error-rank*.json")):
        try:
            errors.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            continue
    if errors:
        first = min(errors, key=lambda e: e.get("time", 0.0))
        cls = PermanentLaunchError if first.get("permanent") else LaunchError
        return cls(f"{stage} failed on rank {first.get('rank')} of {ranks}: {first.get('error')}")
    last = " | ".join(line.strip() for rank in sorted(tails) for line in list(tails[rank])[-3:])
    return LaunchError(
        f"{stage}: the launched ranks exited with code {returncode} (killed?); last lines: {last or 'none'}"
    )


class _Replay:
    """Rank 0's reporter calls, decoded from event lines and made on the stage's reporter."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.bars: dict[str, tuple[Any, Any]] = {}

    def event(self, payload: str) -> None:
        try:
            event = json.loads(payload)
            kind = event.pop("kind")
        except (json.JSONDecodeError, KeyError, AttributeError):
            self.reporter.info(f"rank 0: unreadable event {payload[:200]!r}")
            return
        if kind == "progress_open":
            bar = self.reporter.progress(event["description"], event["total"])
            self.bars[event["id"]] = (bar, bar.__enter__())
        elif kind == "progress_advance" and event["id"] in self.bars:
            self.bars[event["id"]][1](event["n"])
        elif kind == "progress_close" and event["id"] in self.bars:
            self.bars.pop(event["id"])[0].__exit__(None, None, None)
        elif kind == "image":
            self.reporter.image(event["key"], Path(event["path"]), event.get("description", ""))
        elif kind in ("info", "warning", "table", "markdown"):
            getattr(self.reporter, kind)(**event)

    def close(self) -> None:
        for bar, _ in self.bars.values():
            bar.__exit__(None, None, None)
        self.bars.clear()
