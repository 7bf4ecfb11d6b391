"""Each adapter on hand-written files in its real shape, read through the whole ingest loop."""

from __future__ import annotations

import io
import json
import pkgutil
import random
import threading
import time
import zipfile

import ijson
import pytest
from ingest_fixtures import (
    CONTEXT,
    KISTI_QA_CONTEXT,
    admin_mrc,
    every_admin_qa,
    kisti_qa_paper,
    paper_summary,
    run_ingest,
    summary_documents,
    tech_mrc_document,
    write_json,
    write_zip,
)

from kositp.ingest import adapters, readers
from kositp.ingest.core import _parsed_whole
from kositp.ingest.normalize import _clean, _is_tidy, html_to_text, normalize_list, normalize_text
from kositp.ingest.readers import (
    HEAD_BYTES,
    READ_CHUNK,
    ConcatenatedFile,
    HeadThenRest,
    ReadAhead,
    Source,
    Utf8Transcoder,
    open_utf8,
)
from kositp.ingest.record_completion import complete
from kositp.records import RECORD_SCHEMA, content_digests, record_ids


def test_normalize_keeps_masks_and_tidies():
    assert normalize_text("가\u0000나  다\t\t라\r\n\n\n\n마 ***-****") == "가나 다 라\n\n마 ***-****"
    assert normalize_text("\u1100\u1161") == "가"  # NFD jamo become one NFC syllable
    assert html_to_text("<h1>요 약</h1><p>첫 문단&amp;</p><p>둘째</p>") == "요 약\n\n첫 문단&\n\n둘째"
    assert normalize_text("첫 줄\n둘째 줄\n\n셋째 줄") == "첫 줄\n둘째 줄\n\n셋째 줄"
    assert normalize_text("첫 줄 \n 둘째 줄\n\n\n셋째 줄") == "첫 줄\n둘째 줄\n\n셋째 줄"


def test_text_called_tidy_is_what_the_clean_up_leaves_alone():
    """The shortcut in ``_normalize_str`` must never skip a change (nor miss text it could skip):
    random mixes of the characters the clean-up acts on, around Korean syllables."""
    pieces = ["가", "나다", " ", "  ", "\n", "\n\n", "\t", "\u00a0", "\u3000", "\u200b", "\ufeff", "\x00", "\x7f", "\x0b"]
    rng = random.Random(7)
    tidy = 0
    for _ in range(20000):
        text = "".join(rng.choices(pieces, weights=[30, 30, 10, 1, 10, 2, 1, 1, 1, 1, 1, 1, 1, 1], k=rng.randint(1, 12)))
        assert _is_tidy(text) == (_clean(text) == text), repr(text)
        tidy += _is_tidy(text)
    assert 2000 < tidy < 18000  # both branches were exercised


def test_sentences_completed_as_each_sentence_normalized():
    """The shortcut for a document's sentences (:func:`complete`) gives what normalizing each one
    gives: random sentences around the characters normalization acts on, including whitespace
    that ``strip`` removes but a tidy text may hold, and strings that are not sentences."""
    pieces = ["가", "나다", "시는", " ", "  ", "\n", "\u2002", "\u00a0", "\u1100\u1161", "e\u0301", "\t", "\x00", ""]
    rng = random.Random(11)
    shortcut = 0
    for _ in range(5000):
        sentences = ["".join(rng.choices(pieces, weights=[30, 30, 20, 8, 1, 2, 1, 1, 1, 1, 1, 1, 2], k=rng.randint(0, 6)))
                     for _ in range(rng.randint(1, 4))]
        columns = {name: [None] for name in ("title", "question", "clue", "doc_id", "options", "keywords")}
        text = normalize_text(" ".join(sentences)) or None
        columns.update(sentences=[sentences], text=[text])
        complete(columns)
        assert columns["sentences"] == [normalize_list(sentences)], repr(sentences)
        shortcut += columns["sentences"][0] is sentences
    assert 500 < shortcut < 4500  # both ways were taken
    mixed = {name: [None, None] for name in ("title", "question", "clue", "doc_id", "options", "keywords")}
    mixed.update(sentences=[[1, "둘"], "한 문장"], text=["1 둘", "한 문장"])
    complete(mixed)
    assert mixed["sentences"] == [["1", "둘"], ["한 문장"]]


