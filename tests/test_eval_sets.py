"""The table of evaluation sets: adding one is a loader, a row and a prompt, and every reader follows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kositp.evaluate import prompts as prompt_files
from kositp.evaluate.config import EvaluateConfig
from kositp.evaluate.loaders import Example, _read_rows
from kositp.evaluate.sets import EVAL_SETS, EvalSet
from kositp.reporting import ConsoleReporter

ROWS = [
    ("오늘 서울은 맑고 따뜻하다.", "서울의 오늘 날씨는 화창하다.", "similar"),
    ("회의는 오후 세 시에 시작한다.", "점심 메뉴로 김치찌개를 골랐다.", "different"),
    ("버스가 늦게 와서 지각했다.", "버스가 지연되어 늦게 도착했다.", "similar"),
    ("이 책은 역사를 다룬다.", "강아지가 공원에서 뛰어논다.", "different"),
]


def load_sentence_similarity(folder: Path, labels: dict[str, str]) -> list[Example]:
    """The one loader: a TSV of sentence pairs and a similar/different label."""
    path = folder / "pairs.tsv"
    return [
        Example("sentence_similarity", str(line), f"문장1: {row['sentence1']}\n문장2: {row['sentence2']}", labels[row["label"]])
        for line, row in _read_rows(path, "\t", ("sentence1", "sentence2", "label"))
    ]


@pytest.fixture
def with_a_new_set(tmp_path: Path, monkeypatch) -> Path:
    """The row and the prompt, added the way a contributor would; returns the data folder."""
    row = EvalSet(
        "sentence_similarity", "sentence_similarity", load_sentence_similarity, ("similar", "different"),
        "Korean sentence similarity", "example/korean-sentence-similarity", {"SOLAR 10.7B TaskInstruct": 0.5},
    )
    monkeypatch.setitem(EVAL_SETS, row.name, row)
    prompt_sets = yaml.safe_load(prompt_files.PROMPTS_FILE.read_text(encoding="utf-8"))
    prompt_sets["seed"]["sentence_similarity"] = {
        "system": "다음 두 문장의 뜻이 비슷한지 판단하세요. 비슷하면 '긍정', 다르면 '부정'이라고 답하세요.\n",
        "labels": {"similar": "긍정", "different": "부정"},
    }
    prompt_file = tmp_path / "eval_prompts.yaml"
    prompt_file.write_text(yaml.safe_dump(prompt_sets, allow_unicode=True), encoding="utf-8")
    monkeypatch.setattr(prompt_files, "PROMPTS_FILE", prompt_file)
    data = tmp_path / "eval" / "sentence_similarity"
    data.mkdir(parents=True)
    lines = ["sentence1\tsentence2\tlabel", *("\t".join(r) for r in ROWS)]
    (data / "pairs.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path / "eval"


def test_a_new_set_is_evaluated_reported_and_carded_from_its_row(with_a_new_set, tiny_model_dir, tmp_path):
    from kositp.evaluate.stage import evaluate_to
    from kositp.promote.card import zero_shot_results

    config = EvaluateConfig(data_dir=str(with_a_new_set), sets=["sentence_similarity"], calibration="batch")
    out = tmp_path / "out"
    evaluate_to(out, tiny_model_dir, config, ConsoleReporter(show_progress=False), None, "tiny")
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    figures = metrics["sets"]["sentence_similarity"]
    assert figures["n"] == len(ROWS) and "calibrated" in figures
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| sentence_similarity |" in report and "| 0.5 |" in report  # the row's published figure
    results = zero_shot_results(metrics)
    assert {(r.dataset_name, r.dataset_type) for r in results} == {
        ("Korean sentence similarity", "example/korean-sentence-similarity")
    }


def test_a_set_without_a_row_or_a_prompt_word_is_one_clear_error(with_a_new_set, tiny_model_dir, tmp_path):
    from kositp.evaluate.runner import PromptMismatch
    from kositp.evaluate.stage import evaluate_to

    with pytest.raises(ValueError, match="unknown evaluation set.*sentence_similarty"):
        EvaluateConfig(sets=["sentence_similarty"])
    prompt_sets = yaml.safe_load(prompt_files.PROMPTS_FILE.read_text(encoding="utf-8"))
    del prompt_sets["seed"]["sentence_similarity"]["labels"]["different"]
    prompt_files.PROMPTS_FILE.write_text(yaml.safe_dump(prompt_sets, allow_unicode=True), encoding="utf-8")
    config = EvaluateConfig(data_dir=str(with_a_new_set), sets=["sentence_similarity"])
    with pytest.raises(PromptMismatch, match="'sentence_similarity' gives no label word for its label\\(s\\) different"):
        evaluate_to(tmp_path / "out", tiny_model_dir, config, ConsoleReporter(show_progress=False), None, "tiny")
