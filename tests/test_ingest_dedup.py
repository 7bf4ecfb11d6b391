"""The on-disk duplicate index: exact and near-duplicates found across batches, candidates verified."""

import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ingest_fixtures import admin_mrc, every_admin_qa, run_ingest, summary_documents, write_json

from kositp.ingest import candidates, dedup, suspects
from kositp.ingest.bloom import BloomFilter
from kositp.ingest.core import IngestSettings, ingest
from kositp.ingest.dedup import NONE, DuplicateIndex, lsh_bands
from kositp.records import CONTENT_DIGEST, content_digests
from kositp.text_hash import window_hashes

ARTICLE = (
    "서울시는 다음 달부터 심야 시간대 대중교통 공백을 줄이기 위해 올빼미 버스 노선 네 개를 새로 운행한다고 밝혔다. "
    "새 노선은 지하철 운행이 끝난 뒤 주요 환승역과 대학가, 병원 밀집 지역을 잇도록 짜였으며 배차 간격은 평균 이십오 분이다. "
    "시는 지난해 교통카드 이용 기록을 분석해 새벽 시간 이동 수요가 많은 구간을 골랐다고 설명했다. "
    "요금은 일반 시내버스보다 오백 원 비싸며, 환승 할인은 기존과 같이 적용된다."
)
EDITED = ARTICLE.replace("평균 이십오 분이다", "평균 이십 분이다")
OTHER = (
    "부산시는 올여름 해수욕장 일곱 곳의 개장 기간을 열흘 늘리고 안전요원을 이백 명 더 배치하기로 했다. "
    "야간 개장은 광안리와 해운대에서만 운영하며, 음주 후 입수는 계속 금지된다. "
    "시는 폭염 특보가 내려지면 그늘막과 무료 생수를 추가로 제공할 계획이라고 밝혔다."
)


def record(n: int, text: str, question: str | None = None) -> dict:
    return {"record_id": f"{n:024d}", "text": text, "question": question, "summary": None}


def resolve(tmp_path, texts, threshold=0.9):
    records = [item if isinstance(item, dict) else record(n, item) for n, item in enumerate(texts)]
    index = DuplicateIndex(tmp_path / "index", threshold)
    try:
        columns = {name: [r[name] for r in records] for name in ("record_id", "text", "question", "summary")}
        index.add(columns | {CONTENT_DIGEST: content_digests(columns)})
        return index.resolve()
    finally:
        index.close()


def test_exact_and_near_duplicates_point_at_the_first_record(tmp_path):
    found = resolve(tmp_path, [ARTICLE, OTHER, ARTICLE, EDITED])
    assert list(found.of) == [NONE, NONE, 0, 0]
    assert found.reason(2) == ("duplicate", f"same normalized text as record {0:024d}")
    assert found.reason(3) == ("near_duplicate", f"near-duplicate of record {0:024d}")
    assert len(found) == 2