@pytest.mark.parametrize(
    "document",
    [
        '{"passage": "도서관은 오전 아홉 시에 문을 연다.", "summary": "개관 시간", "id": 7, "score": 0.5}',
        '{"passage": "가", "index": -0, "big": 9223372036854775807, "e": 1E2, "small": -9223372036854775807}',
        '{"lowest": -9223372036854775808}',
        '{"a": 1, "a": 2, "nested": [[{"b": null}], true, false]}',
        '  ["목록", "이다"]  ',
        '{"over": 9223372036854775808}',
        '{"under": -9223372036854775809}',
        '{"inf": 1e400}',
        '{"nan": NaN}',
        '{"lone": "\\ud800 깨진 문자"}',
        '{"pair": "\\ud83d\\ude00"}',
        '{"a": 1} {"b": 2}',
        '{"cut": "끝나지 않은',
        "",
    ],
)
def test_a_short_file_is_parsed_at_once_only_as_ijson_would_parse_it(document):
    """The fast path for short one-document files gives what ijson gives, or hands the file back to ijson."""
    data = document.encode("utf-8")
    parsed = _parsed_whole(HeadThenRest(data, io.BytesIO(b""), whole=True))
    try:
        streamed = list(ijson.items(io.BytesIO(data), "", use_float=True))
    except ijson.JSONError:
        streamed = None
    assert parsed is None or parsed == streamed
    if document.startswith(('{"passage"', '{"a": 1, "a"')):
        assert parsed is not None  # ordinary documents do take the fast path


def test_admin_mrc_every_qa_type(tmp_path):
    path = write_zip(tmp_path / "raw" / "aihub_admin_mrc" / "TL_span_extraction.zip",
                     {"TL_span_extraction.json": json.dumps(admin_mrc(every_admin_qa()), ensure_ascii=False).encode()})
    result, records, quarantine = run_ingest(tmp_path, tmp_path / "raw")
    assert quarantine.empty
    assert records.columns.tolist() == RECORD_SCHEMA.names
    by_type = records.set_index("qa_type")
    assert set(by_type.index) == {"span", "long", "yes_no", "multiple_choice", "unanswerable"}
    assert by_type.loc["yes_no", "answers"].tolist() == ["아니요"]
    assert by_type.loc["multiple_choice", "options"].tolist() == ["주민센터", "경찰서", "우체국", "은행"]
    assert by_type.loc["multiple_choice", "clue"] == "가까운 주민센터를 방문하여 본인 확인을 거친 뒤"
    assert by_type.loc["unanswerable", "is_impossible"] and len(by_type.loc["unanswerable", "answers"]) == 0
    span = by_type.loc["span"]
    assert span["text"][int(span["answer_start"]):].startswith("2024년 3월 4일부터")
    assert "***-****-****" in span["text"]
    assert set(records.source_dataset) == {"aihub_admin_mrc"}
    assert records.location.iloc[0] == f"{path}!TL_span_extraction.json#/data/0/paragraphs/0/qas/0"
    assert records.record_id.is_unique and records.record_id.str.len().eq(24).all()
    assert result.summary()["by_format"] == {"mrc": 5}


def test_record_ids_are_stable_across_runs(tmp_path):
    write_json(tmp_path / "raw" / "a.json", admin_mrc(every_admin_qa()))
    first = run_ingest(tmp_path / "one", tmp_path / "raw")[1]
    second = run_ingest(tmp_path / "two", tmp_path / "raw")[1]
    assert first.record_id.tolist() == second.record_id.tolist()


