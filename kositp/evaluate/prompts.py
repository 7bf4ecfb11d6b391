"""Evaluation prompt sets from ``prompts/eval_prompts.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from kositp.models.prompt_format import format_prompt

PROMPTS_FILE = Path(__file__).resolve().parents[2] / "prompts" / "eval_prompts.yaml"
DEFAULT_PROMPT_SET = "seed"


@dataclass(frozen=True)
class SetPrompt:
    system: str
    labels: dict[str, str]

    @property
    def label_words(self) -> list[str]:
        return list(dict.fromkeys(self.labels.values()))

    def render(self, example_text: str) -> str:
        return format_prompt(f"{self.system}{example_text}")


def load_prompt_set(name: str = DEFAULT_PROMPT_SET, path: Path | None = None) -> dict[str, SetPrompt]:
    """The prompt set ``name`` of ``path`` (default: the repository's ``prompts/eval_prompts.yaml``)."""
    path = path or PROMPTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: evaluation prompts file not found")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if name not in data:
        raise KeyError(f"{path}: no prompt set {name!r} (have: {', '.join(data)})")
    try:
        return {
            set_name: SetPrompt(
                system=str(entry["system"]), labels={str(k): str(v) for k, v in entry["labels"].items()}
            )
            for set_name, entry in data[name].items()
        }
    except (KeyError, AttributeError, TypeError) as exc:
        raise ValueError(f"{path}: prompt set {name!r} needs 'system' and 'labels' per set ({exc})") from exc
