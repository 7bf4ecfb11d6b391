"""Tables for the Prefect UI and the data cards: what a cell holds stays in that cell."""

from __future__ import annotations

import re

import pytest

from kositp.reporting import markdown_table

markdown_it = pytest.importorskip("markdown_it")


def _cells(markdown: str) -> list[list[str]]:
    """The table's rows as rendered by a GitHub-flavoured Markdown parser, cell by cell."""
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(markdown)
    return [re.findall(r"<t[hd]>(.*?)</t[hd]>", row, re.DOTALL) for row in re.findall(r"<tr>(.*?)</tr>", html, re.DOTALL)]


def test_pipes_line_breaks_and_backslashes_stay_inside_their_cell():
    rows = [
        {"과제": "감성|분류", "지시문": "첫 줄\n둘째 줄", "경로": r"C:\자료\a|b"},
        {"과제": "요약", "지시문": "한 줄"},
    ]
    assert _cells(markdown_table(rows)) == [
        ["과제", "지시문", "경로"],
        ["감성|분류", "첫 줄<br>둘째 줄", r"C:\자료\a|b"],
        ["요약", "한 줄", ""],
    ]


def test_a_header_with_a_pipe_keeps_the_column_count():
    assert _cells(markdown_table([{"a|b": 1, "c": 2}])) == [["a|b", "c"], ["1", "2"]]


CARD = """---
language: ko
license: other
tags: [kositp, korean]
base_model: 베이스-모델
---
# KOSITP 한국어 지시 모델

LoRA로 학습한 뒤 병합한 모델입니다.

## 사용법

`kositp serve`로 띄웁니다.
"""


@pytest.mark.slow
def test_a_model_card_in_the_prefect_ui_shows_its_metadata_as_a_code_block_not_as_headings(prefect_server):
    from kositp_tasks.reporting import PrefectReporter
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    @flow
    def publish_card() -> None:
        PrefectReporter().markdown("export-model-card", CARD)

    run = publish_card(return_state=True).state_details.flow_run_id
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["export-model-card"]), flow_run_id=ArtifactFilterFlowRunId(any_=[run])))
    shown = artifact.data
    html = markdown_it.MarkdownIt("commonmark").render(shown)
    assert re.findall(r"<h(\d)>(.*?)</h\d>", html, re.DOTALL) == [("1", "KOSITP 한국어 지시 모델"), ("2", "사용법")]
    (block,) = re.findall(r'<pre><code class="language-yaml">(.*?)</code></pre>', html, re.DOTALL)
    assert block.splitlines() == CARD.split("---\n")[1].splitlines()
    assert "LoRA로 학습한 뒤 병합한 모델입니다." in html
