"""The machine description every benchmark prints before its figures."""

from __future__ import annotations

import os
import platform


def describe() -> str:
    import psutil
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{platform.node()} | {platform.processor() or platform.machine()} | {os.cpu_count()} cores | "
        f"{memory:.0f} GiB | {gpu} | python {platform.python_version()} | torch {torch.__version__}"
    )


if __name__ == "__main__":
    print(describe())
