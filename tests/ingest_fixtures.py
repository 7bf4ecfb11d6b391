"""Hand-written raw files in the shapes AIHub and KISTI publish, for the ingest tests."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from kositp.ingest.core import IngestResult, IngestSettings, ingest

DEMO_RAW = Path(__file__).resolve().parents[1] / "data" / "demo" / "raw"
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


TECH_CONTEXT = ("리튬이온 배터리의 양극재로는 니켈, 코발트, 망간을 섞은 삼원계 소재가 널리 쓰인다. "
                "니켈 함량을 높이면 에너지 밀도가 커지지만 열 안정성은 떨어진다. "
                "이를 보완하기 위해 양극재 표면을 알루미늄 산화물로 얇게 코팅하는 방법이 연구되고 있다. "
                "코팅층은 전해질과 양극재가 직접 닿는 것을 막아 고온에서의 부반응을 줄인다.")


def tech_qa(question_id: str, question: str, answer: str, answer_type: str, **extra: Any) -> dict[str, Any]:
    return {"question_id": question_id, "question-1": question, "question-2": None, "answer": answer,
            "answer_start": TECH_CONTEXT.find(answer), "answer_type": answer_type, "wrong_answer": [], "clue": [],
            **extra}


def span(text: str) -> dict[str, Any]:
    start = TECH_CONTEXT.find(text)
    return {"clue_text": text, "clue_start": start, "clue_end": start + len(text)}


def tech_mrc_document() -> dict[str, Any]:
    """AIHub 71533 (기술과학 문서 기계독해): one JSON per document, every answer type."""
    clue = "니켈 함량을 높이면 에너지 밀도가 커지지만 열 안정성은 떨어진다."
    return {"dataset_info": {"dataset_name": "기술과학 문서 기계독해 데이터", "version": "1.0"},
            "dataset": {"doc_id": "TECH-0001", "doc_title": {"kor": "고니켈 양극재의 열 안정성 개선", "eng": "Thermal stability of Ni-rich cathodes"},
                        "context_info": [{"context_id": "TECH-0001-01", "context": TECH_CONTEXT, "qas": [
                            tech_qa("Q1", "양극재 표면 코팅에 쓰이는 물질은 무엇인가?", "알루미늄 산화물", "다지선다형",
                                    **{"question-2": "양극재 표면을 얇게 덮는 데 사용하는 소재는?"},
                                    wrong_answer=["탄소 나노튜브", "실리콘 산화물", "리튬 인산철"],
                                    clue=[span("양극재 표면을 알루미늄 산화물로 얇게 코팅하는 방법")]),
                            tech_qa("Q2", "니켈 함량을 높이면 열 안정성이 좋아지는가?", "아니오", "Yes/No 단문형",
                                    clue=[span(clue)]),
                            tech_qa("Q3", "삼원계 양극재에 섞는 금속은?", "니켈, 코발트, 망간", "단답형"),
                            tech_qa("Q4", "코팅층은 어떻게 부반응을 줄이는가?", "전해질과 양극재가 직접 닿는 것을 막아 고온에서의 부반응을 줄인다",
                                    "서술형"),
                        ]}]}}


KISTI_QA_CONTEXT = ("1. 서론\n도시 하천의 수질은 강우 직후 급격히 나빠진다. 본 연구는 서울 도심 하천 여섯 곳에서 "
                    "2022년 한 해 동안 강우 전후의 총인 농도를 측정하였다.\n\n2. 결과\n강우 직후 총인 농도는 평균 2.4배 높아졌으며 "
                    "합류식 하수관로가 있는 지점에서 증가 폭이 가장 컸다.")


def kisti_qa_paper(context: str = KISTI_QA_CONTEXT) -> dict[str, Any]:
    """KISTI Korean paper QA: one JSON per paper, the full text as ``context``."""
    def item(level: str, question: str, answer: str, keyword: str) -> dict[str, Any]:
        return {"level": level, "question": question, "answer": {"answer_text": answer, "answer_start": context.find(answer)},
                "keyword": {"keyword_text": keyword, "keyword_start": context.find(keyword)}}

    return {"doc_id": "JAKO202212345678901", "context": context, "qas": [
        item("하", "연구에서 측정한 하천은 몇 곳인가?", "여섯 곳", "도심 하천"),
        item("중", "강우 직후 총인 농도는 평균 몇 배 높아졌는가?", "2.4배", "총인"),
        item("상", "총인 증가 폭이 가장 큰 지점의 특징은?", "합류식 하수관로가 있는 지점", "합류식 하수관로"),
    ]}


def run_ingest(tmp_path: Path, *paths: Path, **settings: Any) -> tuple[IngestResult, pd.DataFrame, pd.DataFrame]:
    """Ingest into ``tmp_path/out`` and check the accounting against the written tables, per file and overall."""
    result = ingest(list(paths), tmp_path / "out", IngestSettings(**settings))
    records = pd.read_parquet(tmp_path / "out" / "records.parquet")
    quarantine = pd.read_parquet(tmp_path / "out" / "quarantine.parquet")
    for name, tally in result.ledger.files():
        kept = (records.source_file == name).sum()
        rejected = (quarantine.source_file == name).sum()
        assert (tally.kept, tally.rejected) == (kept, rejected), name
        assert tally.read == kept + rejected, name
    total = result.ledger.totals
    assert total.read == total.kept + total.rejected == len(records) + len(quarantine)
    return result, records, quarantine


_WRONG_TYPES = (3.5, True, None, ["목록의 값"], {"키": "값"})


def _trimmed(value: Any) -> Any:
    """Two items of every list: a unit stays small, and every field of it is still there to spoil."""
    if isinstance(value, dict):
        return {key: _trimmed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_trimmed(item) for item in value[:2]]
    return value


def _paths(value: Any, at: tuple = ()) -> Iterator[tuple]:
    yield at
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in children:
        yield from _paths(item, (*at, key))


def _spoiled(document: Any, path: tuple, wrong: Any) -> Any:
    copy = json.loads(json.dumps(document))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = wrong
    return copy


def _family_samples() -> Iterator[tuple[str, Any]]:
    """One JSON document of every family: the first JSON member of each demo archive, the KISTI papers,
    and the hand-written documents of the two families whose demo files are split or nested archives."""
    for path in sorted(DEMO_RAW.rglob("*.zip")):
        with zipfile.ZipFile(path) as archive:
            member = next((i for i in archive.infolist() if i.filename.endswith(".json")), None)
            if member is not None:
                yield path.stem, json.loads(archive.read(member))
    yield "kisti_paper", json.loads((DEMO_RAW / "kisti_paper/kisti_papers.json").read_bytes())
    yield "tech_mrc", tech_mrc_document()
    yield "kisti_qa", kisti_qa_paper()


def spoiled_corpus(root: Path) -> Path:
    """Every family's sample with each of its fields, in turn, given each wrong type JSON allows."""
    corpus = root / "말뭉치"
    for family, sample in _family_samples():
        sample = _trimmed(sample)
        spoiled = [_spoiled(sample, path, wrong) for path in _paths(sample) if path for wrong in _WRONG_TYPES]
        for n, document in enumerate([sample, *spoiled]):
            write_json(corpus / family / f"{n}.json", document)
    return corpus
