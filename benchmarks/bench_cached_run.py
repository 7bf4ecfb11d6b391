"""An all-cached ``kositp run`` against an empty Prefect flow of as many tasks, on one Prefect server.

A nightly run whose inputs did not change should cost little more than Prefect's own bookkeeping:
starting the interpreter, one flow run and eight task runs. Both are timed as whole processes
(imports included), alternating, against the same ``prefect server start``:

- ``kositp run --profile demo --root R``, every stage a cache hit (R is built once first);
- ``python empty_flow.py``: the same flow signature (its parameters are serialized for the API, as
  the pipeline's are) and eight tasks of the stages' names and tags that return at once.

Prints each run's wall and CPU time (user + system, the process and its children; CPU time moves
less than wall time on a shared machine), the medians and their ratios (the goal: at most 1.2).
From the repository root:
``.venv/bin/python benchmarks/bench_cached_run.py [--rounds 7] [--root DIR] [--code CHECKOUT]``
(``--code`` times another checkout's ``kositp run``, e.g. the code before a change, with this
environment's packages).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe

REPO = Path(__file__).resolve().parents[1]
EMPTY_FLOW = '''
from prefect import flow, task

STAGES = ("ingest", "instructions", "reformat", "sft", "dpo", "export", "evaluate", "promote")
GPU = ("sft", "dpo", "export", "evaluate", "promote")


@task
def stage(name: str) -> str:
    return name


@flow(name="empty-pipeline")
def pipeline(
    profile: str = "demo",
    root: str | None = None,
    until: str | None = None,
    only: list[str] | None = None,
    overrides: list[str] | None = None,
    force: list[str] | None = None,
    keep_versions: int | None = None,
) -> list[str]:
    tags = {name: ["kositp", "gpu"] if name in GPU else ["kositp"] for name in STAGES}
    return [stage.with_options(name=name, tags=tags[name])(name) for name in STAGES]


if __name__ == "__main__":
    pipeline(profile="demo")
'''


def wait_for(url: str, timeout_s: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"no Prefect server answered at {url} within {timeout_s:.0f} s")


def timed(command: list[str], env: dict[str, str], cwd: Path = REPO) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system of the process and what it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--root", type=Path, default=None, help="artifact root (built first when empty)")
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout whose kositp run is timed")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="kositp-bench-cached-"))
    root = args.root or scratch / "artifacts"
    flow_file = scratch / "empty_flow.py"
    flow_file.write_text(EMPTY_FLOW, encoding="utf-8")
    port = 4300 + os.getpid() % 500
    env = {
        **os.environ,
        "PREFECT_HOME": str(scratch / "prefect"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PYTHONPATH": str(args.code.resolve()),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/api/health")
        kositp = [sys.executable, "-m", "kositp", "run", "--profile", args.profile, "--root", str(root)]
        print(f"building {root} once ({args.profile}, the code of {args.code})", flush=True)
        timed(kositp, env, args.code)
        empty = [sys.executable, str(flow_file)]
        timed(empty, env)  # the empty flow's first run registers it
        runs: dict[str, list[tuple[float, float]]] = {"kositp run (all cached)": [], "empty 8-task flow": []}
        for round_ in range(args.rounds):
            for name, command, cwd in zip(runs, (kositp, empty), (args.code, REPO)):
                runs[name].append(timed(command, env, cwd))
            print(
                f"round {round_ + 1}: "
                + ", ".join(f"{n} {v[-1][0]:.2f} s wall, {v[-1][1]:.2f} s CPU" for n, v in runs.items()),
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\nmachine: {describe()}")
    medians = {}
    for name, values in runs.items():
        medians[name] = [statistics.median(v[i] for v in values) for i in (0, 1)]
        print(f"{name}: median {medians[name][0]:.2f} s wall, {medians[name][1]:.2f} s CPU ({len(values)} runs)")
    ours, empty_flow = medians["kositp run (all cached)"], medians["empty 8-task flow"]
    print(
        f"ratio: {ours[0] / empty_flow[0]:.2f}x wall, {ours[1] / empty_flow[1]:.2f}x CPU (goal: at most 1.2x)"
    )


if __name__ == "__main__":
    main()
