"""Hand-written raw files in the shapes AIHub and KISTI publish, for the ingest tests."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

CONTEXT = ("행정안전부는 2024년 3월 4일부터 주민등록증 모바일 확인 서비스를 전국으로 확대한다고 밝혔다. "
           "발급을 원하는 사람은 가까운 주민센터를 방문하여 본인 확인을 거친 뒤 휴대전화에 발급받을 수 있다. "
           "담당자 연락처는 ***-****-**** 이다.")


def qa(qa_type: int, question: str, text: str, **answer: Any) -> dict[str, Any]:
    impossible = qa_type == 7
    return {"qa_type": qa_type, "question_id": f"q{qa_type}", "question": question, "is_impossible": impossible,
            "answers": {"text": text, "answer_start": CONTEXT.find(text), "clue_start": None, "clue_text": None,
                        "options": None, **answer}}


def admin_mrc(qas: list[dict[str, Any]], context: str = CONTEXT) -> dict[str, Any]:
    return {"Dataset": {"Identifier": "TextQA_Administrator_Doc_01", "name": "행정문서 대상 기계독해 데이터"},
            "data": [{"doc_id": "D001", "doc_title": "모바일 주민등록증 확대 시행", "doc_published": 20240304,
                      "paragraphs": [{"context": context, "context_id": "D001-1", "qas": qas}]}]}


def every_admin_qa() -> list[dict[str, Any]]:
    clue = "가까운 주민센터를 방문하여 본인 확인을 거친 뒤"
    return [
        qa(1, "모바일 확인 서비스는 언제부터 전국으로 확대되나요?", "2024년 3월 4일부터"),
        qa(2, "모바일 주민등록증은 어떻게 발급받나요?", "가까운 주민센터를 방문하여 본인 확인을 거친 뒤 휴대전화에 발급받을 수 있다"),
        qa(5, "모바일 주민등록증은 주민센터 방문 없이 발급받을 수 있나요?", "No", clue_text=clue),
        qa(6, "모바일 주민등록증을 발급받으려면 어디를 방문해야 하나요?", "주민센터",
           options=["주민센터", "경찰서", "우체국", "은행"], clue_text=clue),
        qa(7, "모바일 주민등록증 발급 수수료는 얼마인가요?", "주민센터"),
    ]


def summary_documents() -> dict[str, Any]:
    sentences = [[{"index": 0, "sentence": "시는 다음 달부터 심야 버스 노선 네 개를 새로 운행한다.", "highlight_indices": ""},
                  {"index": 1, "sentence": "새 노선은 지하철 운행이 끝난 뒤 주요 환승역을 잇는다.", "highlight_indices": ""}],
                 [{"index": 2, "sentence": "요금은 일반 버스보다 500원 비싸다.", "highlight_indices": ""}]]
    return {"name": "신문기사", "delivery_date": "2024-01-01 10:00:00", "documents": [
        {"id": "1001", "title": "심야 버스 노선 신설", "char_count": "90", "text": sentences,
         "extractive": [1, 0, None], "abstractive": ["시가 지하철 운행이 끝난 뒤 주요 환승역을 잇는 심야 버스 네 개 노선을 신설한다."]},
        {"id": "1002", "title": "도서관 야간 개방", "char_count": 40,
         "text": [[{"index": 0, "sentence": "구립 도서관이 이번 주부터 밤 11시까지 문을 연다."}]],
         "extractive": [0], "abstractive": "구립 도서관이 밤 11시까지 연장 개방한다."}]}


def paper_summary(wrapped: bool) -> Any:
    data = {"data": [{"doc_type": "논문", "doc_id": "P01", "title": "도시 숲의 미세먼지 저감 효과",
                      "summary_entire": [{"orginal_text": "도시 숲 주변의 미세먼지 농도를 1년간 측정한 결과 숲이 없는 도로변보다 평균 25% 낮았다.",
                                          "summary_text": "도시 숲 주변 미세먼지는 도로변보다 25% 낮았다."}],
                      "summary_section": [{"original_text": "측정은 서울의 공원 다섯 곳에서 계절별로 이루어졌다.",
                                           "summary_text": "서울 공원 다섯 곳에서 계절별로 측정하였다."}]}]}
    return [data] if wrapped else data


def write_json(path: Path, obj: Any, encoding: str = "utf-8", bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(obj, ensure_ascii=False, indent=1).encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path
