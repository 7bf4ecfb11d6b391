"""Preference pairs for DPO: a user's JSONL file, on-policy pairs from the SFT model, or both.

On-policy pairs teach the model away from what it actually does wrong: the SFT model answers a
sample of training prompts greedily in the seed format, and where its answer differs materially
from the reference (character-level similarity below a threshold) the reference is ``chosen`` and
the model's answer ``rejected``. Answers close to the reference carry no preference signal and are
counted, not used.
"""

from __future__ import annotations

import difflib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kositp.models.causal_lm import generate_text
from kositp.models.prompt_format import cut_at_stop, format_prompt

if TYPE_CHECKING:
    import pandas as pd

PAIR_FIELDS = ("prompt", "chosen", "rejected")
PAIR_COLUMNS = ["prompt", "chosen", "rejected", "source", "similarity"]


class PreferenceError(ValueError):
    pass


@dataclass(frozen=True)
class PreferencePair:
    prompt: str
    chosen: str
    rejected: str
    source: str
    similarity: float | None = None


def read_user_pairs(path: Path) -> tuple[list[PreferencePair], list[str]]:
    """Valid pairs and one problem line per bad line (``file line N: why``); bad lines are skipped."""
    if not path.is_file():
        raise PreferenceError(f"preference file not found: {path}")
    pairs: list[PreferencePair] = []
    problems: list[str] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            problem = _pair_problem(line)
            if problem:
                problems.append(f"{path.name} line {number}: {problem}")
                continue
            row = json.loads(line)
            pairs.append(PreferencePair(row["prompt"], row["chosen"], row["rejected"], source="user"))
    return pairs, problems


def _pair_problem(line: str) -> str | None:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg})"
    if not isinstance(row, dict):
        return f"expected a JSON object, got {type(row).__name__}"
    for name in PAIR_FIELDS:
        value = row.get(name)
        if not isinstance(value, str) or not value.strip():
            return f"field {name!r} is missing or not a non-empty string"
    if row["chosen"].strip() == row["rejected"].strip():
        return "'chosen' and 'rejected' are identical"
    return None


def sample_training_prompts(reformat_dir: Path, count: int, seed: int, cache_dir: Path) -> pd.DataFrame:
    """``count`` (prompt, output, task) rows drawn reproducibly from every training shard.

    Sampled by index from the memory-mapped shards: only the drawn rows are read into Python.
    """
    import pandas as pd

    from kositp.train.shard_data import load_split

    rows = load_split(reformat_dir, "train", cache_dir)
    if rows.dataset is None:
        raise PreferenceError(f"{reformat_dir}: no shards/*/train.parquet rows to draw on-policy prompts from")
    picked = sorted(random.Random(seed).sample(range(len(rows)), min(count, len(rows))))
    drawn = rows.dataset.select(picked)
    return pd.DataFrame(
        {"prompt": drawn["prompt"], "output": drawn["output"], "task": [rows.task_of(i) for i in picked]}
    )


def generate_answers(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    max_new_tokens: int,
    batch_size: int,
    advance: Callable[[int], None] = lambda n: None,
) -> list[str]:
    """Greedy answers in the seed format, cut at the stop marker (what a server would return)."""
    texts = generate_text(
        model,
        tokenizer,
        [format_prompt(p) for p in prompts],
        max_new_tokens,
        batch_size=batch_size,
        advance=advance,
    )
    return [cut_at_stop(text)[0] for text in texts]


def similarity(answer: str, reference: str) -> float:
    """Character-level similarity in [0, 1] (difflib ratio); Korean needs no word segmentation here."""
    return difflib.SequenceMatcher(None, answer, reference, autojunk=False).ratio()


def on_policy_pairs(
    samples: pd.DataFrame, answers: Sequence[str], threshold: float
) -> tuple[list[PreferencePair], dict[str, int]]:
    """Pairs where the model's answer is below ``threshold`` similar to the reference, and counts."""
    pairs = []
    close = 0
    for prompt, reference, answer in zip(samples["prompt"], samples["output"], answers):
        score = similarity(answer, reference)
        if score >= threshold:
            close += 1
            continue
        pairs.append(
            PreferencePair(prompt, reference, answer, source="on_policy", similarity=round(score, 4))
        )
    return pairs, {
        "on_policy_sampled": len(answers),
        "on_policy_close_to_reference": close,
        "on_policy_pairs": len(pairs),
    }


def write_pairs(pairs: Sequence[PreferencePair], path: Path) -> None:
    import pandas as pd

    pd.DataFrame([asdict(p) for p in pairs], columns=PAIR_COLUMNS).to_parquet(path, index=False)


def examples(pairs: Sequence[PreferencePair], count: int = 3, width: int = 200) -> list[dict[str, Any]]:
    """A few pairs per source, shortened, for the manifest report."""
    picked = []
    for source in dict.fromkeys(p.source for p in pairs):
        picked += [p for p in pairs if p.source == source][:count]
    return [
        {key: (value[:width] if isinstance(value, str) else value) for key, value in asdict(p).items()}
        for p in picked
    ]


def read_pairs(path: Path) -> list[PreferencePair]:
    """Pairs written by :func:`write_pairs` (a resumed DPO run reuses them)."""
    import pandas as pd

    frame = pd.read_parquet(path)
    return [
        PreferencePair(
            r.prompt, r.chosen, r.rejected, r.source, None if pd.isna(r.similarity) else float(r.similarity)
        )
        for r in frame.itertuples(index=False)
    ]