def test_band_collisions_below_the_threshold_are_not_duplicates(tmp_path):
    halves = ARTICLE[: len(ARTICLE) // 2] + OTHER[len(OTHER) // 2 :]
    found = resolve(tmp_path, [ARTICLE, halves])
    assert list(found.of) == [NONE, NONE]


def test_near_duplicate_search_is_off_without_threshold_and_for_questions(tmp_path):
    assert list(resolve(tmp_path / "off", [ARTICLE, EDITED], threshold=None).of) == [NONE, NONE]
    questions = [record(0, ARTICLE, "새 노선은 몇 개인가요?"), record(1, EDITED, "새 노선은 몇 개인가요?")]
    assert list(resolve(tmp_path / "mrc", questions).of) == [NONE, NONE]


def test_duplicates_are_found_across_flushed_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(dedup, "BATCH", 2)
    third = "구립 도서관 열람실 좌석 예약은 하루 전까지 가능하며, 당일 취소는 받지 않는다. 대출 기간은 이 주로 늘어난다."
    found = resolve(tmp_path, [ARTICLE, OTHER, third, OTHER, EDITED])
    assert list(found.of) == [NONE, NONE, NONE, 1, 0]
    assert list(found.exact) == [False, False, False, True, False]


def test_every_copy_points_at_the_earliest_of_many(tmp_path, monkeypatch):
    """Partitions large enough to be sorted by more than an insertion sort: every later copy of a
    question, in any batch, names the record where it first appeared."""
    monkeypatch.setattr(dedup, "BATCH", 500)
    rng = np.random.default_rng(3)
    asked = rng.integers(0, 1000, size=3000)
    records = [record(n, ARTICLE, f"올빼미 버스 {q}번 노선은 어디를 지나나요?") for n, q in enumerate(asked)]
    found = resolve(tmp_path, records)
    earliest = {}
    expected = [earliest.setdefault(q, n) for n, q in enumerate(asked)]
    assert list(found.of) == [NONE if e == n else e for n, e in enumerate(expected)]
    assert found.exact.sum() == 3000 - len(earliest) > 1500


def test_record_ids_must_have_the_fixed_width(tmp_path):
    with pytest.raises(ValueError, match="24 ASCII characters"):
        resolve(tmp_path, [{"record_id": "short", "text": ARTICLE, "question": None, "summary": None}])


def test_windows_belong_to_one_text_and_hash_equal_anywhere():
    flat, offsets = window_hashes(["가나다라마바", "가나", "나다라마바", "바가나다라마"], 5)
    assert list(offsets) == [0, 2, 2, 3, 5]
    assert flat[1] == flat[2]
    assert flat[0] == flat[4] != flat[1]
    assert flat[3] not in flat[:3]
    assert list(window_hashes(["가나다라마"], 5)[0]) == [flat[0]]


def test_skipped_characters_are_removed_before_windowing():
    spaced = ["가나 다라\n마바", "", "  ", "사 아자차카"]
    skip = np.array([chr(c).isspace() for c in range(0x3002)])
    flat, offsets = window_hashes(spaced, 3, skip)
    squeezed_flat, squeezed_offsets = window_hashes(["".join(t.split()) for t in spaced], 3)
    assert list(offsets) == list(squeezed_offsets) == [0, 4, 4, 4, 7]
    assert list(flat) == list(squeezed_flat)


def shingles(text: str) -> set[str]:
    return {text[i : i + dedup.SHINGLE] for i in range(len(text) - dedup.SHINGLE + 1)}


@pytest.mark.parametrize("length", [40, 400], ids=["short: most slots empty", "long: slots full"])
def test_equal_signature_slots_estimate_the_jaccard_similarity(length):
    """Over many pairs of edited Korean texts, the share of equal slots averages the true Jaccard
    similarity; short texts fill a third of the slots and lean on the densification."""
    rng = np.random.default_rng(7)
    syllables = np.array(list(ARTICLE.replace(" ", "")))
    originals, edited, truth = [], [], []
    for _ in range(400):
        text = rng.choice(syllables, length)
        changed = text.copy()
        changed[rng.integers(0, length, max(1, length // 40))] = rng.choice(syllables, max(1, length // 40))
        originals.append("".join(text))
        edited.append("".join(changed))
        a, b = shingles(originals[-1]), shingles(edited[-1])
        truth.append(len(a & b) / len(a | b))
    first, second = (dedup.signatures(*window_hashes(texts, dedup.SHINGLE)) for texts in (originals, edited))
    estimate = (first == second).mean(axis=1)
    assert abs(estimate.mean() - np.mean(truth)) < 0.02
    assert np.abs(estimate - truth).std() < 0.07
    assert (first != dedup._EMPTY).all()


def test_unrelated_short_texts_share_no_slots_and_empty_texts_have_empty_signatures():
    flat, offsets = window_hashes(["대한민국의수도는서울이다", "오늘은날씨가맑다", "짧다", ""], dedup.SHINGLE)
    signed = dedup.signatures(flat, offsets)
    assert (signed[0] == signed[1]).mean() < 0.1
    assert (signed[0] != dedup._EMPTY).all() and (signed[1] != dedup._EMPTY).all()
    assert (signed[2:] == dedup._EMPTY).all()


@pytest.mark.parametrize("threshold", [0.7, 0.8, 0.9, 0.95])
def test_bands_make_a_pair_at_the_threshold_a_candidate_almost_always(threshold):
    bands, rows = lsh_bands(threshold, 128)
    assert bands * rows <= 128
    assert 1 - (1 - threshold**rows) ** bands >= 0.99
    wider = 128 // (rows + 1)
    assert 1 - (1 - threshold ** (rows + 1)) ** wider < 0.99


@pytest.mark.parametrize("help_from", [0, candidates.MAX_QUEUED + 1], ids=["reader prepares", "worker prepares"])
def test_a_second_process_gives_the_same_bytes(tmp_path, monkeypatch, help_from):
    monkeypatch.setattr(candidates, "BATCH", 2)
    monkeypatch.setattr(candidates, "HELP_FROM", help_from)
    docs = summary_documents()
    write_json(tmp_path / "raw" / "aihub_a" / "one.json", docs)
    write_json(tmp_path / "raw" / "aihub_b" / "same.json", docs)
    write_json(tmp_path / "raw" / "aihub_c" / "mrc.json", admin_mrc(every_admin_qa()))
    outputs = {}
    for processes in (1, 2):
        out = tmp_path / f"out{processes}"
        result = ingest([tmp_path / "raw"], out, IngestSettings(processes=processes))
        outputs[processes] = [(out / name).read_bytes() for name in ("records.parquet", "quarantine.parquet", "files.parquet")]
        assert result.ledger.by_reason == {"duplicate": 2}
        assert not (out / ".dedup").exists()
    assert outputs[1] == outputs[2]


def test_records_are_written_alike_with_or_without_duplicates_taken_out(tmp_path, monkeypatch):
    """records.parquet is encoded alike whether duplicates were taken out or not: one row group per
    batch (less the duplicates, which never reach it), statistics only where a reader filters."""
    monkeypatch.setattr(candidates, "BATCH", 2)
    write_json(tmp_path / "plain" / "mrc.json", admin_mrc(every_admin_qa()))
    write_json(tmp_path / "twice" / "a" / "mrc.json", admin_mrc(every_admin_qa()))
    write_json(tmp_path / "twice" / "b" / "mrc.json", admin_mrc(every_admin_qa()))
    layouts = []
    for name, duplicates in (("plain", 0), ("twice", 5)):
        result = ingest([tmp_path / name], tmp_path / f"out_{name}", IngestSettings(processes=1))
        assert result.ledger.by_reason == ({"duplicate": duplicates} if duplicates else {})
        meta = pq.ParquetFile(tmp_path / f"out_{name}" / "records.parquet").metadata
        assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [2, 2, 1]
        layouts.append([(c.path_in_schema, c.compression, sorted(c.encodings), c.is_stats_set)
                        for c in map(meta.row_group(0).column, range(meta.num_columns))])
    assert layouts[0] == layouts[1]
    assert ("kind", "SNAPPY", ["PLAIN", "RLE", "RLE_DICTIONARY"], True) in layouts[0]
    # statistics only where a reader could filter: not on the long texts
    assert ("text", "SNAPPY", ["PLAIN", "RLE"], False) in layouts[0]
    assert ("record_id", "SNAPPY", ["PLAIN", "RLE"], True) in layouts[0]


def test_a_failing_worker_is_raised_with_its_log(tmp_path):
    sink = candidates.ProcessSink(tmp_path, 0.9)
    try:
        sink.add_batch({"text": [ARTICLE], "location": ["기사.json#/0"]})
        with pytest.raises(RuntimeError, match=r"worker failed \(exit code 1\)(.|\n)*KeyError: 'title'"):
            sink.resolve(lambda: None)
    finally:
        sink.close()


def test_small_inputs_stay_in_one_process(tmp_path):
    write_json(tmp_path / "small.json", summary_documents())
    assert candidates.auto_processes([tmp_path]) == 1


def test_the_readers_last_work_runs_while_the_worker_finishes(tmp_path, monkeypatch):
    """The reader asks the worker to finish before its own last work (the quarantine's rest, pyarrow's
    first conversion), so both run at once: meanwhile the worker closes its candidates file."""
    from kositp.ingest import core

    monkeypatch.setattr(candidates, "BATCH", 2)
    write_json(tmp_path / "raw" / "mrc.json", admin_mrc(every_admin_qa()))
    candidates_file = tmp_path / "out" / ".dedup" / candidates.CANDIDATES
    seen_closed = []
    own_work = core._while_candidates_finish

    def meanwhile(quarantine):
        deadline = time.monotonic() + 30
        while not _parquet_closed(candidates_file) and time.monotonic() < deadline:
            time.sleep(0.01)
        seen_closed.append(_parquet_closed(candidates_file))
        own_work(quarantine)

    monkeypatch.setattr(core, "_while_candidates_finish", meanwhile)
    result = ingest([tmp_path / "raw"], tmp_path / "out", IngestSettings(processes=2))
    assert seen_closed == [True]
    assert result.ledger.totals.kept == pq.ParquetFile(tmp_path / "out" / "records.parquet").metadata.num_rows > 0


def _parquet_closed(path) -> bool:
    try:
        pq.ParquetFile(path).close()
    except (OSError, pa.ArrowInvalid):
        return False
    return True


def test_a_key_once_added_always_may_have_been_seen():
    """The Bloom filter may answer "maybe" for a new key but never "no" for one it was given: a
    record it passes as new goes to records.parquet unchecked. A small filter makes many keys of one
    call share a word, and each of their bits must land."""
    keys = np.random.default_rng(5).integers(0, np.iinfo(np.uint64).max, 8000, dtype=np.uint64, endpoint=True)
    small = BloomFilter(word_index_bits=10)
    for part in np.array_split(keys, 4):
        small.seen_then_add(part)
    assert small.seen_then_add(keys).all()

    roomy = BloomFilter(word_index_bits=16)
    assert roomy.seen_then_add(keys[:2000]).sum() < 5
    assert roomy.seen_then_add(keys[:2000]).all()
    repeated = roomy.seen_then_add(np.concatenate([keys[2000:2100], keys[2000:2100]]))
    assert repeated[100:].all() and repeated[:100].sum() < 3


def test_a_filled_bloom_filter_changes_only_the_order_of_the_records(tmp_path, monkeypatch):
    """A corpus of millions fills the fixed-size Bloom filter, and most records then wait with the
    suspects until the duplicates are known: the same records are kept, each once, and the same
    duplicates are quarantined naming the same originals as with a roomy filter."""
    monkeypatch.setattr(candidates, "BATCH", 2)
    monkeypatch.setattr(suspects, "GROUP_ROWS", 3)
    docs = summary_documents()
    write_json(tmp_path / "raw" / "aihub_a" / "one.json", docs)
    write_json(tmp_path / "raw" / "aihub_b" / "same.json", docs)
    write_json(tmp_path / "raw" / "aihub_c" / "mrc.json", admin_mrc(every_admin_qa()))
    write_json(tmp_path / "raw" / "aihub_d" / "mrc.json", admin_mrc(every_admin_qa()[:2]))
    lines = [{"text": text} for text in (ARTICLE, OTHER, EDITED, OTHER)]
    (tmp_path / "raw" / "news.jsonl").write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines), encoding="utf-8")
    outputs = []
    for name, bits in (("roomy", 22), ("filled", 1)):
        monkeypatch.setattr(dedup, "BloomFilter", lambda bits=bits: BloomFilter(bits))
        result, records, quarantine = run_ingest(tmp_path / name, tmp_path / "raw", processes=1)
        assert result.ledger.by_reason == {"duplicate": 5, "near_duplicate": 1}
        assert records.record_id.is_unique and not set(records.record_id) & set(quarantine.record_id)
        outputs.append((result.summary(), records.sort_values("record_id", ignore_index=True), quarantine))
    (summary, records, quarantine), (filled_summary, filled_records, filled_quarantine) = outputs
    assert summary == filled_summary
    pd.testing.assert_frame_equal(records, filled_records)
    pd.testing.assert_frame_equal(quarantine, filled_quarantine)
    assert quarantine.detail.str.contains("|".join(records.record_id)).all()


SUSPECTS_PEAK = """
import re, sys
from pathlib import Path
from kositp.ingest import candidates, dedup, suspects
from kositp.ingest.bloom import BloomFilter
from kositp.ingest.core import IngestSettings, ingest

dedup.BloomFilter = lambda: BloomFilter(1)  # filled from the start: every record waits with the suspects
candidates.BATCH = suspects.GROUP_ROWS = 500  # both runs many batches long
ingest([Path(sys.argv[1])], Path(sys.argv[2]), IngestSettings(processes=1, near_dup_threshold=None))
# This process's own peak: ru_maxrss would also count the parent's memory at the fork.
print(int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) // 1024)
"""


def test_suspects_wait_on_disk_not_in_memory(tmp_path):
    """With every record a suspect, four times the records (36 MB more of passages waiting for the
    duplicate index) peak within a few MiB of the smaller run. Held in memory, they added 81 MiB."""
    passage = ARTICLE * 4  # about 3 KB of UTF-8
    peaks = []
    for count in (4000, 16000):
        raw = tmp_path / f"raw{count}" / "passages.jsonl"
        raw.parent.mkdir()
        raw.write_text("\n".join(json.dumps({"text": f"{n}번 {passage}", "summary": f"{n}번 요약"}, ensure_ascii=False)
                                 for n in range(count)), encoding="utf-8")
        done = subprocess.run([sys.executable, "-c", SUSPECTS_PEAK, str(raw.parent), str(tmp_path / f"out{count}")],
                              check=True, capture_output=True, text=True, timeout=300)
        peaks.append(int(done.stdout.split()[-1]))
    assert peaks[1] - peaks[0] < 12, peaks
