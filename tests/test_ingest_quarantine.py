"""Every reject reason, broken files that never stop a run, the accounting invariant and dedup."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest
from ingest_fixtures import CONTEXT, admin_mrc, every_admin_qa, qa, summary_documents, write_json, write_zip

from kositp.ingest.core import IngestSettings, ingest
from kositp.ingest.quarantine import AccountingError, IngestError, Ledger, Reject


def run(tmp_path, *paths, **settings):
    result = ingest(list(paths), tmp_path / "out", IngestSettings(**settings))
    quarantine = pd.read_parquet(tmp_path / "out" / "quarantine.parquet")
    records = pd.read_parquet(tmp_path / "out" / "records.parquet")
    for name, tally in result.ledger.files.items():
        kept = (records.source_file == name).sum()
        rejected = (quarantine.source_file == name).sum()
        assert (tally.kept, tally.rejected) == (kept, rejected), name
        assert tally.read == kept + rejected, name
    return result, records, quarantine


def reasons(quarantine: pd.DataFrame) -> Counter:
    return Counter(quarantine.reason)


def test_answer_not_in_context_missing_field_and_empty_text(tmp_path):
    bad_answer = qa(1, "주민센터의 운영 시간은?", "오전 9시부터")
    no_answer = qa(1, "담당 부서는?", "")
    no_answer["answers"] = None
    no_question = {"qa_type": 1, "answers": {"text": "주민센터"}}
    doc = admin_mrc([bad_answer, no_answer, no_question, *every_admin_qa()[:1]])
    doc["data"].append({"doc_id": "D002", "paragraphs": [{"context": " \u0000 ", "qas": [qa(1, "무엇인가요?", "무엇")]}]})
    doc["data"].append({"doc_id": "D003"})
    _result, records, quarantine = run(tmp_path, write_json(tmp_path / "a.json", doc))
    assert reasons(quarantine) == {"answer_not_in_context": 1, "missing_field": 3, "empty_text": 1}
    assert len(records) == 1
    located = quarantine.set_index("reason")
    assert located.loc["answer_not_in_context", "location"].endswith("#/data/0/paragraphs/0/qas/0")
    assert "오전 9시부터" in located.loc["answer_not_in_context", "detail"]
    assert set(quarantine[quarantine.reason == "missing_field"].detail) == {"answers", "question", "paragraphs"}


def test_too_long_passage(tmp_path):
    _, records, quarantine = run(tmp_path, write_json(tmp_path / "a.json", admin_mrc(every_admin_qa())), max_chars=50)
    assert records.empty and reasons(quarantine) == {"too_long": 5}


def test_truncated_json_keeps_what_came_before_and_the_run_goes_on(tmp_path):
    data = json.dumps(summary_documents(), ensure_ascii=False).encode()
    write_zip(tmp_path / "raw" / "news.zip", {"a_cut.json": data[: len(data) * 3 // 4], "b_whole.json": json.dumps(
        admin_mrc(every_admin_qa()), ensure_ascii=False).encode()})
    _result, records, quarantine = run(tmp_path, tmp_path / "raw")
    assert reasons(quarantine) == {"malformed_json": 1}
    assert quarantine.location.iloc[0].endswith("a_cut.json#/documents/1 (rest of file unread)")
    assert (records.format == "doc_summary").sum() == 1 and (records.format == "mrc").sum() == 5


def test_zip_with_non_json_member_and_unknown_structure(tmp_path):
    write_zip(tmp_path / "mixed.zip", {"설명서.hwp": b"\x00\x01", "readme.txt": "안내".encode(),
                                       "data.json": b'{"rows": [1, 2, 3]}'})
    _, records, quarantine = run(tmp_path, tmp_path / "mixed.zip")
    assert records.empty and reasons(quarantine) == {"unsupported_member": 2, "unknown_format": 1}


def test_undecodable_bytes(tmp_path):
    path = tmp_path / "broken.json"
    path.write_bytes(b'{"data": "' + bytes(range(128, 256)) * 40 + b'"}')
    _, _, quarantine = run(tmp_path, path)
    assert reasons(quarantine) == {"undecodable": 1}
    assert quarantine.source_file.iloc[0] == str(path)


def test_cp949_with_invalid_bytes_is_undecodable(tmp_path):
    text = json.dumps(admin_mrc(every_admin_qa()), ensure_ascii=False).encode("cp949")
    path = tmp_path / "cp949.json"
    path.write_bytes(text + b"\xff\xff\xff")
    _, _, quarantine = run(tmp_path, path)
    assert reasons(quarantine) == {"undecodable": 1}


def test_malformed_jsonl_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "시청 민원실은 토요일에도 문을 연다."}\n{"text": "끊긴 줄\n\n{"text": "구청은 무료 법률 상담을 연다."}\n', encoding="utf-8")
    _, records, quarantine = run(tmp_path, path)
    assert len(records) == 2 and reasons(quarantine) == {"malformed_json": 1}
    assert quarantine.location.iloc[0] == f"{path}:2"


def test_exact_and_near_duplicates_across_sources(tmp_path):
    docs = summary_documents()
    write_json(tmp_path / "raw" / "aihub_a" / "one.json", docs)
    write_json(tmp_path / "raw" / "aihub_b" / "same.json", docs)
    near = summary_documents()
    last = near["documents"][0]["text"][-1][-1]
    last["sentence"] = last["sentence"].replace("비싸다.", "비싸다!")
    near["documents"] = near["documents"][:1]
    write_json(tmp_path / "raw" / "aihub_c" / "near.json", near)
    result, records, quarantine = run(tmp_path, tmp_path / "raw")
    assert len(records) == 2
    assert reasons(quarantine) == {"duplicate": 2, "near_duplicate": 1}
    assert result.duplicates_by_source == {"aihub_b:duplicate": 2, "aihub_c:near_duplicate": 1}


def test_mrc_questions_on_one_passage_are_not_near_duplicates(tmp_path):
    _, records, quarantine = run(tmp_path, write_json(tmp_path / "a.json", admin_mrc(every_admin_qa())))
    assert len(records) == 5 and quarantine.empty


def test_ledger_check_raises_when_a_record_vanishes():
    ledger = Ledger()
    ledger.read("a.json")
    ledger.read("a.json")
    ledger.keep("a.json")
    with pytest.raises(AccountingError, match="a.json: read 2 != kept 1 \\+ rejected 0"):
        ledger.check()
    ledger.reject("a.json", "duplicate")
    ledger.check()


def test_unknown_reason_and_format_are_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown reject reason"):
        Reject("x", "bad_luck")
    with pytest.raises(IngestError, match="unknown format 'nope'"):
        ingest([tmp_path], tmp_path / "out", IngestSettings(format="nope"))


def test_masked_text_and_context_are_kept_verbatim(tmp_path):
    _, records, _ = run(tmp_path, write_json(tmp_path / "a.json", admin_mrc(every_admin_qa()[:1])))
    assert records.text.iloc[0] == CONTEXT
