"""Run one method over the loaded sets and collect predictions and metrics.

``choice`` picks the label word with the highest log-likelihood: deterministic, every example
gets a label. Label words differ in length (``중립`` against ``사회적 편견 없음``), and a summed
log-likelihood favours short ones; ``choice_scoring="per_byte"`` divides each label's score by its
UTF-8 length, as lm-eval's ``acc_norm`` does. ``generate`` follows the seed: sample, cut at ``$&%``; an answer that is not exactly
a label word is stored as ``invalid`` (so that ``prediction`` in predictions.parquet yields the
strict macro F1 directly), and the seed's metric (invalid dropped) is reported beside it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from kositp.evaluate.backends import Backend, Sampling
from kositp.evaluate.loaders import Example, load_set
from kositp.evaluate.metrics import INVALID, set_metrics
from kositp.evaluate.prompts import SetPrompt
from kositp.prompt_format import cut_at_stop
from kositp.reporting import ConsoleReporter, Reporter

METHODS = ("choice", "generate")
CHOICE_SCORING = ("sum", "per_byte")


def normalised_scores(scores: Sequence[float], labels: Sequence[str], scoring: str) -> list[float]:
    """Label scores as compared: summed log-likelihoods, or per UTF-8 byte of the label word."""
    if scoring == "sum":
        return list(scores)
    if scoring == "per_byte":
        return [score / len(label.encode("utf-8")) for score, label in zip(scores, labels)]
    raise ValueError(f"unknown choice scoring {scoring!r} ({', '.join(CHOICE_SCORING)})")


def parse_generation(raw: str, labels: Sequence[str]) -> str:
    """The label word the seed would accept from a raw generation, or ``invalid``."""
    answer, _ = cut_at_stop(raw)
    return answer if answer in labels else INVALID


def predict(
    examples: Sequence[Example],
    prompt: SetPrompt,
    backend: Backend,
    method: str,
    sampling: Sampling,
    reporter: Reporter,
    choice_scoring: str = "sum",
) -> pd.DataFrame:
    labels = prompt.label_words
    prompts = [prompt.render(e.text) for e in examples]
    name = examples[0].set if examples else ""
    with reporter.progress(f"{name} ({method}, {backend.name})", len(prompts)) as advance:
        if method == "choice":
            scores = [
                normalised_scores(r, labels, choice_scoring) for r in backend.choose(prompts, labels, advance)
            ]
            raw = [
                labels[max(range(len(labels)), key=row.__getitem__)] if max(row) > float("-inf") else ""
                for row in scores
            ]
            predictions = [r if r else INVALID for r in raw]
            extra = [json.dumps(dict(zip(labels, row)), ensure_ascii=False) for row in scores]
        elif method == "generate":
            raw = backend.generate(prompts, sampling, advance)
            predictions = [parse_generation(r, labels) for r in raw]
            extra = [""] * len(raw)
        else:
            raise ValueError(f"unknown method {method!r} ({', '.join(METHODS)})")
    return pd.DataFrame(
        {
            "set": [e.set for e in examples],
            "id": [e.id for e in examples],
            "gold": [e.gold for e in examples],
            "raw_output": raw,
            "prediction": predictions,
            "label_scores": extra,
        }
    )


def evaluate_sets(
    data_dir: Path,
    sets: Sequence[str],
    prompts: dict[str, SetPrompt],
    backend: Backend,
    method: str,
    *,
    limit: int | None = None,
    nsmc_sample: bool = False,
    sampling: Sampling | None = None,
    seed: int = 0,
    reporter: Reporter | None = None,
    choice_scoring: str = "sum",
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Predictions for every set (one frame) and per-set metrics, keyed by set name."""
    reporter = reporter or ConsoleReporter()
    sampling = sampling or Sampling()
    frames, metrics = [], {}
    for name in sets:
        if name not in prompts:
            raise KeyError(f"no prompt for set {name!r} in the prompt set")
        examples = load_set(
            name, data_dir, prompts[name].labels, limit=limit, nsmc_sample=nsmc_sample, seed=seed
        )
        reporter.info(f"{name}: {len(examples)} examples from {data_dir}")
        frame = predict(examples, prompts[name], backend, method, sampling, reporter, choice_scoring)
        frames.append(frame)
        metrics[name] = {
            "method": method,
            "backend": backend.name,
            **({"choice_scoring": choice_scoring} if method == "choice" else {}),
            **set_metrics(
                frame["gold"].tolist(), frame["prediction"].tolist(), prompts[name].label_words, seed
            ),
        }
        reporter.info(
            f"{name}: macro F1 {metrics[name]['macro_f1']:.4f}, coverage {metrics[name]['coverage']:.1%}, "
            f"seed metric {metrics[name]['seed_macro_f1']:.4f}"
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(), metrics
