"""Offline bank figures: validation time and diversity (pairwise ROUGE-L) per task.

Run: ``python benchmarks/instruction_bank.py``. Prints machine info, the time to validate the
whole bank (every rule, near-duplicate check included), and per task the count, mean and max
pairwise ROUGE-L and the share of each register ending.
"""

from __future__ import annotations

import itertools
import os
import platform
import statistics
import time

from kositp.catalog import SUPERNI_TASKS
from kositp.instructions.offline import load_offline
from kositp.instructions.validate import TaskBank, rouge_l, tokens

REGISTERS = {"하시오": ("하시오", "하시오."), "하십시오": ("하십시오.",), "해요체": ("세요.", "해주세요.", "바랍니다."),
             "반말": ("해 줘.", "해 줄래?")}


def main() -> None:
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpus, {platform.platform()}")
    banks = {t.id: load_offline(t.id) for t in SUPERNI_TASKS}
    start = time.perf_counter()
    for task_id, texts in banks.items():
        bank = TaskBank(task_id)
        assert bank.extend(texts) == len(texts), bank.rejected
    elapsed = time.perf_counter() - start
    total = sum(map(len, banks.values()))
    print(f"validated {total} instructions in {elapsed:.2f}s ({total / elapsed:.0f}/s)")
    print(f"{'task':46} {'n':>4} {'mean RL':>8} {'max RL':>7} {'chars':>6}")
    for task_id, texts in banks.items():
        toks = [tokens(t) for t in texts]
        scores = [rouge_l(a, b) for a, b in itertools.combinations(toks, 2)]
        print(f"{task_id:46} {len(texts):4d} {statistics.mean(scores):8.3f} {max(scores):7.3f} "
              f"{statistics.mean(map(len, texts)):6.1f}")
    endings = {name: sum(t.endswith(ends) for texts in banks.values() for t in texts) for name, ends in REGISTERS.items()}
    print("register endings:", ", ".join(f"{k}={v}" for k, v in endings.items()))


if __name__ == "__main__":
    main()
