"""Every reject reason, broken files that never stop a run, the accounting invariant and dedup."""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import zipfile
from collections import Counter

import pandas as pd
import pytest
from ingest_fixtures import (
    CONTEXT,
    admin_mrc,
    every_admin_qa,
    kisti_qa_paper,
    qa,
    run_ingest,
    spoiled_corpus,
    summary_documents,
    tech_mrc_document,
    write_json,
    write_zip,
)

from kositp.ingest import adapters, readers
from kositp.ingest.core import IngestSettings, ingest
from kositp.ingest.quarantine import AccountingError, IngestError, Ledger, Reject
from kositp.ingest.readers import HEAD_BYTES, detect_encoding


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
    _result, records, quarantine = run_ingest(tmp_path, write_json(tmp_path / "a.json", doc))
    assert reasons(quarantine) == {"answer_not_in_context": 1, "missing_field": 3, "empty_text": 1}
    assert len(records) == 1
    located = quarantine.set_index("reason")
    assert located.loc["answer_not_in_context", "location"].endswith("#/data/0/paragraphs/0/qas/0")
    assert "오전 9시부터" in located.loc["answer_not_in_context", "detail"]
    assert set(quarantine[quarantine.reason == "missing_field"].detail) == {"answers", "question", "paragraphs"}


def test_too_long_passage(tmp_path):
    _, records, quarantine = run_ingest(tmp_path, write_json(tmp_path / "a.json", admin_mrc(every_admin_qa())), max_chars=50)
    assert records.empty and reasons(quarantine) == {"too_long": 5}


def test_truncated_json_keeps_what_came_before_and_the_run_goes_on(tmp_path):
    data = json.dumps(summary_documents(), ensure_ascii=False).encode()
    write_zip(tmp_path / "raw" / "news.zip", {"a_cut.json": data[: len(data) * 3 // 4], "b_whole.json": json.dumps(
        admin_mrc(every_admin_qa()), ensure_ascii=False).encode()})
    _result, records, quarantine = run_ingest(tmp_path, tmp_path / "raw")
    assert reasons(quarantine) == {"malformed_json": 1}
    assert quarantine.location.iloc[0].endswith("a_cut.json#/documents/1 (rest of file unread)")
    assert (records.format == "doc_summary").sum() == 1 and (records.format == "mrc").sum() == 5


def test_zip_with_non_json_member_and_unknown_structure(tmp_path):
    write_zip(tmp_path / "mixed.zip", {"설명서.hwp": b"\x00\x01", "readme.txt": "안내".encode(),
                                       "data.json": b'{"rows": [1, 2, 3]}'})
    _, records, quarantine = run_ingest(tmp_path, tmp_path / "mixed.zip")
    assert records.empty and reasons(quarantine) == {"unsupported_member": 2, "unknown_format": 1}


def test_undecodable_bytes(tmp_path):
    path = tmp_path / "broken.json"
    path.write_bytes(b'{"data": "' + bytes(range(128, 256)) * 40 + b'"}')
    _, _, quarantine = run_ingest(tmp_path, path)
    assert reasons(quarantine) == {"undecodable": 1}
    assert quarantine.source_file.iloc[0] == str(path)


def test_cp949_with_invalid_bytes_is_undecodable(tmp_path):
    text = json.dumps(admin_mrc(every_admin_qa()), ensure_ascii=False).encode("cp949")
    path = tmp_path / "cp949.json"
    path.write_bytes(text + b"\xff\xff\xff")
    _, _, quarantine = run_ingest(tmp_path, path)
    assert reasons(quarantine) == {"undecodable": 1}


