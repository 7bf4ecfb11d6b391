"""Write the demo raw corpus: small zips in the shapes AIHub and KISTI publish, in Korean prose
written for this project (no AIHub/KISTI text is redistributed).

Run from the repository root: ``python data/demo/make_demo_corpus.py`` (rewrites ``data/demo/raw``).
A few records are broken on purpose so that the quarantine has something to show: an empty
context, an answer that is not in its passage, a truncated JSON member, a README inside a zip,
a CP949 file, a zip member name written in CP949, a UTF-8 BOM file and planted duplicates. The
71533 download is split into ``.zip.part<offset>`` chunks and the KISTI QA zip holds a nested zip.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

RAW = Path(__file__).resolve().parent / "raw"
FIXED_TIME = (2024, 1, 1, 0, 0, 0)

# ---------------------------------------------------------------- MRC passages (AIHub 569 / 577 shape)
# Each passage carries questions of every type: span (1), how/long (2), yes/no (5, with clue),
# multiple choice (6, four options and clue) and unanswerable (7, with a plausible answer).
PASSAGES = [
    {
        "doc_id": "D0000100000001", "title": "2024년 청년 월세 한시 특별지원 사업 안내", "source": "국토교통부",
        "context": "국토교통부는 2024년 청년 월세 한시 특별지원 사업의 신청을 2월 26일부터 받는다고 밝혔다. "
        "지원 대상은 부모와 따로 거주하는 만 19세부터 34세까지의 무주택 청년으로, 청년 가구의 소득이 기준 중위소득 60% 이하여야 한다. "
        "선정된 청년에게는 실제 납부하는 월세 범위에서 최대 월 20만 원씩 12개월간 지원한다. "
        "신청은 복지로 누리집이나 주소지 관할 행정복지센터에서 할 수 있으며, 임대차계약서와 월세 이체 내역을 함께 내야 한다.",
        "span": [("청년 월세 한시 특별지원 사업의 신청은 언제부터 받나요?", "2월 26일부터"),
                 ("선정된 청년에게 지원되는 월세의 최대 금액은 얼마인가요?", "월 20만 원")],
        "how": [("청년 월세 특별지원은 어떻게 신청하나요?", "복지로 누리집이나 주소지 관할 행정복지센터에서 할 수 있으며, 임대차계약서와 월세 이체 내역을 함께 내야 한다")],
        "yes_no": [("부모와 함께 사는 청년도 월세 특별지원을 받을 수 있나요?", "No", "지원 대상은 부모와 따로 거주하는 만 19세부터 34세까지의 무주택 청년으로")],
        "mc": [("청년 월세 특별지원의 지원 기간은 몇 개월인가?", "12개월", ["6개월", "10개월", "12개월", "24개월"], "최대 월 20만 원씩 12개월간 지원한다")],
        "unanswerable": [("청년 월세 지원금은 어느 은행 계좌로 입금되나요?", "복지로")],
    },
    {
        "doc_id": "D0000100000002", "title": "2024년 상반기 문화재 소방훈련 계획 알림", "source": "서울특별시청",
        "context": "서울특별시 소방재난본부는 2024년 상반기 문화재 소방훈련을 6월 3일부터 14일까지 실시한다. "
        "훈련 대상은 숭례문과 흥인지문을 포함한 국가지정문화재 27개소이며, 관할 119안전센터장이 현장 지휘를 맡는다. "
        "훈련은 초기 화재 대응, 문화재 반출 및 보호, 관계인 자위소방대 합동 진화 순서로 진행된다. "
        "각 센터는 훈련이 끝난 뒤 7일 이내에 결과 보고서를 대응총괄팀에 제출하여야 한다.",
        "span": [("상반기 문화재 소방훈련의 대상은 몇 개소인가요?", "27개소"),
                 ("문화재 소방훈련의 현장 지휘는 누가 맡나요?", "관할 119안전센터장")],
        "how": [("문화재 소방훈련은 어떤 순서로 진행되나요?", "초기 화재 대응, 문화재 반출 및 보호, 관계인 자위소방대 합동 진화 순서로 진행된다")],
        "yes_no": [("훈련 결과 보고서는 훈련 종료 후 7일 이내에 제출해야 하나요?", "Yes", "각 센터는 훈련이 끝난 뒤 7일 이내에 결과 보고서를 대응총괄팀에 제출하여야 한다")],
        "mc": [("문화재 소방훈련 결과 보고서를 제출받는 곳은?", "대응총괄팀", ["대응총괄팀", "문화재청", "행정안전부", "구청 안전과"], "결과 보고서를 대응총괄팀에 제출하여야 한다")],
        "unanswerable": [("문화재 소방훈련에 투입되는 소방차는 모두 몇 대인가요?", "27개소")],
    },
    {
        "doc_id": "N0000200000003", "title": "한국은행, 기준금리 연 3.50%로 동결", "source": "경제일보",
        "context": "한국은행 금융통화위원회는 11일 통화정책방향 회의를 열고 기준금리를 연 3.50%로 동결했다. "
        "이로써 기준금리는 열 차례 연속 같은 수준을 유지하게 됐다. "
        "금통위는 소비자물가 상승률이 둔화하고 있으나 가계부채 증가세와 환율 변동성이 여전히 크다는 점을 동결 이유로 들었다. "
        "시장에서는 물가가 목표 수준에 안착하는 하반기에 금리 인하 논의가 본격화할 것으로 보고 있다.",
        "span": [("한국은행이 동결한 기준금리는 연 몇 퍼센트인가요?", "연 3.50%"),
                 ("기준금리는 몇 차례 연속 같은 수준을 유지했나요?", "열 차례")],
        "how": [("금통위는 어떤 이유로 기준금리를 동결했나요?", "소비자물가 상승률이 둔화하고 있으나 가계부채 증가세와 환율 변동성이 여전히 크다는 점")],
        "yes_no": [("한국은행은 이번 회의에서 기준금리를 인하했나요?", "No", "기준금리를 연 3.50%로 동결했다")],
        "mc": [("시장에서 금리 인하 논의가 본격화할 것으로 보는 시기는?", "하반기", ["연초", "상반기", "하반기", "내년 말"], "물가가 목표 수준에 안착하는 하반기에 금리 인하 논의가 본격화할 것으로")],
        "unanswerable": [("금통위 위원 가운데 인하 의견을 낸 위원은 몇 명인가요?", "열 차례")],
        "news": [("금융통화위원회가 통화정책방향 회의를 연 날은 며칠인가요?", "11일"),
                 ("금통위가 물가 외에 우려한 요인은 무엇인가요?", "가계부채 증가세와 환율 변동성")],
    },
    {
        "doc_id": "L0000300000004", "title": "주택임대차보호법상 대항력과 우선변제권", "source": "법제처",
        "context": "주택임대차보호법에 따르면 임차인이 주택을 인도받고 주민등록을 마치면 그 다음 날부터 제3자에 대하여 대항력이 생긴다. "
        "대항력을 갖춘 임차인이 임대차계약서에 확정일자까지 받으면 경매나 공매 때 후순위 권리자보다 보증금을 먼저 변제받을 수 있다. "
        "임대차 기간을 정하지 않았거나 2년 미만으로 정한 경우에는 그 기간을 2년으로 본다. "
        "다만 임차인은 2년 미만으로 정한 기간이 유효함을 주장할 수 있다.",
        "span": [("임차인의 대항력은 언제부터 생기나요?", "그 다음 날부터"),
                 ("기간을 정하지 않은 주택 임대차의 기간은 몇 년으로 보나요?", "2년")],
        "how": [("임차인은 어떻게 보증금을 후순위 권리자보다 먼저 변제받을 수 있나요?", "대항력을 갖춘 임차인이 임대차계약서에 확정일자까지 받으면")],
        "yes_no": [("임차인은 2년 미만으로 정한 임대차 기간이 유효하다고 주장할 수 있나요?", "Yes", "다만 임차인은 2년 미만으로 정한 기간이 유효함을 주장할 수 있다")],
        "mc": [("대항력의 요건으로 주택 인도와 함께 갖추어야 하는 것은?", "주민등록", ["확정일자", "주민등록", "전세권 설정", "보증보험 가입"], "임차인이 주택을 인도받고 주민등록을 마치면")],
        "unanswerable": [("임대인이 보증금을 돌려주지 않을 때 내는 지연이자율은 얼마인가요?", "2년")],
    },
    {
        "doc_id": "D0000100000005", "title": "2024년 전기자동차 구매보조금 지원계획 공고", "source": "환경부",
        "context": "환경부는 2024년 전기자동차 구매보조금 지원계획을 공고하고 승용차 기준 국비 보조금을 최대 650만 원으로 정했다. "
        "보조금을 전액 받으려면 차량 기본가격이 5500만 원 미만이어야 하며, 5500만 원 이상 8500만 원 미만인 차량은 보조금의 50%를 받는다. "
        "차상위 이하 계층이 구매하는 경우 국비 지원액의 20%를 추가로 지원한다. "
        "보조금은 자동차 제작사나 판매사가 구매자를 대신하여 지방자치단체에 신청한다.",
        "span": [("2024년 전기 승용차 국비 보조금의 최대 금액은 얼마인가요?", "최대 650만 원"),
                 ("보조금을 전액 받을 수 있는 차량 기본가격의 기준은 얼마인가요?", "5500만 원 미만")],
        "how": [("전기차 구매보조금은 어떻게 신청하나요?", "자동차 제작사나 판매사가 구매자를 대신하여 지방자치단체에 신청한다")],
        "yes_no": [("차상위 이하 계층은 보조금을 추가로 받을 수 있나요?", "Yes", "차상위 이하 계층이 구매하는 경우 국비 지원액의 20%를 추가로 지원한다")],
        "mc": [("기본가격이 7000만 원인 전기 승용차가 받는 보조금 비율은?", "50%", ["전액", "70%", "50%", "지원 없음"], "5500만 원 이상 8500만 원 미만인 차량은 보조금의 50%를 받는다")],
        "unanswerable": [("전기 화물차의 국비 보조금은 최대 얼마인가요?", "650만 원")],
    },
    {
        "doc_id": "N0000200000006", "title": "전국 곳곳 폭염경보, 온열질환 주의", "source": "한빛신문",
        "context": "기상청은 30일 오전 10시를 기해 서울과 경기 남부, 충청권 대부분 지역에 폭염경보를 발효했다. "
        "폭염경보는 하루 최고 체감온도 35도 이상인 상태가 이틀 이상 계속될 것으로 예상될 때 내려진다. "
        "질병관리청에 따르면 올해 들어 신고된 온열질환자는 지난해 같은 기간보다 40% 늘었다. "
        "보건 당국은 한낮에는 야외 작업을 줄이고 물을 자주 마시며 어르신과 어린이의 건강 상태를 살펴 달라고 당부했다.",
        "span": [("폭염경보가 발효된 시각은 언제인가요?", "30일 오전 10시"),
                 ("올해 온열질환자는 지난해 같은 기간보다 얼마나 늘었나요?", "40%")],
        "how": [("보건 당국은 폭염에 어떻게 대비하라고 당부했나요?", "한낮에는 야외 작업을 줄이고 물을 자주 마시며 어르신과 어린이의 건강 상태를 살펴 달라고")],
        "yes_no": [("폭염경보는 체감온도 33도가 하루만 이어져도 내려지나요?", "No", "하루 최고 체감온도 35도 이상인 상태가 이틀 이상 계속될 것으로 예상될 때 내려진다")],
        "mc": [("폭염경보의 기준이 되는 하루 최고 체감온도는?", "35도 이상", ["30도 이상", "33도 이상", "35도 이상", "38도 이상"], "하루 최고 체감온도 35도 이상인 상태가")],
        "unanswerable": [("폭염경보가 해제되는 날짜는 언제인가요?", "30일")],
        "news": [("폭염경보가 발효된 지역은 어디인가요?", "서울과 경기 남부, 충청권 대부분 지역"),
                 ("온열질환자 통계를 발표한 기관은 어디인가요?", "질병관리청")],
    },
    {
        "doc_id": "D0000100000007", "title": "2024년 노인일자리 및 사회활동 지원사업 참여자 모집", "source": "보건복지부",
        "context": "보건복지부는 2024년 노인일자리 및 사회활동 지원사업에 참여할 어르신 103만 명을 모집한다. "
        "공익활동형은 기초연금을 받는 만 65세 이상 어르신이 참여할 수 있으며 월 30시간 활동하고 활동비 29만 원을 받는다. "
        "사회서비스형은 만 65세 이상이면 소득과 관계없이 신청할 수 있고 월 60시간 근무한다. "
        "참여 신청은 거주지 행정복지센터나 시니어클럽, 노인복지관에서 받는다.",
        "span": [("2024년 노인일자리 사업의 모집 인원은 몇 명인가요?", "103만 명"),
                 ("공익활동형 참여자가 받는 월 활동비는 얼마인가요?", "29만 원")],
        "how": [("노인일자리 사업에는 어떻게 참여 신청을 하나요?", "거주지 행정복지센터나 시니어클럽, 노인복지관에서 받는다")],
        "yes_no": [("사회서비스형은 기초연금을 받지 않는 어르신도 신청할 수 있나요?", "Yes", "사회서비스형은 만 65세 이상이면 소득과 관계없이 신청할 수 있고")],
        "mc": [("사회서비스형 참여자의 월 근무 시간은?", "60시간", ["20시간", "30시간", "45시간", "60시간"], "월 60시간 근무한다")],
        "unanswerable": [("사회서비스형 참여자의 시간당 임금은 얼마인가요?", "29만 원")],
    },
    {
        "doc_id": "L0000300000008", "title": "근로기준법상 연차 유급휴가", "source": "고용노동부",
        "context": "근로기준법 제60조에 따라 사용자는 1년간 80% 이상 출근한 근로자에게 15일의 유급휴가를 주어야 한다. "
        "계속하여 근로한 기간이 1년 미만인 근로자에게는 1개월 개근 시 1일의 유급휴가를 준다. "
        "3년 이상 계속 근로한 근로자에게는 최초 1년을 초과하는 계속 근로 연수 매 2년에 대하여 1일을 가산하며, 가산한 휴가를 포함한 총 휴가 일수는 25일을 한도로 한다. "
        "사용자는 휴가를 근로자가 청구한 시기에 주어야 하지만, 사업 운영에 막대한 지장이 있으면 그 시기를 변경할 수 있다.",
        "span": [("1년간 80% 이상 출근한 근로자가 받는 유급휴가는 며칠인가요?", "15일"),
                 ("가산 휴가를 포함한 연차 유급휴가의 한도는 며칠인가요?", "25일")],
        "how": [("1년 미만 근로자는 어떻게 유급휴가를 받나요?", "1개월 개근 시 1일의 유급휴가를 준다")],
        "yes_no": [("사용자는 어떤 경우에도 근로자가 청구한 휴가 시기를 바꿀 수 없나요?", "No", "사업 운영에 막대한 지장이 있으면 그 시기를 변경할 수 있다")],
        "mc": [("연차 유급휴가를 규정한 근로기준법 조항은?", "제60조", ["제50조", "제56조", "제60조", "제74조"], "근로기준법 제60조에 따라")],
        "unanswerable": [("연차휴가를 쓰지 못했을 때 받는 수당의 지급일은 언제인가요?", "15일")],
    },
]

ADMIN_FILES = {  # AIHub 569 packaging: one TL_<type>.zip per question type, one JSON inside each
    "TL_span_extraction": ("span", 1),
    "TL_span_inference": ("how", 2),
    "TL_text_entailment": ("yes_no", 5),
    "TL_multiple_choice": ("mc", 6),
    "TL_unanswerable": ("unanswerable", 7),
}


def admin_answer(kind: str, item: tuple, context: str) -> tuple[dict, bool]:
    """The 569 ``answers`` dict for one question (and whether it is impossible)."""
    if kind in ("span", "how"):
        _, text = item
        return {"text": text, "answer_start": context.find(text), "clue_start": None, "clue_text": None, "options": None}, False
    if kind == "yes_no":
        _, text, clue = item
        return {"text": text, "answer_start": None, "clue_start": context.find(clue), "clue_text": clue, "options": None}, False
    if kind == "mc":
        _, text, options, clue = item
        return {"text": text, "answer_start": None, "clue_start": context.find(clue), "clue_text": clue, "options": options}, False
    _, text = item
    return {"text": text, "answer_start": context.find(text), "clue_start": None, "clue_text": None, "options": None}, True


def admin_mrc_file(kind: str, code: int) -> dict:
    data = []
    for p in PASSAGES:
        qas = []
        for n, item in enumerate(p[kind]):
            answers, impossible = admin_answer(kind, item, p["context"])
            qas.append({"qa_type": code, "question_id": f"{p['doc_id']}-{code}-{n}", "question": item[0],
                        "is_impossible": impossible, "answers": answers})
        data.append({"doc_id": p["doc_id"], "doc_title": p["title"], "doc_source": p["source"], "doc_published": 20240115,
                     "doc_class": {"class": "중앙행정기관 분류체계", "code": "공공행정"}, "created": "20240120093000",
                     "paragraphs": [{"context": p["context"], "context_id": f"{p['doc_id']}-1", "qas": qas}]})
    return {"Dataset": {"Identifier": "TextQA_Administrator_Doc_01", "name": "행정문서 대상 기계독해 데이터", "category": 2, "type": 0},
            "data": data}


TABLES = [
    {
        "title": "2024년 시도별 출생아 수", "doc_id": "T0001",
        "intro": "통계청이 발표한 2024년 상반기 시도별 출생아 수는 다음과 같다.",
        "rows": [["시도", "출생아 수(명)", "전년 대비 증감률"], ["서울", "19,370", "-2.1%"], ["부산", "6,402", "-4.5%"],
                 ["경기", "33,915", "1.2%"], ["세종", "1,611", "3.8%"]],
        "qas": [("2024년 상반기 경기의 출생아 수는 몇 명인가요?", "33,915"),
                ("출생아 수가 전년보다 가장 크게 늘어난 시도는 어디인가요?", "세종"),
                ("부산의 출생아 수 증감률은 얼마인가요?", "-4.5%")],
    },
    {
        "title": "국립공원 탐방객 현황", "doc_id": "T0002",
        "intro": "국립공원공단이 집계한 주요 국립공원의 연간 탐방객 수이다.",
        "rows": [["국립공원", "2022년(만 명)", "2023년(만 명)"], ["북한산", "651", "702"], ["설악산", "281", "295"],
                 ["지리산", "254", "263"], ["한라산", "92", "87"]],
        "qas": [("2023년 북한산 국립공원의 탐방객 수는 몇 만 명인가요?", "702"),
                ("2023년 탐방객이 전년보다 줄어든 국립공원은 어디인가요?", "한라산"),
                ("2022년 설악산의 탐방객 수는 몇 만 명인가요?", "281")],
    },
    {
        "title": "2024년 최저임금 결정 내용", "doc_id": "T0003",
        "intro": "최저임금위원회가 의결한 2024년 적용 최저임금은 아래 표와 같다.",
        "rows": [["구분", "금액", "인상률"], ["시간급", "9,860원", "2.5%"], ["일급(8시간)", "78,880원", "2.5%"],
                 ["월 환산액(209시간)", "2,060,740원", "2.5%"]],
        "qas": [("2024년 최저임금 시간급은 얼마인가요?", "9,860원"),
                ("2024년 최저임금의 월 환산액은 얼마인가요?", "2,060,740원"),
                ("월 환산액 계산에 쓰인 근로시간은 몇 시간인가요?", "209시간")],
    },
    {
        "title": "지역별 공공도서관 수", "doc_id": "T0004",
        "intro": "문화체육관광부의 전국 공공도서관 통계 가운데 일부 지역을 정리한 표이다.",
        "rows": [["지역", "도서관 수", "1관당 인구(명)"], ["서울", "208", "45,112"], ["대전", "27", "53,480"],
                 ["강원", "65", "23,510"], ["제주", "23", "29,530"]],
        "qas": [("서울의 공공도서관은 몇 곳인가요?", "208"),
                ("1관당 인구가 가장 적은 지역은 어디인가요?", "강원"),
                ("대전의 1관당 인구는 몇 명인가요?", "53,480")],
    },
    {
        "title": "분기별 수출입 실적", "doc_id": "T0005",
        "intro": "산업통상자원부가 발표한 2023년 분기별 수출입 실적(억 달러)이다.",
        "rows": [["분기", "수출", "수입", "무역수지"], ["1분기", "1,515", "1,740", "-225"], ["2분기", "1,581", "1,600", "-19"],
                 ["3분기", "1,571", "1,482", "89"], ["4분기", "1,654", "1,546", "108"]],
        "qas": [("2023년 4분기 수출액은 몇 억 달러인가요?", "1,654"),
                ("무역수지가 처음 흑자로 돌아선 분기는 언제인가요?", "3분기"),
                ("1분기 무역수지는 얼마인가요?", "-225")],
    },
]


def table_html(rows: list[list[str]]) -> str:
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tbody>{body}</tbody></table>"


def table_context(t: dict) -> str:
    return f"{t['intro']}<br>{table_html(t['rows'])}"


def table_qa_file() -> dict:
    """AIHub 71565 shape: ``table_title`` per paragraph and a singular ``answer``."""
    data = []
    for t in TABLES:
        context = table_context(t)
        qas = [{"question_id": f"{t['doc_id']}-{n}", "question": q, "answer": {"text": a, "answer_start": context.find(a)}}
               for n, (q, a) in enumerate(t["qas"][:2])]
        data.append({"doc_id": t["doc_id"], "doc_title": t["title"],
                     "paragraphs": [{"context": context, "table_title": t["title"], "qas": qas}]})
    return {"version": "1.0", "data": data}


def admin_tableqa_file() -> dict:
    """AIHub 569 ``TL_tableqa``: qa_type 3, table HTML inside the administrative context."""
    data = []
    for t in TABLES:
        context = table_context(t)
        qas = [{"qa_type": 3, "question_id": f"A{t['doc_id']}-{n}", "question": q, "is_impossible": False,
                "answers": {"text": a, "answer_start": context.find(a), "clue_start": None, "clue_text": None, "options": None}}
               for n, (q, a) in enumerate(t["qas"][2:], start=2)]
        data.append({"doc_id": f"A{t['doc_id']}", "doc_title": t["title"], "doc_source": "통계청", "doc_published": 20240301,
                     "paragraphs": [{"context": context, "context_id": f"A{t['doc_id']}-1", "qas": qas}]})
    return {"Dataset": {"Identifier": "TextQA_Administrator_Doc_01", "name": "행정문서 대상 기계독해 데이터"}, "data": data}


def news_mrc_file() -> dict:
    """AIHub 577 shape: ``answers`` as a LIST, ``doc_published`` as a string."""
    data = []
    for p in PASSAGES[2::3]:
        qas = [{"question_id": f"{p['doc_id']}-n{n}", "question": q, "is_impossible": False,
                "answers": [{"text": a, "answer_start": p["context"].find(a)}]} for n, (q, a) in enumerate(p["news"])]
        data.append({"doc_id": p["doc_id"] + "N", "doc_title": p["title"], "doc_published": "2024.04.16. 오전 10:46",
                     "paragraphs": [{"context": p["context"], "qas": qas}]})
    return {"data": data}


# ---------------------------------------------------------------- document summarization (AIHub 97)
# (title, [paragraph [sentences]], extractive indices, abstractive summary)
LAW_DOCS = [
    ("손해배상청구 사건 판결 요지",
     [["원고는 피고가 운영하는 헬스장에서 운동기구를 사용하다가 기구의 고정 나사가 풀려 허리를 다쳤다며 손해배상을 청구하였다.",
       "피고는 원고가 기구를 잘못 사용하여 사고가 났다고 주장하였다."],
      ["법원은 피고가 정기 점검 기록을 제출하지 못했고 사고 직후 같은 기구의 다른 나사도 풀려 있었던 점을 인정하였다.",
       "따라서 시설 관리상의 주의의무를 다하지 않은 피고에게 손해배상 책임이 있다고 판단하였다.",
       "다만 원고도 무게를 과도하게 올린 잘못이 있어 피고의 책임을 70%로 제한하였다."]],
     [2, 3, 4], "법원은 운동기구 점검을 소홀히 한 헬스장 운영자에게 손해배상 책임을 인정하되, 원고의 과실을 고려해 책임을 70%로 제한하였다."),
    ("부당해고 구제 재심판정 취소 사건",
     [["참가인은 회사로부터 업무상 비밀을 외부에 유출하였다는 이유로 해고되었다.",
       "중앙노동위원회는 해고 사유가 인정되지 않는다며 부당해고로 판정하였고 회사는 그 취소를 구하는 소를 제기하였다."],
      ["법원은 참가인이 보낸 자료가 이미 회사 누리집에 공개된 제품 안내서였다는 점을 확인하였다.",
       "공개된 자료를 보낸 행위는 비밀 유출로 볼 수 없으므로 해고는 정당한 이유가 없다고 보았다.",
       "이에 법원은 회사의 청구를 기각하였다."]],
     [1, 3, 4], "이미 공개된 자료를 보낸 것은 비밀 유출이 아니므로 해고는 부당하다고 보아 법원은 회사의 재심판정 취소 청구를 기각하였다."),
    ("음주운전 처벌 규정 위헌 소원 사건",
     [["청구인은 음주운전 전력이 있는 사람이 다시 음주운전을 하면 가중 처벌하도록 한 도로교통법 조항이 과잉 처벌이라고 주장하였다.",
       "해당 조항은 과거 위반 시점에 제한을 두지 않았다."],
      ["헌법재판소는 오래전의 위반 전력까지 같은 무게로 평가하는 것은 책임과 형벌 사이의 비례 원칙에 어긋난다고 판단하였다.",
       "재판관 다수의견으로 해당 조항은 헌법에 위반된다는 결정이 내려졌다."]],
     [0, 2, 3], "헌법재판소는 시점 제한 없이 음주운전 재범을 가중 처벌하는 조항이 비례 원칙에 어긋나 위헌이라고 결정하였다."),
    ("임대차보증금 반환 청구 사건",
     [["원고는 임대차 계약 기간이 끝났는데도 피고가 보증금 1억 2천만 원을 돌려주지 않는다며 소를 제기하였다.",
       "피고는 새 임차인이 구해지지 않아 보증금을 돌려줄 수 없다고 항변하였다."],
      ["법원은 새 임차인을 구하는 일은 임대인의 사정일 뿐 보증금 반환을 거절할 이유가 되지 않는다고 보았다.",
       "법원은 피고에게 보증금과 함께 계약 종료 다음 날부터의 지연손해금을 지급하라고 판결하였다."]],
     [0, 2, 3], "법원은 새 임차인이 없다는 사정은 보증금 반환 거절 사유가 아니라며 임대인에게 보증금과 지연손해금의 지급을 명하였다."),
]
NEWS_DOCS = [
    ("지방 소멸 대응 기금, 올해 1조 원 배분",
     [["행정안전부는 인구 감소 지역 89곳과 관심 지역 18곳에 지방소멸대응기금 1조 원을 배분한다고 밝혔다.",
       "기금은 지역이 스스로 세운 투자 계획을 평가해 차등 배분된다."],
      ["올해는 청년 주거와 일자리를 함께 묶은 사업이 높은 점수를 받았다.",
       "행정안전부는 기금 사업의 성과를 매년 점검해 다음 해 배분에 반영할 계획이다."]],
     [0, 1, 3], "행정안전부가 인구 감소 지역 등에 지방소멸대응기금 1조 원을 투자 계획 평가에 따라 차등 배분하고 성과를 매년 점검한다."),
    ("도심 공원에 빗물 저류 시설 설치",
     [["서울시는 집중호우 때 도심 침수를 줄이기 위해 공원 지하에 빗물 저류 시설을 짓는다고 발표하였다.",
       "첫 시설은 강남구의 한 근린공원 지하에 1만 5천 톤 규모로 들어선다."],
      ["저류 시설은 평소에는 비어 있다가 폭우가 내리면 빗물을 모아 두었다가 비가 그친 뒤 천천히 흘려보낸다.",
       "공사 기간에도 공원 일부는 시민에게 개방된다."]],
     [0, 1, 2], "서울시가 도심 침수를 막기 위해 공원 지하에 폭우 때 빗물을 모아 두는 저류 시설을 짓기로 하고 첫 시설을 강남구에 설치한다."),
    ("중소기업 스마트공장 지원 확대",
     [["중소벤처기업부는 올해 스마트공장 보급 사업에 지난해보다 20% 늘어난 예산을 편성하였다.",
       "지원을 받은 기업은 생산성이 평균 28% 오르고 불량률은 40% 넘게 줄어든 것으로 나타났다."],
      ["정부는 특히 뿌리산업과 식품 제조 분야의 소규모 공장에 우선 지원할 방침이다."]],
     [0, 1, 2], "중소벤처기업부가 생산성 향상 효과가 확인된 스마트공장 보급 예산을 20% 늘리고 뿌리산업과 식품 제조 소규모 공장을 우선 지원한다."),
    ("고속도로 졸음쉼터 50곳 추가",
     [["한국도로공사는 장거리 운전자의 졸음운전 사고를 줄이기 위해 고속도로 졸음쉼터 50곳을 새로 만든다.",
       "졸음쉼터가 설치된 구간에서는 사고 사망자가 설치 전보다 절반 가까이 줄었다."],
      ["새 쉼터에는 화장실과 그늘막, 안전 조명이 함께 설치된다."]],
     [0, 1, 2], "한국도로공사가 사고 감소 효과가 확인된 고속도로 졸음쉼터 50곳을 편의시설과 함께 추가로 설치한다."),
]
EDITORIAL_DOCS = [
    ("사설: 의대 증원, 지역 의료부터 살펴야",
     [["의과대학 정원을 늘리는 방안이 확정되면서 의료계와 정부의 갈등이 이어지고 있다.",
       "정원 확대만으로는 지방의 의사 부족을 해결할 수 없다는 지적이 많다."],
      ["늘어난 의사가 지역에 머물 수 있도록 지역 필수의료에 대한 보상과 근무 여건 개선이 함께 가야 한다.",
       "정부와 의료계는 대화의 자리에서 구체적인 지역 의료 대책을 내놓아야 한다."]],
     [1, 2, 3], "의대 정원 확대가 지방 의사 부족을 해결하려면 지역 필수의료 보상과 근무 여건 개선이 함께 이뤄져야 한다."),
    ("사설: 전세 사기 피해자 지원, 속도가 관건이다",
     [["전세 사기 피해자가 계속 늘고 있지만 지원 절차는 여전히 복잡하다.",
       "피해자로 인정받기까지 몇 달이 걸려 그사이 경매로 집을 잃는 사례도 나온다."],
      ["정부는 피해 인정 심사 기간을 줄이고 경매 유예를 자동으로 적용하는 방안을 서둘러야 한다."]],
     [0, 1, 2], "전세 사기 피해 인정에 시간이 오래 걸려 집을 잃는 사례가 나오는 만큼 정부는 심사를 앞당기고 경매 유예를 자동 적용해야 한다."),
    ("사설: 기후 위기 시대의 농업 보험",
     [["이상 기후로 과수 농가의 냉해와 우박 피해가 해마다 커지고 있다.",
       "그러나 농작물 재해보험은 보장 범위가 좁아 실제 손해를 메우지 못한다는 불만이 크다."],
      ["보험 보장 범위를 넓히고 보험료 부담을 덜어 주는 제도 개선이 필요하다."]],
     [0, 1, 2], "이상 기후로 농가 피해가 커지는 만큼 농작물 재해보험의 보장 범위를 넓히고 보험료 부담을 줄여야 한다."),
]


def summary_documents(name: str, docs: list, media: bool, start_id: int) -> dict:
    documents = []
    for n, (title, paragraphs, extractive, abstractive) in enumerate(docs):
        index = 0
        text = []
        for paragraph in paragraphs:
            sentences = []
            for sentence in paragraph:
                sentences.append({"index": index, "sentence": sentence, "highlight_indices": ""})
                index += 1
            text.append(sentences)
        doc = {"id": str(start_id + n), "category": name, "size": "small", "char_count": sum(len(s) for p in paragraphs for s in p),
               "title": title, "text": text, "extractive": list(reversed(extractive)),
               "abstractive": [abstractive] if n % 2 == 0 else abstractive}
        if media:
            doc.update(media_type="online", media_name="한빛신문", publish_date=f"2024-03-0{n + 1} 09:00:00")
        documents.append(doc)
    return {"name": f"{name} 요약 데이터", "delivery_date": "2024-04-01 10:00:00", "documents": documents}


# ---------------------------------------------------------------- paper and patent summaries (AIHub 90)
PAPERS = [
    {"doc_id": "JAKO202400001", "title": "딥러닝 기반 한국어 법률 문서 분류 성능 비교", "author": "김서연",
     "entire": (("본 연구는 판결문과 법령 해설 등 한국어 법률 문서를 주제별로 분류하기 위해 합성곱 신경망, 순환 신경망, 사전학습 언어모델의 성능을 비교하였다. "
                "약 3만 건의 법률 문서를 민사, 형사, 행정, 가사의 네 범주로 나누어 실험한 결과 사전학습 언어모델이 정확도 91.2%로 가장 높았다. "
                "특히 문서 길이가 긴 경우 순환 신경망의 성능이 크게 떨어졌다."),
                "한국어 법률 문서 분류에서 사전학습 언어모델이 정확도 91.2%로 가장 우수했으며 긴 문서에서 순환 신경망의 성능이 떨어졌다."),
     "sections": [("실험에는 대법원 판결문과 법제처 법령 해설 자료에서 수집한 약 3만 건의 문서를 사용하였다. 문서는 민사, 형사, 행정, 가사의 네 범주로 전문가가 직접 분류하였다.",
                   "판결문과 법령 해설 약 3만 건을 네 범주로 나누어 실험 자료로 사용하였다."),
                  ("사전학습 언어모델은 정확도 91.2%를 기록하였고 합성곱 신경망은 86.5%, 순환 신경망은 83.1%였다. 512자를 넘는 문서에서는 순환 신경망의 정확도가 75% 아래로 떨어졌다.",
                   "사전학습 언어모델의 정확도가 가장 높았고 긴 문서에서 순환 신경망이 약했다.")]},
    {"doc_id": "JAKO202400002", "title": "도시 열섬 완화를 위한 옥상 녹화의 효과 분석", "author": "이준호",
     "entire": (("이 연구는 서울 도심 건물 40동을 대상으로 옥상 녹화가 건물 표면 온도와 실내 냉방 에너지에 미치는 영향을 측정하였다. "
                "여름철 한낮 옥상 녹화 건물의 표면 온도는 일반 옥상보다 평균 18도 낮았고 냉방 에너지 사용량은 12% 줄었다. "
                "녹화 면적이 넓을수록 효과가 커지는 경향이 확인되었다."),
                "옥상 녹화 건물은 여름철 표면 온도가 평균 18도 낮고 냉방 에너지를 12% 덜 썼으며 녹화 면적이 넓을수록 효과가 컸다."),
     "sections": [("측정은 2023년 7월과 8월 두 달 동안 열화상 카메라와 전력 계량기를 이용하여 이루어졌다. 비교를 위해 같은 지역의 일반 옥상 건물 40동도 함께 측정하였다.",
                   "2023년 여름 두 달 동안 녹화 건물과 일반 건물 각 40동의 온도와 전력을 측정하였다.")]},
    {"doc_id": "JAKO202400003", "title": "고령층의 디지털 금융 서비스 이용 장벽 연구", "author": "박민지",
     "entire": (("본 연구는 만 65세 이상 고령층 800명을 대상으로 모바일 뱅킹 이용 실태와 장벽을 조사하였다. "
                "응답자의 58%가 모바일 뱅킹을 이용하지 않는다고 답했으며 가장 큰 이유로 보안에 대한 불안과 복잡한 인증 절차를 꼽았다. "
                "연구진은 큰 글씨 화면과 음성 안내, 창구 연계 교육이 필요하다고 제안하였다."),
                "고령층의 58%가 보안 불안과 복잡한 인증 때문에 모바일 뱅킹을 쓰지 않아 쉬운 화면과 교육이 필요하다."),
     "sections": [("설문은 전국 8개 도시의 복지관과 은행 창구에서 대면으로 진행되었다. 응답자의 평균 나이는 72세였다.",
                   "8개 도시에서 평균 72세 고령층을 대면 설문하였다.")]},
]
PATENTS = [
    {"doc_id": "1020240000101", "title": "음식물 쓰레기 건조 장치", "ipc": "B09B 3/00",
     "sections": [(("(과제) 가정에서 발생하는 음식물 쓰레기를 냄새 없이 빠르게 건조하는 장치를 제공한다. "
                   "(해결수단) 회전 드럼과 열풍기, 활성탄 필터를 포함하고 드럼 안의 습도에 따라 열풍 온도를 자동으로 조절한다."),
                   "습도에 따라 열풍 온도를 조절하는 회전 드럼과 활성탄 필터로 음식물 쓰레기를 냄새 없이 건조하는 장치."),
                  ("(해결수단) 드럼 내부에 분쇄 날을 두어 건조와 동시에 쓰레기를 잘게 부수어 부피를 줄인다.",
                   "드럼 안의 분쇄 날로 건조하면서 쓰레기 부피를 줄인다.")]},
    {"doc_id": "1020240000202", "title": "보행자 감지 기능을 갖춘 횡단보도 조명 시스템", "ipc": "H05B 47/105",
     "sections": [(("(과제) 야간에 횡단보도를 건너는 보행자가 운전자 눈에 잘 띄도록 한다. "
                   "(해결수단) 적외선 센서로 보행자를 감지하면 바닥 조명과 상부 조명의 밝기를 높이고 접근하는 차량에 경고 신호를 보낸다."),
                   "보행자를 감지하면 횡단보도 조명을 밝히고 차량에 경고 신호를 보내는 시스템.")]},
]


def paper_summary_file() -> list:
    """The 2023 release of AIHub 90 wraps the file in a top-level list; ``orginal_text`` as published."""
    data = []
    for p in PAPERS:
        data.append({"doc_type": "논문", "doc_id": p["doc_id"], "title": p["title"], "date": "2024", "reg_no": None, "ipc": None,
                     "issued_by": "한국학술지", "author": p["author"],
                     "summary_entire": [{"orginal_text": p["entire"][0], "summary_text": p["entire"][1]}],
                     "summary_section": [{"orginal_text": o, "summary_text": s} for o, s in p["sections"]]})
    return [{"data": data}]


def patent_summary_file() -> dict:
    """Patent folder: section summaries only."""
    return {"data": [{"doc_type": "특허", "doc_id": p["doc_id"], "title": p["title"], "date": "20240105", "reg_no": p["doc_id"],
                      "ipc": p["ipc"], "issued_by": "특허청", "author": None,
                      "summary_section": [{"orginal_text": o, "summary_text": s} for o, s in p["sections"]]} for p in PATENTS]}


# ---------------------------------------------------------------- book (AIHub 93) and report (AIHub 582) passages
BOOKS = [
    ("우리 동네 식물 산책", "정하늘", ("골목길 담장 아래에서 자라는 민들레는 바람에 씨앗을 멀리 날려 보내 새로운 땅을 찾는다. "
     "민들레 씨앗에 달린 솜털은 작은 낙하산처럼 바람을 타고 수 킬로미터를 날아가기도 한다. "
     "씨앗이 내려앉은 곳이 척박한 보도블록 틈이라도 민들레는 깊게 뿌리를 내려 꽃을 피운다."),
     "민들레는 솜털 달린 씨앗을 바람에 날려 멀리 퍼뜨리고 척박한 곳에서도 깊게 뿌리내려 꽃을 피운다."),
    ("처음 만나는 경제 이야기", "한도윤", ("물건 값은 사려는 사람과 팔려는 사람이 만나는 시장에서 정해진다. "
     "사려는 사람이 많아지면 값이 오르고, 팔려는 사람이 많아지면 값이 내려간다. "
     "이렇게 수요와 공급이 맞아떨어지는 지점의 가격을 균형 가격이라고 부른다."),
     "가격은 시장에서 수요와 공급에 따라 오르내리며 둘이 맞아떨어지는 가격을 균형 가격이라고 한다."),
    ("바다를 건넌 조선의 기록", "윤서진", ("조선 후기 통신사는 일본으로 건너가 두 나라의 외교 관계를 이어 갔다. "
     "통신사 일행에는 문인과 화원, 의원이 함께해 학문과 예술을 교류하였다. "
     "그들이 남긴 사행록에는 바닷길의 어려움과 일본 도시의 풍경이 자세히 적혀 있다."),
     "조선 후기 통신사는 외교와 함께 학문과 예술을 교류했고 사행록에 여정과 일본 풍경을 기록하였다."),
    ("생활 속 과학 실험", "오지훈", ("차가운 물이 든 컵 바깥에 물방울이 맺히는 것은 공기 속 수증기가 차가운 컵 표면에서 식어 물로 바뀌기 때문이다. "
     "이 현상을 응결이라고 한다. 아침 풀잎에 맺힌 이슬도 같은 원리로 생긴다."),
     "차가운 표면에서 공기 중 수증기가 식어 물방울이 되는 현상을 응결이라고 하며 이슬도 이렇게 생긴다."),
]
REPORTS = [
    ("국회 보건복지위원회 회의록", "국회사무처", ("위원장은 감염병 대응 인력 확충 법안을 상정하고 정부 측 의견을 물었다. "
     "보건복지부 차관은 역학조사관 정원을 두 배로 늘리되 지방자치단체의 인건비 부담을 국비로 지원하겠다고 답하였다. "
     "위원들은 인력 확충과 함께 처우 개선 방안을 구체적으로 마련하라고 요구하였다."),
     "보건복지위원회는 감염병 대응 인력 확충 법안을 논의했고 정부는 역학조사관 정원을 두 배로 늘리고 인건비를 국비로 지원하겠다고 밝혔다."),
    ("정책 브리핑: 탄소중립 포인트 제도", "환경부", ("탄소중립 포인트 제도는 다회용기 사용, 전자영수증 발급 같은 친환경 활동을 한 국민에게 포인트를 주는 제도이다. "
     "참여자는 한 해 최대 7만 원까지 현금처럼 쓸 수 있는 포인트를 받는다. "
     "환경부는 참여 기업을 늘려 더 많은 생활 속 활동이 포인트로 이어지게 할 계획이다."),
     "탄소중립 포인트 제도는 친환경 활동에 연 최대 7만 원의 포인트를 주며 환경부는 참여 기업을 늘릴 계획이다."),
    ("연설문: 과학의 날 기념사", "과학기술정보통신부", ("오늘 우리는 과학기술로 나라의 미래를 열어 온 모든 분께 감사를 드립니다. "
     "정부는 기초연구 예산을 꾸준히 늘리고 젊은 연구자가 안정적으로 연구에 몰두할 수 있는 환경을 만들겠습니다. "
     "과학기술이 국민의 삶을 바꾸는 힘이 되도록 함께 노력합시다."),
     "과학의 날을 맞아 정부는 기초연구 예산 확대와 젊은 연구자 지원을 약속하며 과학기술이 삶을 바꾸는 힘이 되자고 말하였다."),
]


def book_passage(n: int, book: tuple) -> dict:
    name, author, passage, summary = book
    return {"metadata": {"doc_id": f"B{n:04d}", "doc_name": name, "author": author, "publisher": "한글출판",
                         "kdc_label": "기술과학", "passage_id": f"B{n:04d}-01"}, "passage": passage, "summary": summary}


def report_passage(n: int, report: tuple) -> dict:
    name, publisher, passage, summary = report
    return {"Meta(Acqusition)": {"doc_id": f"R{n:04d}", "doc_type": "보고서", "doc_name": name, "author": None, "publisher": publisher},
            "Meta(Refine)": {"passage_id": f"R{n:04d}-01", "passage": passage, "passage_Cnt": len(passage)},
            "Annotation": {"summary1": summary, "summary2": None, "summary3": None, "summary_3_cnt": 0}}


# ---------------------------------------------------------------- KISTI papers (title, abstract, keywords)
KISTI_PAPERS = [
    ("한국어 뉴스 기사의 자동 요약을 위한 문장 중요도 추정",
     ("<h1>요 약</h1><p>본 논문은 한국어 뉴스 기사에서 핵심 문장을 고르기 위해 문장의 위치, 개체명 빈도, 제목과의 유사도를 결합한 중요도 추정 방법을 제안한다.</p>"
     "<p>제안 방법은 1만 건의 뉴스 요약 자료에서 기존 방법보다 ROUGE-1 점수가 3.4점 높았다.</p>"),
     ["자동 요약", "문장 중요도", "뉴스 기사", "ROUGE"]),
    ("스마트팜 온실의 습도 예측을 위한 경량 신경망",
     "<h1>요 약</h1><p>온실 내부 습도를 30분 앞서 예측하는 경량 신경망을 설계하였다. 모델은 온도, 일사량, 환기창 개폐 정보를 입력으로 사용하며 저가형 제어기에서도 실시간으로 동작한다.</p>",
     ["스마트팜", "습도 예측", "경량 신경망", "온실 제어"]),
    ("해양 미세플라스틱의 연안 분포 특성",
     "남해 연안 12개 정점에서 채취한 해수와 퇴적물의 미세플라스틱 농도를 분석하였다. 하구와 양식장 주변에서 농도가 높았으며 폴리에틸렌과 폴리프로필렌이 전체의 70%를 차지하였다.",
     ["미세플라스틱", "연안", "남해", "퇴적물"]),
    ("지진 조기경보를 위한 스마트폰 가속도 센서 활용",
     "스마트폰에 내장된 가속도 센서 자료를 모아 지진파를 조기에 감지하는 방법을 연구하였다. 실험 지역에서 기존 관측망보다 평균 2.1초 빨리 지진을 감지하였다.",
     ["지진 조기경보", "가속도 센서", "스마트폰", "크라우드소싱"]),
    ("대학생의 수면 시간과 학업 성취의 관계",
     "대학생 620명의 수면 기록과 학점을 1년 동안 추적하였다. 하루 평균 수면이 6시간 미만인 학생은 7시간 이상 자는 학생보다 평균 학점이 0.3점 낮았다.",
     ["수면", "학업 성취", "대학생", "종단 연구"]),
    ("공공 자전거 대여 수요의 시공간 분석",
     "<p>서울시 공공 자전거 대여 기록 3천만 건을 분석하여 시간대와 대여소 위치에 따른 수요 유형을 다섯 가지로 나누었다. 출퇴근 시간에는 지하철역 주변 대여소의 수요가 크게 늘었다.</p>",
     ["공공 자전거", "수요 분석", "시공간 군집", "도시 교통"]),
    ("전통 발효 식품의 유산균 다양성",
     "전국 9개 지역의 된장과 김치에서 분리한 유산균 340주의 유전자 분석 결과 지역에 따라 우점 균종이 뚜렷이 달랐다. 일부 균주는 항산화 활성이 높게 나타났다.",
     ["발효 식품", "유산균", "된장", "김치"]),
]
KISTI_CP949_PAPERS = [
    ("농촌 고령 인구의 의료 접근성 평가",
     "농촌 지역 고령 인구가 가장 가까운 병원까지 이동하는 시간을 도로망 자료로 계산하였다. 읍면 지역 주민의 평균 이동 시간은 도시 지역의 세 배에 이르렀다.",
     ["의료 접근성", "농촌", "고령 인구"]),
    ("전자문서 장기 보존을 위한 파일 형식 선정 기준",
     "공공기관의 전자문서를 오랫동안 읽을 수 있게 보존하려면 공개 규격, 널리 쓰이는 정도, 변환 손실을 기준으로 파일 형식을 골라야 한다.",
     ["전자문서", "장기 보존", "파일 형식"]),
]


def kisti_paper(n: int, paper: tuple) -> dict:
    title, abstract, keywords = paper
    return {"doc_id": f"KISTI{n:05d}", "title": {"ko": title, "en": None}, "authors": ["홍길동"],
            "keywords": {"ko": keywords, "en": []}, "abstract": {"ko": abstract, "en": None}, "body_text": []}


# ---------------------------------------------------------------- science and technology MRC (AIHub 71533)
# One JSON per document; each question has a type, wrong answers for multiple choice, clue spans
# and sometimes a paraphrase (``question-2``). The download arrives as ``.zip.part<offset>`` chunks.
TECH_DOCS = [
    ("TECH-2024-0001", "수소연료전지 자동차의 저온 시동 성능 개선", "Improving cold start of fuel cell vehicles",
     ("수소연료전지 자동차는 영하의 날씨에 시동을 걸면 전지 안에 남아 있던 물이 얼어 반응 면적이 줄어든다. "
     "이 때문에 제조사들은 운전을 마칠 때 공기를 불어 넣어 전지 내부의 물을 빼내는 퍼지 운전을 한다. "
     "최근에는 전지 냉각수를 미리 데우는 히터를 달아 영하 30도에서도 30초 안에 시동이 걸리도록 개선하였다."),
     [("다지선다형", "운전을 마칠 때 연료전지 내부의 물을 빼내는 운전을 무엇이라 하는가?", "퍼지 운전",
       ["회생 제동", "예열 운전", "공회전"], "운전을 마칠 때 공기를 불어 넣어 전지 내부의 물을 빼내는 퍼지 운전을 한다",
       "연료전지 안의 물을 제거하려고 주행 종료 시 하는 운전의 이름은?"),
      ("Yes/No 단문형", "영하의 날씨에는 연료전지 내부의 물이 얼 수 있는가?", "예", [],
       "영하의 날씨에 시동을 걸면 전지 안에 남아 있던 물이 얼어", None),
      ("단답형", "개선된 연료전지 자동차는 영하 몇 도에서도 30초 안에 시동이 걸리는가?", "영하 30도", [],
       "영하 30도에서도 30초 안에 시동이 걸리도록", "몇 도의 추위에서도 30초 안에 시동이 가능하도록 개선되었는가?")]),
    ("TECH-2024-0002", "콘크리트 균열을 스스로 메우는 자기치유 기술", "Self-healing concrete",
     ("자기치유 콘크리트는 반죽할 때 석회석을 만드는 세균의 포자와 영양분을 함께 섞어 만든다. "
     "균열이 생겨 물이 스며들면 잠들어 있던 포자가 깨어나 탄산칼슘을 만들고, 이것이 균열을 메운다. "
     "실험에서는 폭 0.5밀리미터 이하의 균열이 28일 안에 대부분 메워졌다. 다만 세균이 살아남기 어려운 강알칼리 환경이 실용화의 걸림돌로 꼽힌다."),
     [("다지선다형", "자기치유 콘크리트에서 균열을 메우는 물질은?", "탄산칼슘", ["규산나트륨", "수산화칼슘", "에폭시 수지"],
       "포자가 깨어나 탄산칼슘을 만들고, 이것이 균열을 메운다", None),
      ("서술형", "자기치유 콘크리트의 실용화를 어렵게 하는 요인은 무엇인가?", "세균이 살아남기 어려운 강알칼리 환경", [],
       "세균이 살아남기 어려운 강알칼리 환경이 실용화의 걸림돌로 꼽힌다", None),
      ("단답형", "실험에서 28일 안에 대부분 메워진 균열의 폭은?", "1밀리미터 이상", [], "폭 0.5밀리미터 이하의 균열이", None)]),
]


def tech_document(doc: tuple) -> dict:
    """The last question of the second document has an answer that is not in its passage (planted)."""
    doc_id, title, title_en, context, questions = doc
    qas = []
    for n, (answer_type, question, answer, wrong, clue, paraphrase) in enumerate(questions):
        start = context.find(clue)
        qas.append({"question_id": f"{doc_id}-Q{n + 1}", "question-1": question, "question-2": paraphrase,
                    "answer": answer, "answer_start": context.find(answer), "answer_type": answer_type, "wrong_answer": wrong,
                    "clue": [{"clue_text": clue, "clue_start": start, "clue_end": start + len(clue)}]})
    return {"dataset_info": {"dataset_name": "기술과학 문서 기계독해 데이터", "version": "1.0", "doc_count": 1},
            "dataset": {"doc_id": doc_id, "doc_title": {"kor": title, "eng": title_en}, "doc_field": "공학",
                        "context_info": [{"context_id": f"{doc_id}-C1", "context": context, "qas": qas}]}}


# ---------------------------------------------------------------- KISTI Korean paper QA (one JSON per paper)
KISTI_QA_PAPERS = [
    ("JAKO202400000101",
     ("1. 서론\n도심 가로수는 여름철 보행로의 기온을 낮추지만 수종에 따라 그늘의 크기와 증산량이 다르다. "
     "본 연구는 서울의 대표 가로수인 은행나무, 느티나무, 양버즘나무가 보행로 체감 온도에 미치는 영향을 비교하였다.\n\n"
     "2. 연구 방법\n2023년 8월 한 달 동안 가로수 아래와 가로수가 없는 구간에서 흑구 온도와 습도를 10분 간격으로 측정하였다.\n\n"
     "3. 결과\n느티나무 아래의 체감 온도가 가로수 없는 구간보다 평균 4.1도 낮아 감소 폭이 가장 컸다. 은행나무는 잎이 작아 감소 폭이 1.8도에 그쳤다."),
     [("하", "연구에서 비교한 가로수 수종은 무엇인가?", "은행나무, 느티나무, 양버즘나무", "가로수"),
      ("중", "체감 온도 감소 폭이 가장 큰 수종은?", "느티나무", "체감 온도"),
      ("상", "은행나무의 체감 온도 감소 폭이 작은 이유는?", "잎이 작아", "은행나무")]),
    ("JAKO202400000102",
     ("1. 서론\n전기차 배터리는 사용 후에도 초기 용량의 70% 이상이 남아 있어 에너지 저장 장치로 다시 쓸 수 있다. "
     "본 연구는 사용 후 배터리의 잔존 수명을 빠르게 판정하는 방법을 제안한다.\n\n"
     "2. 제안 방법\n충전 곡선의 전압 변화율과 내부 저항을 입력으로 하는 회귀 모델을 만들어 15분 충전 자료만으로 잔존 용량을 추정하였다.\n\n"
     "3. 결과\n배터리 120개를 시험한 결과 추정 오차는 평균 2.3%였다."),
     [("하", "사용 후 전기차 배터리에는 초기 용량의 몇 퍼센트 이상이 남아 있는가?", "70%", "사용 후 배터리"),
      ("중", "잔존 용량 추정에 필요한 충전 자료의 길이는?", "15분", "잔존 용량"),
      ("상", "회귀 모델의 입력으로 쓴 두 가지 값은?", "충전 곡선의 전압 변화율과 내부 저항", "회귀 모델")]),
]


def kisti_qa_paper(paper: tuple) -> dict:
    doc_id, context, questions = paper
    return {"doc_id": doc_id, "context": context, "qas": [
        {"level": level, "question": question, "answer": {"answer_text": answer, "answer_start": context.find(answer)},
         "keyword": {"keyword_text": keyword, "keyword_start": context.find(keyword)}}
        for level, question, answer, keyword in questions]}


# ---------------------------------------------------------------- plain JSONL with its own column names
PLAIN_ROWS = [
    {"id": "P1", "document": "지역 도서관은 이번 달부터 평일 운영 시간을 밤 10시까지 늘린다. 야간에는 무인 대출기와 열람실만 운영된다.",
     "abstract": "지역 도서관이 평일 운영 시간을 밤 10시까지 늘린다."},
    {"id": "P2", "document": "구청은 겨울철 한파에 대비해 버스 정류장 30곳에 바람막이 쉼터를 설치하였다. 쉼터는 3월까지 운영된다.",
     "abstract": "구청이 버스 정류장 30곳에 한파 쉼터를 설치하였다."},
    {"id": "P3", "document": "시는 음식점의 일회용 컵 사용을 줄이기 위해 다회용 컵 반납기를 주요 상가에 설치하였다.",
     "abstract": "시가 일회용 컵을 줄이려 다회용 컵 반납기를 설치하였다."},
    {"id": "P4", "document": "  ", "abstract": "본문이 비어 있는 행은 격리되어야 한다."},
]


# ---------------------------------------------------------------- writing the zips
class Cp949NameInfo(zipfile.ZipInfo):
    """A zip entry whose name is CP949 without the UTF-8 flag, as Korean Windows zip tools write."""

    def _encodeFilenameFlags(self):
        return self.filename.encode("cp949"), self.flag_bits & ~0x800


def dumps(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, indent=1).encode("utf-8")


def write_zip(path: Path, members: dict[str, bytes], cp949_names: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = (Cp949NameInfo if cp949_names else zipfile.ZipInfo)(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, FIXED_TIME), data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def write_parts(folder: Path, name: str, data: bytes, size: int) -> None:
    """``name.zip.part<offset>``: how large AIHub downloads arrive, read by ingest without joining them."""
    folder.mkdir(parents=True, exist_ok=True)
    for offset in range(0, len(data), size):
        (folder / f"{name}.part{offset}").write_bytes(data[offset:offset + size])


def broken_admin_span(doc: dict) -> dict:
    """Plant an empty context and an answer that is not in its passage (both must be quarantined)."""
    doc["data"].append({"doc_id": "D0000100000099", "doc_title": "첨부파일만 있는 공문", "doc_source": "행정안전부",
                        "doc_published": 20240120, "paragraphs": [{"context": "", "context_id": "D0000100000099-1", "qas": [
                            {"qa_type": 1, "question_id": "D0000100000099-1-0", "question": "첨부파일의 제목은 무엇인가요?",
                             "is_impossible": False, "answers": {"text": "붙임 1", "answer_start": 0}}]}]})
    first = doc["data"][0]["paragraphs"][0]
    first["qas"].append({"qa_type": 1, "question_id": "D0000100000001-1-9", "question": "청년 월세 지원 사업의 담당 부서는 어디인가요?",
                         "is_impossible": False, "answers": {"text": "주택정책과", "answer_start": 12}})
    return doc


def main() -> None:
    if RAW.exists():
        shutil.rmtree(RAW)
    admin = RAW / "aihub_admin_mrc"
    for stem, (kind, code) in ADMIN_FILES.items():
        doc = admin_mrc_file(kind, code)
        if stem == "TL_span_extraction":
            doc = broken_admin_span(doc)
        write_zip(admin / f"{stem}.zip", {f"{stem}.json": dumps(doc)})
    write_zip(admin / "TL_tableqa.zip", {"TL_tableqa.json": dumps(admin_tableqa_file())})

    truncated = dumps(news_mrc_file())
    write_zip(RAW / "aihub_news_mrc" / "TL_news_span.zip", {
        "TL_news_span.json": dumps(news_mrc_file()),
        "TL_news_span_part2.json": truncated[: len(truncated) * 2 // 3],  # a release file cut short
        "README.txt": "뉴스 기사 기계독해 데이터 설명서".encode(),
    })
    write_zip(RAW / "aihub_table_qa" / "TL_table_qa.zip", {"TL_table_qa.json": dumps(table_qa_file())})

    summary = RAW / "aihub_doc_summary"
    write_zip(summary / "법률_train_original.zip", {"법률_train_original.json": dumps(summary_documents("법률", LAW_DOCS, False, 100))},
              cp949_names=True)
    write_zip(summary / "신문기사_train_original.zip", {"신문기사_train_original.json": dumps(summary_documents("신문기사", NEWS_DOCS, True, 200))})
    # The editorial file repeats one news article exactly and another with its closing
    # punctuation changed (planted exact and near duplicates).
    title, paragraphs, extractive, abstractive = NEWS_DOCS[1]
    edited = [*paragraphs[:-1], [*paragraphs[-1][:-1], paragraphs[-1][-1].replace("개방된다.", "개방된다!")]]
    editorials = summary_documents("사설", EDITORIAL_DOCS + NEWS_DOCS[:1] + [(title, edited, extractive, abstractive)], True, 300)
    write_zip(summary / "사설_train_original.zip", {"사설_train_original.json": dumps(editorials)})

    write_zip(RAW / "aihub_paper_summary" / "논문요약_2023.zip", {"논문요약_2023.json": dumps(paper_summary_file())})
    write_zip(RAW / "aihub_patent_summary" / "특허_section.zip", {"특허_section.json": dumps(patent_summary_file())})
    write_zip(RAW / "aihub_book_summary" / "TL_도서요약.zip",
              {f"도서_{n:03d}.json": dumps(book_passage(n, b)) for n, b in enumerate(BOOKS)})
    reports = {f"보고서_{n:03d}.json": dumps(report_passage(n, r)) for n, r in enumerate(REPORTS)}
    unlabelled = report_passage(99, ("국무회의 브리핑", "문화체육관광부", "요약이 아직 달리지 않은 단락이다.", None))
    reports["보고서_099.json"] = dumps(unlabelled)  # every summary null: a missing_field reject
    write_zip(RAW / "aihub_report_summary" / "TL_보고서요약.zip", reports)

    kisti = RAW / "kisti_paper"
    kisti.mkdir(parents=True)
    (kisti / "kisti_papers.json").write_bytes(dumps([kisti_paper(n, p) for n, p in enumerate(KISTI_PAPERS)]))
    cp949 = json.dumps([kisti_paper(100 + n, p) for n, p in enumerate(KISTI_CP949_PAPERS)], ensure_ascii=False)
    (kisti / "kisti_papers_cp949.json").write_bytes(cp949.encode("cp949"))

    tech = zip_bytes({f"TL_기술과학문서/{d[0]}.json": dumps(tech_document(d)) for d in TECH_DOCS})
    write_parts(RAW / "aihub_tech_mrc", "TL_기술과학문서.zip", tech, 1024)
    labels = zip_bytes({f"{p[0]}.json": dumps(kisti_qa_paper(p)) for p in KISTI_QA_PAPERS})
    write_zip(RAW / "kisti_paper_qa" / "국내논문_QA.zip", {"Training/라벨링데이터.zip": labels})  # a zip inside the zip

    plain = RAW / "local_notices"
    plain.mkdir(parents=True)
    lines = "\n".join(json.dumps({"id": r["id"], "text": r["document"], "summary": r["abstract"]}, ensure_ascii=False) for r in PLAIN_ROWS)
    (plain / "notices.jsonl").write_bytes("\ufeff".encode() + lines.encode() + b"\n")


if __name__ == "__main__":
    main()
