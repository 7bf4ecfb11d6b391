"""The evaluation sets: one row each, read by the loaders, the profile section, the report and the card.

Adding a set is one loader (:mod:`kositp.evaluate.loaders`), one row here and one prompt per prompt
set (``prompts/eval_prompts.yaml``: the system prompt and the label word of each raw label).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kositp.errors import PermanentError
from kositp.evaluate import loaders
from kositp.evaluate.loaders import EvalDataError, Example


@dataclass(frozen=True)
class EvalSet:
    """One zero-shot set: where it lives, how it loads, what the seed published for it."""

    name: str
    folder: str  # under evaluate.data_dir, as the set is distributed
    load: Callable[[Path, dict[str, str]], list[Example]]  # (its folder, raw label -> label word)
    raw_labels: tuple[str, ...]  # the labels the loader maps; a prompt names a word for each
    title: str  # for reports and model cards
    hub_id: str  # the Hub dataset, for the model card's model-index
    published: Mapping[str, float] = field(default_factory=dict)  # the seed's zero-shot macro F1 by model
    seed_sample: Callable[[list[Example]], list[Example]] | None = None  # the seed's subsample, if it took one


# The seed README's zero-shot macro F1 (README.ko.md; ../shared/datasets/README.md), by model.
SOLAR, MISTRAL = "SOLAR 10.7B TaskInstruct", "Mistral 7B TaskInstruct"

EVAL_SETS: dict[str, EvalSet] = {
    row.name: row
    for row in (
        EvalSet("kornli", "kornli", loaders.load_kornli, ("entailment", "neutral", "contradiction"), "KorNLI",
                "kakaobrain/kor_nli", {SOLAR: 0.44, MISTRAL: 0.31}),
        EvalSet("question_pair", "kor_question_pair", loaders.load_question_pair, ("0", "1"),
                "Korean question pair", "songys/Question_pair", {SOLAR: 0.68, MISTRAL: 0.51}),
        EvalSet("hate_speech", "korean_hate_speech", loaders.load_hate_speech, ("present", "absent"),
                "Korean hate speech", "kocohub/korean-hate-speech", {SOLAR: 0.63, MISTRAL: 0.41}),
        EvalSet("nsmc", "nsmc", loaders.load_nsmc, ("1", "0"), "NSMC", "e9t/nsmc", {SOLAR: 0.76, MISTRAL: 0.77},
                loaders.nsmc_seed_sample),
    )
}


class UnknownEvalSet(PermanentError, ValueError):
    pass


def eval_set(name: str) -> EvalSet:
    try:
        return EVAL_SETS[name]
    except KeyError:
        raise UnknownEvalSet(f"unknown evaluation set {name!r} (known: {', '.join(EVAL_SETS)})") from None


def published_models() -> list[str]:
    """The models the seed published figures for, in the order they first appear."""
    return list(dict.fromkeys(model for row in EVAL_SETS.values() for model in row.published))


def load_set(
    name: str,
    data_dir: Path,
    labels: dict[str, str],
    limit: int | None = None,
    seed_sample: bool = False,
    seed: int = 0,
) -> list[Example]:
    """One set from its folder under ``data_dir``; ``seed_sample`` takes the seed's subsample where it
    used one; ``limit`` keeps a seeded random subset (so a limited run is not just the first rows)."""
    row = eval_set(name)
    folder = Path(data_dir) / row.folder
    if not folder.is_dir():
        raise EvalDataError(f"{folder}: folder for set {name!r} not found under {data_dir}")
    examples = row.load(folder, labels)
    if seed_sample and row.seed_sample is not None:
        examples = row.seed_sample(examples)
    if not examples:
        raise EvalDataError(f"{folder}: no examples for set {name!r} (header only?)")
    if limit is not None and len(examples) > limit:
        picked = sorted(random.Random(seed).sample(range(len(examples)), limit))
        examples = [examples[i] for i in picked]
    return examples