def test_record_ids_cover_where_a_record_was_read_and_all_it_says():
    base = {"source_dataset": ["aihub_admin_mrc"], "location": ["a.zip!b.json#/data/0/paragraphs/0/qas/0"],
            "text": [CONTEXT], "question": ["발급은 어디에서 하나요?"], "answers": [["주민센터"]], "summary": [None]}

    def id_of(**change: object) -> str:
        columns = base | {name: [value] for name, value in change.items()}
        return record_ids(columns, content_digests(columns))[0]

    changed = [id_of(source_dataset="aihub_news_mrc"), id_of(location="a.zip!b.json#/data/0/paragraphs/0/qas/1"),
               id_of(text=CONTEXT + " 문의는 민원실로."), id_of(question="발급은 언제 하나요?"),
               id_of(answers=["주민", "센터"]), id_of(answers=[]), id_of(summary="주민센터에서 발급")]
    assert id_of() == id_of() and len({id_of(), *changed}) == 1 + len(changed)


@pytest.mark.parametrize("shape", ["list", "singular"])
def test_mrc_answers_as_list_or_singular(tmp_path, shape):
    answer = {"text": "주민센터", "answer_start": CONTEXT.find("주민센터")}
    item = {"question": "발급은 어디에서 하나요?", "is_impossible": False}
    item.update({"answers": [answer]} if shape == "list" else {"answer": answer})
    write_json(tmp_path / "news.json", {"data": [{"doc_id": 7, "title": "뉴스", "paragraphs": [{"context": CONTEXT, "qas": [item]}]}]})
    records = run_ingest(tmp_path, tmp_path / "news.json")[1]
    assert records.answers.iloc[0].tolist() == ["주민센터"] and records.qa_type.iloc[0] == "span"
    assert records.doc_id.iloc[0] == "7"


def test_source_only_paragraphs_become_text_records(tmp_path):
    doc = admin_mrc([])
    del doc["data"][0]["paragraphs"][0]["qas"]
    records = run_ingest(tmp_path, write_json(tmp_path / "TS_span_extraction.json", doc))[1]
    assert records.kind.tolist() == ["text"]


def test_table_qa_with_title_and_singular_answer(tmp_path):
    context = "2024년 지역별 강수량이다.<br><table><tbody><tr><td>지역</td><td>강수량</td></tr><tr><td rowspan='2'>제주</td><td>1,820mm</td></tr></tbody></table>"
    doc = {"data": [{"doc_id": "T1", "paragraphs": [{"context": context, "table_title": "지역별 강수량",
                                                     "qas": [{"question": "제주의 강수량은?", "answer": {"text": "1,820mm", "answer_start": 70}}]}]}]}
    _result, records, _ = run_ingest(tmp_path, write_json(tmp_path / "TL_table.json", doc))
    row = records.iloc[0]
    assert (row.kind, row.qa_type, row.title, row.format) == ("table_qa", "table", "지역별 강수량", "table_qa")
    assert row.table_html.startswith("<table>") and row.table_html.endswith("</table>")
    assert row.text[row.answer_start:].startswith("1,820mm")


def test_document_summary_sentences_extractive_and_abstractive(tmp_path):
    records = run_ingest(tmp_path, write_json(tmp_path / "신문기사_train_original.json", summary_documents()))[1]
    first, second = records.iloc[0], records.iloc[1]
    assert first.sentences.tolist()[0] == "시는 다음 달부터 심야 버스 노선 네 개를 새로 운행한다."
    assert len(first.sentences) == 3 and first.text.endswith("500원 비싸다.")
    assert first.summary.startswith("시가 지하철") and second.summary == "구립 도서관이 밤 11시까지 연장 개방한다."
    assert first.clue.split("\n")[0] == "새 노선은 지하철 운행이 끝난 뒤 주요 환승역을 잇는다."
    assert set(records.kind) == {"summary"}


@pytest.mark.parametrize("wrapped", [False, True])
def test_paper_summary_misspelled_key_and_list_wrapper(tmp_path, wrapped):
    records = run_ingest(tmp_path, write_json(tmp_path / "paper.json", paper_summary(wrapped)))[1]
    assert len(records) == 2 and set(records.format) == {"paper_summary"}
    assert records.summary.tolist() == ["도시 숲 주변 미세먼지는 도로변보다 25% 낮았다.", "서울 공원 다섯 곳에서 계절별로 측정하였다."]
    assert records.location.iloc[1].endswith("/summary_section/0")


