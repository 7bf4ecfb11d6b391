"""Hand-made normalized records and an instruction bank shaped like the real ones (for reformat tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from kositp.catalog import SUPERNI_TASKS
from kositp.records import RECORD_FIELDS, RECORD_SCHEMA

LAW_TEXT = (
    "형법 제337조의 강도상해죄는 재물강취의 기수와 미수를 불문하고 성립한다. "
    "범인이 강도범행의 기회에 사람을 상해하면 이 죄가 된다. "
    "피해자가 입은 상처가 경미하더라도 상해로 볼 수 있다. "
    "법원은 이러한 법리에 따라 피고인의 상고를 기각하였다."
)
LAW_SUMMARY = "강도상해죄는 재물강취의 기수와 미수를 불문하고 강도범행의 기회에 사람을 상해하면 성립하며 경미한 상처도 상해이다."
MRC_TEXT = (
    "보호수용제도는 구 사회보호법상 보호감호제도와 유사한 성격의 것이다. "
    "형법개정안은 징역형 집행 종료 6개월 전에 재범의 위험성을 다시 판단하도록 하고 있다. "
    "보호수용 필요성이 없는 경우 보호수용의 집행을 유예할 수 있다."
)
TABLE = "<table><tbody><tr><td>연도</td><td>시간당 임금</td></tr><tr><td>2013</td><td>14,075</td></tr><tr><td>2014</td><td>14,587</td></tr></tbody></table>"


def record(record_id: str, kind: str, doc_id: str | None = None, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {name: None for name in RECORD_FIELDS}
    row.update(sentences=[], answers=[], options=[], keywords=[], is_impossible=False)
    row.update(
        record_id=record_id,
        kind=kind,
        doc_id=doc_id or f"doc-{record_id}",
        source_dataset=f"test_{kind}",
        source_file=f"{kind}.json",
        location=f"{kind}.json#/{record_id}",
        format="test",
    )
    row.update(fields)
    return row


def sample_records(doc_prefix: str = "") -> list[dict[str, Any]]:
    """One record per shape the builders consume, covering all 22 tasks."""
    d = doc_prefix
    return [
        record(
            f"{d}mrc-span",
            "mrc",
            f"{d}doc-mrc",
            qa_type="span",
            text=MRC_TEXT,
            title="보호수용제도",
            question="보호수용의 집행을 유예할 수 있는 경우는 언제야",
            answers=["보호수용 필요성이 없는 경우"],
        ),
        record(f"{d}passage", "text", f"{d}doc-mrc", title="보호수용제도", text=MRC_TEXT),
        record(
            f"{d}mrc-none",
            "mrc",
            f"{d}doc-mrc",
            qa_type="unanswerable",
            text=MRC_TEXT,
            is_impossible=True,
            question="보호수용 시설은 몇 곳에 설치되어 있어",
        ),
        record(
            f"{d}mrc-long",
            "mrc",
            f"{d}doc-mrc2",
            qa_type="long",
            text=MRC_TEXT,
            question="형법개정안은 재범의 위험성을 언제 다시 판단하도록 하고 있나?",
            answers=["형법개정안은 징역형 집행 종료 6개월 전에 재범의 위험성을 다시 판단하도록 하고 있다."],
        ),
        record(
            f"{d}mrc-mc",
            "mrc",
            f"{d}doc-mrc3",
            qa_type="multiple_choice",
            text=MRC_TEXT,
            question="보호수용제도와 성격이 유사한 제도는 뭐지",
            answers=["보호감호제도"],
            options=["보호감호제도", "집행유예제도", "가석방제도", "보호관찰제도"],
            clue="보호수용제도는 구 사회보호법상 보호감호제도와 유사한 성격의 것이다.",
        ),
        record(
            f"{d}mrc-yn",
            "mrc",
            f"{d}doc-mrc3",
            qa_type="yes_no",
            text=MRC_TEXT,
            question="보호수용 필요성이 없으면 집행을 유예할 수 있는 거지",
            answers=["예"],
            clue="보호수용 필요성이 없는 경우 보호수용의 집행을 유예할 수 있다.",
        ),
        record(
            f"{d}sum-law",
            "summary",
            f"{d}doc-law",
            title="강도상해죄의 성립 요건",
            text=LAW_TEXT,
            sentences=[s + "." for s in LAW_TEXT.rstrip(".").split(". ")],
            summary=LAW_SUMMARY,
        ),
        record(
            f"{d}sum-short",
            "summary",
            f"{d}doc-law2",
            title="치상죄 성립",
            text="형법 제337조의 강도상해, 치상죄는 재물강취의 기수와 미수를 불문하고 범인이 강도범행의 기회에 사람을 상해하거나 치상하게 되면 성립하는 것이다.",
            summary="강도범행 중 사람을 다치게 하면 치상죄가 성립한다.",
        ),
        record(
            f"{d}sum-para",
            "summary",
            f"{d}doc-law3",
            title="처분문서의 증명력",
            text="처분문서의 진정성립이 인정되면 합리적인 반증이 없는 한 그 기재내용대로 의사표시의 존재를 인정하여야 한다.",
            summary="처분문서가 진정하게 성립되었다면 반증이 없는 이상 적힌 내용대로 의사표시가 있었다고 보아야 한다.",
        ),
        record(
            f"{d}paper",
            "paper",
            f"{d}doc-paper",
            title="융기 영상의 골격선 추출에 의한 에지 보정",
            text="본 논문에서는 에지 영상의 정보를 잃지 않으며 인접한 에지를 연결하는 에지 보정 알고리듬을 제안하였다. "
            "제안된 알고리듬은 두 단계로 구성되어 있다. 실험 결과는 제안된 방법이 인접한 에지를 잘 연결함을 보여준다.",
            keywords=["에지 보정", "골격선 추출", "융기 영상"],
        ),
        record(
            f"{d}table",
            "table_qa",
            f"{d}doc-table",
            qa_type="table",
            title="연도별 시간당 임금",
            text="생활시간조사 미시자료의 근로시간은 분 단위로 나타난다.\n" + TABLE,
            table_html=TABLE,
            question="2014년 시간당 임금은 얼마야",
            answers=["14,587"],
        ),
    ]


def write_records(path: Path, records: list[dict[str, Any]]) -> Path:
    pq.write_table(pa.Table.from_pylist(records, schema=RECORD_SCHEMA), path)
    return path


BANK_PHRASES = (
    "다음 지시에 따라 답하시오.",
    "주어진 내용을 참고하여 과제를 수행하세요.",
    "아래 자료를 읽고 알맞게 응답하시오.",
)


def bank_rows(overrides: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    rows = []
    for task in SUPERNI_TASKS:
        phrases = (overrides or {}).get(task.id) or [f"{task.name_ko}: {p}" for p in BANK_PHRASES]
        for i, text in enumerate(phrases):
            rows.append(
                {
                    "task_id": task.id,
                    "instruction_id": f"{task.id}-{i:03d}",
                    "instruction": text,
                    "origin": "offline",
                    "model": None,
                    "prompt_version": "1",
                    "created_at": "2026-01-01T00:00:00Z",
                }
            )
    return rows


def write_bank(path: Path, overrides: dict[str, list[str]] | None = None) -> Path:
    pq.write_table(pa.Table.from_pylist(bank_rows(overrides)), path)
    return path
