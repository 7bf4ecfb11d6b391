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