def test_book_and_report_passages(tmp_path):
    book = {"metadata": {"doc_name": "바다의 과학", "author": "김바다"}, "passage": "밀물과 썰물은 달의 인력 때문에 생긴다.",
            "summary": "조수는 달의 인력으로 생긴다."}
    report = {"Meta(Acqusition)": {"doc_id": "R1", "doc_name": "정책 브리핑"},
              "Meta(Refine)": {"passage_id": "R1-1", "passage": "정부는 전통시장 주차장 확충에 300억 원을 투입한다."},
              "Annotation": {"summary1": None, "summary2": "전통시장 주차장 확충에 300억 원 투입.", "summary3": None}}
    zipped = write_zip(tmp_path / "TL_요약.zip", {"book_001.json": json.dumps(book, ensure_ascii=False).encode(),
                                                 "report_001.json": json.dumps(report, ensure_ascii=False).encode()})
    records = run_ingest(tmp_path, zipped)[1]
    assert records.title.tolist() == ["바다의 과학", "정책 브리핑"]
    assert records.summary.tolist() == ["조수는 달의 인력으로 생긴다.", "전통시장 주차장 확충에 300억 원 투입."]


def test_kisti_paper_html_abstract_and_keywords(tmp_path):
    papers = [{"doc_id": "K1", "title": {"ko": "해양 쓰레기 분포", "en": "Marine debris"},
               "abstract": {"ko": "<h1>요 약</h1><p>남해안 해변 20곳의 쓰레기를 조사하였다.</p>"},
               "keywords": {"ko": ["해양 쓰레기", "남해안"]}},
              {"doc_id": "K2", "title": "갯벌 생태", "abstract": "갯벌의 저서생물 다양성을 조사하였다.", "keywords": "갯벌;생태"}]
    records = run_ingest(tmp_path, write_json(tmp_path / "kisti.json", papers))[1]
    assert records.text.tolist() == ["남해안 해변 20곳의 쓰레기를 조사하였다.", "갯벌의 저서생물 다양성을 조사하였다."]
    assert records.keywords.iloc[0].tolist() == ["해양 쓰레기", "남해안"] and records.keywords.iloc[1].tolist() == ["갯벌", "생태"]
    assert records.title.iloc[0] == "해양 쓰레기 분포" and set(records.kind) == {"paper"}


def test_plain_csv_with_column_mapping(tmp_path):
    path = tmp_path / "local.csv"
    path.write_text("번호,본문,요약\n1,구청이 공원 산책로를 정비한다.,산책로 정비\n", encoding="utf-8")
    records = run_ingest(tmp_path, path, columns={"text": "본문", "summary": "요약", "doc_id": "번호"})[1]
    assert (records.text.iloc[0], records.summary.iloc[0], records.doc_id.iloc[0]) == ("구청이 공원 산책로를 정비한다.", "산책로 정비", "1")


def test_format_override_beats_detection(tmp_path):
    path = write_json(tmp_path / "unknown_shape.json", paper_summary(False))
    assert run_ingest(tmp_path, path, format="paper_summary")[1].format.tolist() == ["paper_summary"] * 2


def test_cp949_and_bom_files(tmp_path):
    write_json(tmp_path / "raw" / "cp949.json", admin_mrc(every_admin_qa()[:1]), encoding="cp949")
    write_json(tmp_path / "raw" / "bom.json", paper_summary(False), bom=True)
    records = run_ingest(tmp_path, tmp_path / "raw")[1]
    assert sorted(records.format) == ["mrc", "paper_summary", "paper_summary"]
    assert records[records.format == "mrc"].answers.iloc[0].tolist() == ["2024년 3월 4일부터"]


def test_cp949_zip_member_names_are_decoded(tmp_path):
    path = tmp_path / "법률.zip"
    import zipfile

    class Cp949Name(zipfile.ZipInfo):
        def _encodeFilenameFlags(self):
            return self.filename.encode("cp949"), self.flag_bits & ~0x800

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(Cp949Name("법률_train_original.json"), json.dumps(summary_documents(), ensure_ascii=False))
    records = run_ingest(tmp_path, path)[1]
    assert records.source_file.iloc[0].endswith("!법률_train_original.json")