def test_malformed_jsonl_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "시청 민원실은 토요일에도 문을 연다."}\n{"text": "끊긴 줄\n\n{"text": "구청은 무료 법률 상담을 연다."}\n', encoding="utf-8")
    _, records, quarantine = run_ingest(tmp_path, path)
    assert len(records) == 2 and reasons(quarantine) == {"malformed_json": 1}
    assert quarantine.location.iloc[0] == f"{path}:2"


def test_exact_and_near_duplicates_across_sources(tmp_path):
    docs = summary_documents()
    write_json(tmp_path / "raw" / "aihub_a" / "one.json", docs)
    write_json(tmp_path / "raw" / "aihub_b" / "same.json", docs)
    near = summary_documents()
    last = near["documents"][0]["text"][-1][-1]
    last["sentence"] = last["sentence"].replace("500원", "500 원")
    near["documents"] = near["documents"][:1]
    write_json(tmp_path / "raw" / "aihub_c" / "near.json", near)
    result, records, quarantine = run_ingest(tmp_path, tmp_path / "raw")
    assert len(records) == 2
    assert reasons(quarantine) == {"duplicate": 2, "near_duplicate": 1}
    assert result.duplicates_by_source == {"aihub_b:duplicate": 2, "aihub_c:near_duplicate": 1}


def test_mrc_questions_on_one_passage_are_not_near_duplicates(tmp_path):
    _, records, quarantine = run_ingest(tmp_path, write_json(tmp_path / "a.json", admin_mrc(every_admin_qa())))
    assert len(records) == 5 and quarantine.empty


def test_ledger_raises_when_a_record_vanishes(tmp_path):
    ledger = Ledger(tmp_path / "files.parquet")
    tally = ledger.tally("b.json")
    tally.read += 2
    tally.kept += 1
    with pytest.raises(AccountingError, match="b.json: read 2 != kept 1 \\+ rejected 0"):
        ledger.finish("b.json")
    with pytest.raises(AccountingError, match="total: read 2 != kept 1 \\+ rejected 0"):
        ledger.close()


def test_ledger_writes_every_file_with_duplicates_moved(tmp_path):
    ledger = Ledger(tmp_path / "files.parquet")
    for name in ("a.json", "c.json"):
        tally = ledger.tally(name)
        tally.read += 1
        tally.kept += 1
        ledger.finish(name)
    ledger.unkeep("a.json", "duplicate")
    ledger.close()
    assert {name: vars(t) for name, t in ledger.files()} == {
        "a.json": {"read": 1, "kept": 0, "rejected": 1},
        "c.json": {"read": 1, "kept": 1, "rejected": 0},
    }
    assert vars(ledger.totals) == {"read": 2, "kept": 1, "rejected": 1}
    assert ledger.by_reason == {"duplicate": 1}


def test_unknown_reason_and_format_are_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown reject reason"):
        Reject("x", "bad_luck")
    with pytest.raises(IngestError, match="unknown format 'nope'"):
        ingest([tmp_path], tmp_path / "out", IngestSettings(format="nope"))


def test_masked_text_and_context_are_kept_verbatim(tmp_path):
    _, records, _ = run_ingest(tmp_path, write_json(tmp_path / "a.json", admin_mrc(every_admin_qa()[:1])))
    assert records.text.iloc[0] == CONTEXT


def write_parts(folder, name: str, data: bytes, size: int) -> list:
    """``name.zip.part<offset>`` chunks, as AIHub downloads arrive."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for offset in range(0, len(data), size):
        paths.append(folder / f"{name}.part{offset}")
        paths[-1].write_bytes(data[offset:offset + size])
    return paths


def mrc_zip_bytes(tmp_path) -> bytes:
    path = write_zip(tmp_path / "build" / "a.zip", {"a.json": json.dumps(admin_mrc(every_admin_qa()), ensure_ascii=False).encode()})
    return path.read_bytes()


def test_gapped_part_set_is_one_broken_archive_and_the_run_goes_on(tmp_path):
    parts = write_parts(tmp_path / "raw" / "aihub_a", "TL_a.zip", mrc_zip_bytes(tmp_path), 200)
    parts[1].unlink()
    write_json(tmp_path / "raw" / "aihub_b" / "b.json", admin_mrc(every_admin_qa()[:1]))
    result, records, quarantine = run_ingest(tmp_path, tmp_path / "raw")
    assert len(records) == 1 and reasons(quarantine) == {"broken_archive": 1}
    row = quarantine.iloc[0]
    assert row.source_file == str(tmp_path / "raw" / "aihub_a" / "TL_a.zip")
    assert f"{parts[2].name} does not follow {parts[0].name} (200 bytes): expected .part200" in row.detail
    assert dict(result.ledger.files())[row.source_file].rejected == 1


@pytest.mark.parametrize(("names", "message"), [
    (["part0", "part2"], "TL_a.zip.part2 does not follow TL_a.zip.part0"),
    (["part3", "part4"], "the first part is TL_a.zip.part3; .part0 (or .part1) is missing"),
    (["part1", "part01"], "two parts carry the same number"),
])
def test_part_numbering_that_does_not_follow_on(tmp_path, names, message):
    data = mrc_zip_bytes(tmp_path)
    for n, name in enumerate(names):
        (tmp_path / "raw").mkdir(exist_ok=True)
        (tmp_path / "raw" / f"TL_a.zip.{name}").write_bytes(data[n * 300:(n + 1) * 300])
    _, _, quarantine = run_ingest(tmp_path, tmp_path / "raw")
    assert reasons(quarantine) == {"broken_archive": 1} and message in quarantine.detail.iloc[0]


def test_part_set_missing_its_last_part_is_not_a_readable_zip(tmp_path):
    parts = write_parts(tmp_path / "raw", "TL_a.zip", mrc_zip_bytes(tmp_path), 300)
    parts[-1].unlink()
    _, _, quarantine = run_ingest(tmp_path, tmp_path / "raw")
    assert reasons(quarantine) == {"broken_archive": 1}
    assert f"zip joined from {len(parts) - 1} parts is not a readable zip" in quarantine.detail.iloc[0]


def test_damaged_member_bytes_are_a_broken_archive(tmp_path):
    text = json.dumps(admin_mrc(every_admin_qa()), ensure_ascii=False).encode()
    path = tmp_path / "stored.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("a.json", text)
    data = bytearray(path.read_bytes())
    at = data.find("주민센터".encode())
    data[at:at + 3] = "경찰서".encode()[:3]  # same length, different bytes: the CRC no longer matches
    path.write_bytes(bytes(data))
    _, _, quarantine = run_ingest(tmp_path, path)
    assert reasons(quarantine) == {"broken_archive": 1} and "CRC" in quarantine.detail.iloc[0]
    assert quarantine.location.iloc[0] == f"{path}!a.json"  # the CRC fails on the first read: nothing was kept


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2])
def test_short_members_read_at_once_give_what_zipfile_gives(tmp_path, compression):
    short = json.dumps(admin_mrc(every_admin_qa()), ensure_ascii=False).encode()
    long = json.dumps(admin_mrc(every_admin_qa() * 40), ensure_ascii=False, indent=1).encode()
    assert len(short) < HEAD_BYTES <= len(long)
    path = tmp_path / "행정문서.zip"
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("짧은.json", short)
        archive.writestr("긴.json", long)
    write_json(tmp_path / "plain" / "짧은.json", json.loads(short))
    _, from_zip, _ = run_ingest(tmp_path / "zip", path)
    _, from_file, _ = run_ingest(tmp_path / "file", tmp_path / "plain")
    in_zip = from_zip[from_zip.source_file.str.endswith("!짧은.json")]
    content = ["question", "text", "answers", "answer_start", "qa_type", "title"]
    assert len(in_zip) == len(from_file) == len(every_admin_qa())
    assert in_zip[content].to_json() == from_file[content].to_json()


@pytest.mark.parametrize("damage", ["inflated bytes", "length"])
def test_a_damaged_short_deflated_member_is_a_broken_archive(tmp_path, damage):
    text = json.dumps(admin_mrc(every_admin_qa()), ensure_ascii=False).encode()
    path = tmp_path / "deflated.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.json", text)
        archive.writestr("b.json", text)
    data = bytearray(path.read_bytes())
    if damage == "length":  # the central directory says a.json is one byte longer than it inflates to
        entry = data.find(b"PK\x01\x02")
        data[entry + 24 : entry + 28] = (len(text) + 1).to_bytes(4, "little")
    else:
        data[60:62] = bytes(255 - b for b in data[60:62])
    path.write_bytes(bytes(data))
    _, records, quarantine = run_ingest(tmp_path, path)
    assert reasons(quarantine)["broken_archive"] == 1
    assert quarantine.set_index("reason").loc["broken_archive", "source_file"] == f"{path}!a.json"
    assert set(records.source_file) == {f"{path}!b.json"}


@pytest.mark.parametrize("compression", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_a_large_member_damaged_part_way_keeps_the_records_before(tmp_path, monkeypatch, compression):
    """Damaged bzip2 or LZMA data (a bare OSError, an LZMAError) is a broken archive like damaged
    deflate data, not the end of the run; read ahead on a thread, the bytes before the damage
    still reach the parser first."""
    # Small reads, so the damage two thirds in lies past the first (bzip2 inflates 900 KB blocks whole).
    monkeypatch.setattr(readers, "HEAD_BYTES", 4096)
    monkeypatch.setattr(readers, "AHEAD_BYTES", 4096)
    docs = summary_documents()
    docs["documents"] = [dict(docs["documents"][1], id=str(n), abstractive=f"구립 도서관 {n}호관이 밤 11시까지 연장 개방한다.",
                              text=[[{"index": 0, "sentence": f"구립 도서관 {n}호관이 이번 주부터 밤 11시까지 문을 연다. " * 3}]])
                         for n in range(8000)]
    path = tmp_path / "news.zip"
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("a.json", json.dumps(docs, ensure_ascii=False))
    data = bytearray(path.read_bytes())
    middle = len(data) * 2 // 3
    data[middle : middle + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    _, records, quarantine = run_ingest(tmp_path, path, near_dup_threshold=None)
    assert reasons(quarantine) == {"broken_archive": 1}
    assert "damaged compressed data" in quarantine.detail.iloc[0]
    assert quarantine.location.iloc[0] == f"{path}!a.json#/documents/{len(records)} (rest of file unread)"
    assert 1000 < len(records) < 8000 and records.doc_id.tolist() == [str(n) for n in range(len(records))]


def nest(name: str, members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return buffer.getvalue()


def test_zips_nested_too_deep_or_broken_are_quarantined(tmp_path):
    doc = [json.dumps(admin_mrc([question]), ensure_ascii=False).encode() for question in every_admin_qa()]
    level3 = nest("c.zip", {"c.json": doc[2], "d.zip": nest("d.zip", {"d.json": doc[3]})})
    path = write_zip(tmp_path / "a.zip", {"a.json": doc[0], "b.zip": nest("b.zip", {"b.json": doc[1], "c.zip": level3}),
                                          "broken.zip": b"PK\x03\x04 not really a zip"})
    _, records, quarantine = run_ingest(tmp_path, path)
    assert sorted(records.source_file) == [f"{path}!a.json", f"{path}!b.zip!b.json", f"{path}!b.zip!c.zip!c.json"]
    located = quarantine.set_index("reason")
    assert located.loc["unsupported_member", "source_file"] == f"{path}!b.zip!c.zip!d.zip"
    assert "deeper than 3 levels" in located.loc["unsupported_member", "detail"]
    assert located.loc["broken_archive", "source_file"] == f"{path}!broken.zip"


def test_a_broken_record_between_whole_ones_stops_the_file_at_that_record(tmp_path):
    """A record that is not JSON though its brackets balance (the guard hands it on) ends the file
    there, named by its index, and the records before it stand."""
    docs = summary_documents()
    docs["documents"] = [dict(docs["documents"][0], id=str(n), title=f"심야 버스 노선 {n}") for n in range(3)]
    data = json.dumps(docs, ensure_ascii=False).encode().replace(b'"id": "1"', b'"id": [1, 2,]', 1)
    path = tmp_path / "신문기사.json"
    path.write_bytes(data)
    _, records, quarantine = run_ingest(tmp_path, path, near_dup_threshold=None)
    assert list(records.location) == [f"{path}#/documents/0"]
    assert list(quarantine.reason) == ["malformed_json"]
    assert quarantine.location.iloc[0] == f"{path}#/documents/1 (rest of file unread)"


def test_cp949_bytes_broken_part_way_keep_the_records_before(tmp_path):
    docs = summary_documents()
    docs["documents"] = [dict(docs["documents"][0], id=str(n), title=f"심야 버스 노선 {n}") for n in range(300)]
    data = json.dumps(docs, ensure_ascii=False, indent=1).encode("cp949")
    cut = data.find(b'"id": "200"')
    path = tmp_path / "신문기사.json"
    path.write_bytes(data[:cut] + b"\xff\xfe" + data[cut:])
    result, records, quarantine = run_ingest(tmp_path, path, near_dup_threshold=None)
    assert reasons(quarantine) == {"duplicate": 199, "undecodable": 1}
    bad = quarantine[quarantine.reason == "undecodable"].iloc[0]
    assert bad.location == f"{path}#/documents/200 (rest of file unread)"
    assert f"not valid cp949 at byte {cut}" in bad.detail
    assert result.ledger.totals.read == 201 and len(records) == 1


def test_cp949_jsonl_broken_part_way_keeps_the_lines_before(tmp_path):
    rows = [json.dumps({"text": f"{n}번 민원 창구는 오전 9시에 문을 연다."}, ensure_ascii=False) for n in range(5000)]
    data = "\n".join(rows).encode("cp949")
    assert detect_encoding(data[:HEAD_BYTES]) == "cp949"  # charset-normalizer alone says ISO-8859-5 here
    cut = data.find("4000번".encode("cp949"))
    path = tmp_path / "민원.jsonl"
    path.write_bytes(data[:cut] + b"\xff" + data[cut:])
    _, records, quarantine = run_ingest(tmp_path, path, near_dup_threshold=None)
    assert len(records) == 4000 and reasons(quarantine) == {"undecodable": 1}
    assert quarantine.location.iloc[0] == f"{path}:4001 (rest of file unread)"


def test_tech_mrc_and_kisti_qa_missing_fields(tmp_path):
    doc = tech_mrc_document()
    qas = doc["dataset"]["context_info"][0]["qas"]
    qas[0]["wrong_answer"] = []
    qas[1]["answer"] = None
    paper = kisti_qa_paper()
    paper["qas"][0]["answer"] = {"answer_start": 3}
    del paper["qas"][1]["question"]
    write_json(tmp_path / "raw" / "tech.json", doc)
    write_json(tmp_path / "raw" / "paper.json", paper)
    _, records, quarantine = run_ingest(tmp_path, tmp_path / "raw")
    assert len(records) == 3 and reasons(quarantine) == {"missing_field": 4}
    assert sorted(quarantine.detail) == ["answer", "answer.answer_text", "question", "wrong_answer"]


def test_a_download_that_is_not_a_zip_is_a_broken_archive(tmp_path):
    write_json(tmp_path / "raw" / "ok.json", admin_mrc(every_admin_qa()[:1]))
    (tmp_path / "raw" / "TL_news.zip").write_text("<html><body>세션이 만료되었습니다</body></html>", encoding="utf-8")
    _, records, quarantine = run_ingest(tmp_path, tmp_path / "raw")
    assert len(records) == 1 and reasons(quarantine) == {"broken_archive": 1}
    assert quarantine.source_file.iloc[0] == str(tmp_path / "raw" / "TL_news.zip")
    assert "zip is not a readable zip" in quarantine.detail.iloc[0]


def test_cp949_file_ending_inside_a_character(tmp_path):
    path = write_json(tmp_path / "a.json", admin_mrc(every_admin_qa()), encoding="cp949")
    path.write_bytes(path.read_bytes() + "가".encode("cp949")[:1])
    _, records, quarantine = run_ingest(tmp_path, path)
    assert len(records) == 5 and reasons(quarantine) == {"undecodable": 1}
    assert "incomplete multibyte sequence" in quarantine.detail.iloc[0]


def _nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


def test_deeply_nested_input_is_quarantined_in_flat_memory_and_the_rest_is_read(tmp_path):
    """A 200 KB question nested 100,000 levels deep once grew ingest past 24 GB; a deep dict as a
    context, a deep JSONL line and an empty ``qas`` list went uncounted or stopped the file."""
    raw = tmp_path / "raw"
    raw.mkdir()
    good, other = (json.dumps(admin_mrc(qas)["data"][0], ensure_ascii=False) for qas in (every_admin_qa()[:2], every_admin_qa()[2:4]))
    deep_question = '{"doc_id": "D9", "paragraphs": [{"context": "깊은 질문", "qas": [{"question": ' + _nested(100_000) + "}]}]}"
    (raw / "deep_question.json").write_text(f'{{"data": [{good}, {deep_question}, {other}]}}', encoding="utf-8")
    deep_context = '{"doc_id": "D8", "paragraphs": [{"context": ' + '{"a": ' * 100_000 + "1" + "}" * 100_000 + ', "qas": []}]}'
    three = [{"doc_id": "D7", "paragraphs": [{"context": "질문 없는 문단입니다.", "qas": []}]}, {"doc_id": "D6", "paragraphs": []}]
    (raw / "deep_context.json").write_text(
        '{"data": [' + ", ".join((deep_context, *(json.dumps(d, ensure_ascii=False) for d in three))) + "]}", encoding="utf-8")
    (raw / "lines.jsonl").write_text("\n".join([json.dumps({"text": "첫 줄의 본문입니다."}, ensure_ascii=False),
                                                '{"text": ' + _nested(5_000) + "}",
                                                json.dumps({"text": "셋째 줄의 본문입니다."}, ensure_ascii=False)]), encoding="utf-8")
    limit = 3 << 30
    command = [sys.executable, "-m", "kositp", "ingest", str(raw), "--out", str(tmp_path / "out"), "--json"]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["by_reason"] == {"too_deep": 3, "missing_field": 1}
    assert summary["read"] == summary["kept"] + summary["rejected"] == 11 and summary["kept"] == 4 + 1 + 2
    quarantine = pd.read_parquet(tmp_path / "out" / "quarantine.parquet")
    deep = quarantine[quarantine.reason == "too_deep"].location.tolist()
    assert sorted(d[len(str(raw)) + 1:] for d in deep) == ["deep_context.json#/data/0", "deep_question.json#/data/1", "lines.jsonl:2"]
    records = pd.read_parquet(tmp_path / "out" / "records.parquet")
    assert "질문 없는 문단입니다." in set(records.text)
    assert quarantine[quarantine.reason == "missing_field"].location.str.endswith("deep_context.json#/data/2").all()


def test_a_record_past_the_size_limit_is_quarantined_and_the_file_goes_on(tmp_path):
    qas = every_admin_qa()[:1]
    doc = admin_mrc(qas)
    doc["data"].insert(0, {"doc_id": "D0", "paragraphs": [{"context": "긴 문맥 " * 20000, "qas": qas}]})
    _, records, quarantine = run_ingest(tmp_path, write_json(tmp_path / "a.json", doc), max_record_bytes=100_000)
    assert reasons(quarantine) == {"too_large": 1} and len(records) == 1
    assert quarantine.location.iloc[0].endswith("a.json#/data/0")


def test_a_unit_with_fields_of_the_wrong_type_is_one_reject_and_the_next_unit_is_read(tmp_path):
    """A number where the sentences belong used to end the whole ingest with a traceback, and an
    ``index`` that is not a number ended the file; either is now that document's reject."""
    summaries = summary_documents()
    good = summaries["documents"]
    summaries["documents"] = [good[0], {"id": "1003", "text": 3.5, "abstractive": "숫자가 본문 자리에 있다."},
                              {"id": "1004", "text": [[{"index": "첫째", "sentence": "순번이 글자다."}]], "abstractive": "순번"},
                              good[1]]
    write_json(tmp_path / "raw" / "summary.json", summaries)
    _, records, quarantine = run_ingest(tmp_path, tmp_path / "raw")
    assert sorted(records.doc_id) == ["1001", "1002"]
    assert [location.rsplit("/raw/", 1)[1] for location in quarantine.location] == [
        "summary.json#/documents/1", "summary.json#/documents/2"]
    assert list(quarantine.detail) == [
        "doc_summary cannot read this unit: TypeError: 'float' object is not iterable",
        "doc_summary cannot read this unit: ValueError: invalid literal for int() with base 10: '첫째'",
    ]


def test_mrc_fields_given_in_other_shapes_still_make_records(tmp_path):
    """``qa_type`` as a word and an answer given bare as a number used to stop the file or the run."""
    by_word = {**qa(1, "모바일 확인 서비스는 언제부터 전국으로 확대되나요?", "2024년 3월 4일부터"), "qa_type": "단답형"}
    bare_number = {**qa(1, "서비스는 몇 년에 확대되나요?", "2024"), "answers": 2024}
    write_json(tmp_path / "raw" / "mrc.json", admin_mrc([by_word, bare_number]))
    _, records, quarantine = run_ingest(tmp_path, tmp_path / "raw")
    assert quarantine.empty
    assert [(r.qa_type, list(r.answers)) for r in records.itertuples()] == [("span", ["2024년 3월 4일부터"]), ("span", ["2024"])]


def test_every_field_of_every_family_spoiled_in_turn_is_read_or_counted(tmp_path):
    """One document of every family with each of its fields given, in turn, each JSON type it never
    has (4,000 files): the run finishes, every unit is a record or a counted reject (run_ingest
    checks each file), and every family still gives records."""
    result, _, _ = run_ingest(tmp_path, spoiled_corpus(tmp_path))
    assert set(result.summary()["by_format"]) == {adapter.NAME for adapter in adapters.ADAPTERS}


def _ingest_cli(raw: list, out, *args: str, memory: int | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``kositp ingest`` as a user runs it, under an address-space limit when ``memory`` is given."""
    limit = (lambda: resource.setrlimit(resource.RLIMIT_AS, (memory, memory))) if memory else None
    return subprocess.run([sys.executable, "-m", "kositp", "ingest", *map(str, raw), "--out", str(out), "--json", *args],
                          check=False, capture_output=True, text=True, timeout=timeout, preexec_fn=limit)


def test_a_csv_line_longer_than_memory_is_one_too_large_reject_and_the_rest_is_read(tmp_path):
    """A zip whose data.csv held one 3 GB line ended the ingest with a MemoryError at 2.8 GB and left
    ``.files.parquet.draft`` behind; here the line is longer than the whole address space allowed."""
    memory = 800 << 20
    piece = "한 줄로 이어진 아주 긴 본문입니다 ".encode() * 20_000
    raw = tmp_path / "raw.zip"
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive, archive.open("data.csv", "w") as csv_file:
        csv_file.write("text\n첫 줄의 본문입니다.\n".encode())
        for _ in range(memory // len(piece) + 1):
            csv_file.write(piece)
        csv_file.write("\n셋째 줄의 본문입니다.\n".encode())
    done = _ingest_cli([raw], tmp_path / "out", "--max-record-bytes", str(1 << 20), memory=memory)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.splitlines()[-1])
    assert (summary["kept"], summary["by_reason"]) == (2, {"too_large": 1})
    quarantine = pd.read_parquet(tmp_path / "out" / "quarantine.parquet")
    assert list(quarantine.location) == [f"{raw}!data.csv:3"]
    assert quarantine.detail.iloc[0] == "a record longer than 1048576 characters"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "data_card.md", "files.parquet", "quarantine.parquet", "records.parquet"]


def test_a_csv_field_past_the_field_limit_is_its_row_s_reject_and_the_rows_after_it_are_read(tmp_path):
    """It ended the file as ``malformed_json``, the rows after it lost; a quoted field over several
    lines is skipped to its closing quote."""
    lines = ["text,title", "첫 줄의 본문입니다.,첫째", '"' + "여러 줄에 걸친 긴 본문\n" * 12_000 + '",둘째',
             "셋째 줄의 본문입니다.,셋째", "넷째 줄의 본문입니다.," + "가" * 140_000, '"다섯째 줄의 ""인용"" 본문입니다.",다섯째']
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, records, quarantine = run_ingest(tmp_path, path)
    assert list(records.title) == ["첫째", "셋째", "다섯째"]
    assert records.text.iloc[2] == '다섯째 줄의 "인용" 본문입니다.'
    assert [location.rsplit("/", 1)[1] for location in quarantine.location] == ["rows.csv:3", "rows.csv:5"]
    assert set(quarantine.reason) == {"too_large"}
    assert set(quarantine.detail) == {"a field longer than 131072 characters"}


def test_a_csv_record_over_the_record_limit_over_several_lines_is_skipped_to_its_end(tmp_path):
    path = tmp_path / "rows.csv"
    long_field = '"' + "여러 줄에 걸친 본문\n" * 10_000 + '"'
    path.write_text(f"text\n첫 줄의 본문입니다.\n{long_field}\n셋째 줄의 본문입니다.\n", encoding="utf-8")
    _, records, quarantine = run_ingest(tmp_path, path, max_record_bytes=1 << 16)
    assert list(records.text) == ["첫 줄의 본문입니다.", "셋째 줄의 본문입니다."]
    assert list(quarantine.reason) == ["too_large"] and quarantine.location.iloc[0].endswith("rows.csv:3")


def test_a_fifo_named_as_an_input_is_refused_in_one_line(tmp_path):
    """It was opened and read, and with no writer that read waits forever (a folder walk skips it)."""
    fifo = tmp_path / "data.json"
    os.mkfifo(fifo)
    done = _ingest_cli([fifo], tmp_path / "out", timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: input path is not a regular file or a folder (a FIFO, a device or a socket is not read): {fifo}"]
    assert not (tmp_path / "out").exists()
    run = subprocess.run([sys.executable, "-m", "kositp", "run", "--root", str(tmp_path / "artifacts"),
                          "--set", f"ingest.paths=[{fifo}]"], check=False, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.strip().splitlines()[-1].endswith(f"is not read): {fifo}")
    assert "Traceback" not in run.stderr


def test_a_missing_input_path_writes_nothing(tmp_path):
    write_json(tmp_path / "raw" / "a.json", admin_mrc(every_admin_qa()[:1]))
    done = _ingest_cli([tmp_path / "raw", tmp_path / "없음"], tmp_path / "out", timeout=60)
    assert not (tmp_path / "out").exists()
    assert done.returncode == 2 and done.stderr.strip() == f"error: input path does not exist: {tmp_path / '없음'}"


@pytest.mark.parametrize(("forced", "content"), [
    ("mrc", '{"documents": [{"text": "다른 형식의 본문입니다."}]}'),
    ("doc_summary", '{"data": [{"paragraphs": [{"context": "다른 형식의 본문입니다."}]}]}'),
    ("csv", "text,title\n"),
])
def test_a_forced_format_that_finds_nothing_is_one_reject_naming_it(tmp_path, forced, content):
    """``--format mrc`` on a file of another family read 0 and quarantined nothing: the file went uncounted."""
    path = tmp_path / "raw" / "other.json"
    path.parent.mkdir()
    path.write_text(content, encoding="utf-8")
    result, records, quarantine = run_ingest(tmp_path, path, format=forced)
    assert result.summary()["read"] == 1 and records.empty
    assert list(quarantine.reason) == ["unknown_format"]
    assert quarantine.detail.iloc[0] == f"--format {forced} found no records in this file"


def test_a_string_outside_the_records_past_the_limit_keeps_the_records_before_it(tmp_path):
    """Strings reach the parser whole now; one that grows past the limit still ends the file only
    after the records before it."""
    text = json.dumps(admin_mrc(every_admin_qa()[:2]), ensure_ascii=False)
    path = tmp_path / "a.json"
    path.write_text(text[:-1] + ', "note": "' + "끝없이 이어지는 메모 " * 10_000 + '"}', encoding="utf-8")
    _, records, quarantine = run_ingest(tmp_path, path, max_record_bytes=1 << 16)
    assert len(records) == 2
    assert list(quarantine.reason) == ["too_large"] and quarantine.location.iloc[0].endswith("#/data/1 (rest of file unread)")
