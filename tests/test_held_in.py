"""Held-in scores on the trained tasks' validation split: the metrics, and planted models they separate."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

from kositp.evaluate import held_in
from kositp.evaluate.text_metrics import char_f1, exact_match, lcs_length, rouge_l
from kositp.models.prompt_format import format_prompt
from kositp.reformat.builders import UNANSWERABLE, options_line
from kositp.reporting import ConsoleReporter

QUIET = ConsoleReporter(show_progress=False)


def test_span_metrics_read_korean_answers_by_character():
    assert exact_match("서울특별시.", " 서울특별시") == 1.0
    assert exact_match("서울", "서울특별시") == 0.0
    # a particle more is a near miss, not a miss: 4 of 5 characters shared
    assert char_f1("서울에서", "서울특별시") == pytest.approx(2 * (2 / 4) * (2 / 5) / (2 / 4 + 2 / 5))
    assert char_f1("", "서울") == 0.0 and char_f1("서울", "서울") == 1.0


def test_rouge_l_counts_korean_characters_in_order():
    reference = "정부가 청년 주택 공급을 늘린다."
    assert rouge_l(reference, reference) == 1.0
    assert rouge_l("", reference) == 0.0
    shuffled = "늘린다 공급을 주택 청년 정부가"
    assert 0 < rouge_l(shuffled, reference) < char_f1(shuffled, reference) == 1.0  # same characters, other order
    assert rouge_l("The government builds houses.", reference) == 0.0


def _lcs_table(a: str, b: str) -> int:
    previous = [0] * (len(b) + 1)
    for char in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if char == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def test_bit_parallel_lcs_equals_the_dynamic_programming_table():
    rng = random.Random(5)
    alphabet = "가나다라마바 사"
    for _ in range(300):
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert lcs_length(a, b) == _lcs_table(a, b), (a, b)


def test_options_come_back_from_the_line_reformat_writes():
    options = ["4,273천원", "5,000천원", "홍보전산과"]
    prompt = f"예산은 얼마인가요?\n\n{options_line(options)}"
    assert held_in.options_from_prompt(prompt) == options
    assert held_in.options_from_prompt("보기가 없는 질문") == []


ROWS = {
    "task008_extractive_qa_yes_no": [
        ("청년 월세 지원은 12개월간 이어진다.\n\n지원 기간은 12개월인가요?", "예"),
        ("신청은 행정복지센터에서 받는다.\n\n온라인 신청은 안 되나요?", "아니요"),
    ],
    "task007_extractive_qa_objective": [
        (f"지원은 최대 월 20만 원이다.\n\n한 달 최대 지원액은?\n\n{options_line(['10만 원', '20만 원', '30만 원'])}", "20만 원"),
    ],
    "task001_answerability_classification": [
        ("서울대공원은 과천에 있다.\n\n서울대공원은 어디에 있나요?", "과천"),
        ("서울대공원은 과천에 있다.\n\n입장료는 얼마인가요?", UNANSWERABLE),
    ],
    "task009_extractive_qa_short_answer": [("영하 30도까지 떨어졌다.\n\n최저 기온은?", "영하 30도")],
    "task002_summarization": [("정부는 청년 주택 공급을 늘리고 전세 대출 한도를 높이기로 했다.", "청년 주택 공급을 늘린다.")],
    "supplementary_kor_alpaca_demo": [("높임말을 찾으세요.", "진지")],
}


@pytest.fixture
def reformat_dir(tmp_path: Path) -> Path:
    for task, rows in ROWS.items():
        folder = tmp_path / "shards" / task
        folder.mkdir(parents=True)
        frame = pd.DataFrame(
            {"id": [f"{task}-{i}" for i in range(len(rows))], "prompt": [p for p, _ in rows], "output": [o for _, o in rows]}
        )
        frame.to_parquet(folder / "validation.parquet")
    return tmp_path


class PlantedModel:
    """``copy``: answers every example with its reference; ``nothing``: answers nothing and has no
    preference among options (the first one wins)."""

    name = "planted"

    def __init__(self, kind: str):
        self.kind = kind
        self.references = {format_prompt(p): o for rows in ROWS.values() for p, o in rows}

    def generate(self, prompts, sampling, advance):
        assert sampling.temperature == 0.0, "held-in answers are greedy"
        advance(len(prompts))
        return [f"{self.references[p]}$&%뒤에 붙은 말" if self.kind == "copy" else "" for p in prompts]

    def choose(self, prompts, labels, advance):
        advance(len(prompts))
        return [[0.0 if self.kind == "copy" and label == self.references[p] else -5.0 for label in labels] for p in prompts]


def test_every_metric_separates_a_model_that_copies_the_reference_from_one_that_answers_nothing(reformat_dir):
    examples = held_in.load_validation(reformat_dir, limit=10)
    assert {e.task.id for e in examples} == set(ROWS) - {"supplementary_kor_alpaca_demo"}
    copy = held_in.answer(examples, PlantedModel("copy"), 32, QUIET, "tuned")
    nothing = held_in.answer(examples, PlantedModel("nothing"), 32, QUIET, "base")
    summary = held_in.summarize(copy, nothing, {"limit": 10}, seed=0)
    tuned, base = summary["models"]["tuned"]["tasks"], summary["models"]["base"]["tasks"]
    for task in ("task008_extractive_qa_yes_no", "task007_extractive_qa_objective", "task001_answerability_classification"):
        assert tuned[task]["accuracy"] == tuned[task]["macro_f1"] == 1.0
        assert base[task]["accuracy"] < 1.0 and base[task]["macro_f1"] < 1.0, task
    span = "task009_extractive_qa_short_answer"
    assert (tuned[span]["exact_match"], tuned[span]["char_f1"]) == (1.0, 1.0)
    assert (base[span]["exact_match"], base[span]["char_f1"]) == (0.0, 0.0)
    assert tuned["task002_summarization"]["rouge_l"] == 1.0 and base["task002_summarization"]["rouge_l"] == 0.0
    for category, difference in summary["difference"].items():
        assert difference["difference"] > 0 and difference["ci95"][0] > 0, category


def test_a_choice_example_whose_options_do_not_parse_back_is_counted_not_scored(reformat_dir):
    bad = reformat_dir / "shards" / "task007_extractive_qa_objective" / "validation.parquet"
    frame = pd.read_parquet(bad).assign(output="40만 원")  # not among the 보기 line's options
    frame.to_parquet(bad)
    examples = held_in.load_validation(reformat_dir, limit=10)
    rows = held_in.answer(examples, PlantedModel("nothing"), 8, QUIET, "tuned")
    figures = held_in.task_metrics(rows)["task007_extractive_qa_objective"]
    assert figures["n"] == 0 and figures["unscored"] == 1 and figures["score"] is None


def test_the_sample_per_task_is_seeded_and_bounded(reformat_dir):
    first = held_in.load_validation(reformat_dir, limit=1, seed=3)
    assert [e.id for e in first] == [e.id for e in held_in.load_validation(reformat_dir, limit=1, seed=3)]
    assert len(first) == len(ROWS) - 1
    with pytest.raises(held_in.HeldInError, match="no shards folder"):
        held_in.load_validation(reformat_dir / "nowhere", limit=1)