def test_tech_mrc_71533_answer_types_options_clue_and_paraphrase(tmp_path):
    path = write_zip(tmp_path / "raw" / "aihub_tech_mrc" / "TL_기술과학.zip",
                     {"TL_기술과학/TECH-0001.json": json.dumps(tech_mrc_document(), ensure_ascii=False).encode()})
    result, records, quarantine = run_ingest(tmp_path, tmp_path / "raw")
    assert quarantine.empty and set(records.format) == {"tech_mrc"} and set(records.kind) == {"mrc"}
    assert records.qa_type.tolist() == ["multiple_choice", "multiple_choice", "yes_no", "span", "long"]
    choice, paraphrase = records.iloc[0], records.iloc[1]
    assert choice.options.tolist() == sorted(["알루미늄 산화물", "탄소 나노튜브", "실리콘 산화물", "리튬 인산철"])
    assert choice.answers.tolist() == ["알루미늄 산화물"] and choice.clue == "양극재 표면을 알루미늄 산화물로 얇게 코팅하는 방법"
    assert paraphrase.question == "양극재 표면을 얇게 덮는 데 사용하는 소재는?"
    assert paraphrase.location == f"{path}!TL_기술과학/TECH-0001.json#/dataset/context_info/0/qas/0/question-2"
    assert paraphrase.options.tolist() == choice.options.tolist() and paraphrase.doc_id == choice.doc_id == "TECH-0001"
    assert records.iloc[2].answers.tolist() == ["아니요"]
    span = records.iloc[3]
    assert span.text[int(span.answer_start):].startswith("니켈, 코발트, 망간")
    assert set(records.title) == {"고니켈 양극재의 열 안정성 개선"}
    assert result.ledger.totals.read == 5


def test_kisti_qa_paper(tmp_path):
    records = run_ingest(tmp_path, write_json(tmp_path / "kisti_qa" / "JAKO202212345678901.json", kisti_qa_paper()))[1]
    assert set(records.format) == {"kisti_qa"} and set(records.qa_type) == {"span"}
    assert records.answers.map(list).tolist() == [["여섯 곳"], ["2.4배"], ["합류식 하수관로가 있는 지점"]]
    assert records.keywords.map(list).tolist() == [["도심 하천"], ["총인"], ["합류식 하수관로"]]
    third = records.iloc[2]
    assert third.text[int(third.answer_start):].startswith("합류식 하수관로") and third.doc_id == "JAKO202212345678901"


def test_kisti_qa_paper_longer_than_the_detection_head(tmp_path):
    """``qas`` comes after a full paper's text, out of sight of detection: the start decides."""
    context = KISTI_QA_CONTEXT + "\n\n3. 부록\n" + "측정 지점별 시료 채취 시각과 수온을 기록하였다. " * 3000
    assert len(context.encode()) > HEAD_BYTES
    records = run_ingest(tmp_path, write_json(tmp_path / "long.json", kisti_qa_paper(context)), max_chars=len(context))[1]
    assert len(records) == 3 and set(records.format) == {"kisti_qa"}


DETECTION_CASES = pytest.mark.parametrize(("shape", "expected"), [
    (lambda: admin_mrc(every_admin_qa()), "mrc"),
    (lambda: {"data": [{"paragraphs": [{"context": "표", "table_title": "제목", "qas": []}]}]}, "table_qa"),
    (summary_documents, "doc_summary"),
    (lambda: paper_summary(True), "paper_summary"),
    (lambda: {"passage": "본문", "summary": "요약", "metadata": {}}, "passage_summary"),
    (lambda: {"doc_id": "K1", "title": {"ko": "제목"}, "abstract": {"ko": "초록"}, "keywords": {"ko": ["열쇠말"]}}, "kisti_paper"),
    (tech_mrc_document, "tech_mrc"),
    (kisti_qa_paper, "kisti_qa"),
    (lambda: [kisti_qa_paper()], "kisti_qa"),
])


@DETECTION_CASES
def test_detection_picks_the_right_family(shape, expected):
    head = json.dumps(shape(), ensure_ascii=False, indent=1)
    assert adapters.detect(head).NAME == expected


@DETECTION_CASES
def test_an_adapter_another_also_accepts_says_it_is_more_specific(shape, expected):
    """The rule that orders detection, on one document of every family: any other adapter whose
    ``detect`` accepts the family's document is named in the family's ``MORE_SPECIFIC_THAN``."""
    head = json.dumps(shape(), ensure_ascii=False, indent=1)
    own = adapters.by_name(expected)
    others = {a.NAME for a in adapters.ADAPTERS if a is not own and a.detect(head)}
    assert others <= set(getattr(own, "MORE_SPECIFIC_THAN", ())), others


def test_detection_order_follows_the_declarations_not_the_listing():
    from types import SimpleNamespace

    general = SimpleNamespace(NAME="a_general")
    specific = SimpleNamespace(NAME="z_specific", MORE_SPECIFIC_THAN=("a_general",))
    other = SimpleNamespace(NAME="m_other")
    for listing in ([general, specific, other], [other, specific, general], [specific, general, other]):
        assert [a.NAME for a in adapters.ordered(listing)] == ["m_other", "z_specific", "a_general"]
    with pytest.raises(ValueError, match="'z_specific' is more specific than 'a_general', which is not an adapter"):
        adapters.ordered([specific, other])
    modules = {info.name for info in pkgutil.iter_modules(adapters.__path__)} - {"base"}
    assert {a.__name__.rsplit(".", 1)[1] for a in adapters.ADAPTERS} == modules


def split_zip(path, sizes) -> list[bytes]:
    data = path.read_bytes()
    chunks, start = [], 0
    for size in [*sizes, len(data)]:
        chunks.append(data[start:start + size])
        start += size
    return [c for c in chunks if c]


@pytest.mark.parametrize("numbering", ["offset", "index"])
def test_zip_parts_are_read_in_place_in_natural_order(tmp_path, numbering):
    whole = write_zip(tmp_path / "whole" / "TL_span_extraction.zip",
                      {"TL_span_extraction.json": json.dumps(admin_mrc(every_admin_qa()), ensure_ascii=False).encode()})
    chunks = split_zip(whole, [97] * 11)  # 12 parts: .part10 and .part11 sort before .part2 as text
    raw = tmp_path / "raw" / "aihub_admin_mrc"
    raw.mkdir(parents=True)
    offset = 0
    for n, chunk in enumerate(chunks):
        (raw / f"TL_span_extraction.zip.part{offset if numbering == 'offset' else n}").write_bytes(chunk)
        offset += len(chunk)
    _, records, quarantine = run_ingest(tmp_path, tmp_path / "raw")
    assert quarantine.empty and len(records) == 5
    assert set(records.source_file) == {f"{raw / 'TL_span_extraction.zip'}!TL_span_extraction.json"}
    assert set(records.source_dataset) == {"aihub_admin_mrc"}
    assert all(".part" in p.name for p in raw.iterdir())  # nothing was joined on disk


def test_zip_parts_given_one_by_one_are_one_zip(tmp_path):
    whole = write_zip(tmp_path / "TL_a.zip", {"a.json": json.dumps(summary_documents(), ensure_ascii=False).encode()})
    parts = []
    for n, chunk in enumerate(split_zip(whole, [300])):
        parts.append(tmp_path / "dl" / f"TL_a.zip.part{n}")
        parts[-1].parent.mkdir(exist_ok=True)
        parts[-1].write_bytes(chunk)
    records = run_ingest(tmp_path, *parts)[1]
    assert len(records) == 2 and set(records.source_file) == {f"{tmp_path / 'dl' / 'TL_a.zip'}!a.json"}


def test_concatenated_file_seeks_and_reads_across_parts(tmp_path):
    data = bytes(range(256)) * 10
    paths = []
    for n, (start, end) in enumerate([(0, 700), (700, 700), (700, 1900), (1900, 2560)]):
        paths.append(tmp_path / f"p{n}")
        paths[-1].write_bytes(data[start:end])
    with io.BufferedReader(ConcatenatedFile(paths), 64) as joined:
        assert joined.read() == data
        assert joined.seek(-10, io.SEEK_END) == 2550 and joined.read() == data[2550:]
        joined.seek(650)
        assert joined.read(1300) == data[650:1950] and joined.tell() == 1950


def test_nested_zips_are_opened_in_place(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("신문기사_train_original.json", json.dumps(summary_documents(), ensure_ascii=False))
    outer = write_zip(tmp_path / "raw" / "aihub_doc_summary" / "문서요약.zip",
                      {"Training/신문기사.zip": inner.getvalue(), "paper.json": json.dumps(paper_summary(False)).encode()})
    _, records, quarantine = run_ingest(tmp_path, tmp_path / "raw")
    assert quarantine.empty and len(records) == 4
    assert f"{outer}!Training/신문기사.zip!신문기사_train_original.json" in set(records.source_file)
    assert set(records.source_dataset) == {"aihub_doc_summary"}


def test_cp949_file_larger_than_a_chunk_streams_whole(tmp_path):
    docs = summary_documents()
    docs["documents"] = [dict(docs["documents"][0], id=str(n)) for n in range(400)]
    path = write_json(tmp_path / "신문기사.json", docs, encoding="cp949")
    assert path.stat().st_size > 3 * READ_CHUNK
    result, records, quarantine = run_ingest(tmp_path, path, near_dup_threshold=None)
    assert quarantine.reason.tolist() == ["duplicate"] * 399 and records.doc_id.tolist() == ["0"]
    assert result.ledger.totals.read == 400


def test_transcoder_splits_characters_across_chunks():
    text = "가나다라마바사 한국어 문장입니다. " * 5000
    raw = io.BytesIO(text.encode("cp949"))
    head = raw.read(HEAD_BYTES - 1)  # ends inside a two-byte character
    stream = Utf8Transcoder(raw, "cp949", head)
    out = b"".join(iter(lambda: stream.read(1000), b""))
    assert out.decode("utf-8") == text


class CountedReads(io.RawIOBase):
    """``data`` read by the caller's sizes, counted; then ``error`` (if any) instead of the end."""

    def __init__(self, data: bytes, error: Exception | None = None):
        super().__init__()
        self._data = io.BytesIO(data)
        self._error = error
        self.reads = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.reads += 1
        n = self._data.readinto(buffer)
        if not n and self._error:
            raise self._error
        return n


def test_read_ahead_gives_every_byte_then_the_error(monkeypatch):
    monkeypatch.setattr(readers, "AHEAD_BYTES", 1000)
    text = ("국립중앙도서관은 매주 월요일에 휴관하며, 열람실 좌석은 하루 전까지 예약할 수 있다. " * 400).encode()
    stream = ReadAhead(CountedReads(text, zipfile.BadZipFile("Bad CRC-32 for file 'a.json'")))
    pieces = []
    with pytest.raises(zipfile.BadZipFile, match="CRC"):
        while piece := stream.read(777):
            pieces.append(piece)
    assert b"".join(pieces) == text
    assert stream.read(777) == b""
    stream.close()


def test_read_ahead_stays_a_few_pieces_ahead_and_its_thread_ends_on_close(monkeypatch):
    monkeypatch.setattr(readers, "AHEAD_BYTES", 1000)
    raw = CountedReads(bytes(1_000_000))
    stream = ReadAhead(raw)
    assert stream.read(10) == bytes(10)
    time.sleep(0.3)
    assert raw.reads <= readers.AHEAD + 2  # the pieces waiting, the one in hand, the one blocked on the queue
    stream.close()
    assert raw.closed and not any(t.name == "ingest-read-ahead" for t in threading.enumerate())


@pytest.mark.parametrize("bom", [False, True])
def test_a_source_is_opened_once(tmp_path, bom):
    """Reopening would seek backwards, which in a deflated nested zip decompresses it again."""
    path = write_json(tmp_path / "a.json", paper_summary(False), bom=bom)
    opened = []

    def open_raw():
        opened.append(path)
        return open(path, "rb")

    stream, head, _ = open_utf8(Source(str(path), "a", path.name, open_raw))
    with stream:
        assert json.loads(stream.read()) == paper_summary(False) and head.startswith("{")
    assert len(opened) == 1
