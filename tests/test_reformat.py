"""Reformat: builders on real-shaped records, placement, splits, decontamination, caching, the stage."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from reformat_data import LAW_TEXT, sample_records, write_bank, write_records

from kositp.artifacts import ArtifactStore, compute_version
from kositp.catalog import SUPERNI_TASKS
from kositp.pipeline import PlannedStage, execute
from kositp.reformat.build import BUILD_MODULES, build_code, task_subversion
from kositp.reformat.builders import BUILDERS, UNANSWERABLE, options_line
from kositp.reformat.config import ReformatConfig, ReformatError
from kositp.reformat.placement import Instruction, instruction_chooser, place, stable_hash
from kositp.reformat.shards import ROUTING_FIELDS, SHARD_SCHEMA
from kositp.reformat.stage import STAGE
from kositp.reformat.supplementary import SupplementaryError, read_alpaca
from kositp.reformat.task_cache import TMP_PREFIX, cache_in_use, prune_cache
from kositp.reporting import ConsoleReporter
from kositp.source_digest import source_digest


def built(task_id: str, records: list[dict]) -> list:
    builder = BUILDERS[task_id]
    return [b for b in (builder.build(r) for r in records if builder.accepts(r)) if b is not None]


def by_id(record_id: str) -> dict:
    return next(r for r in sample_records() if r["record_id"] == record_id)


def test_every_task_has_a_builder_that_yields_from_real_shaped_records():
    records = sample_records()
    for task in SUPERNI_TASKS:
        assert built(task.id, records), f"{task.id} built nothing"


def test_a_builder_reads_only_the_fields_it_declares():
    """Shards read only the declared columns: a record cut down to them must build the same instance."""
    for builder in BUILDERS.values():
        accepted = [r for r in sample_records() if builder.accepts(r)]
        assert accepted, builder.task_id
        for record in accepted:
            declared = {k: v for k, v in record.items() if k in (*ROUTING_FIELDS, *builder.fields)}
            assert builder.build(declared) == builder.build(record), (builder.task_id, record["record_id"])


def test_answerability_uses_the_seed_sentence_for_unanswerable_questions():
    outputs = {b.output for b in built("task001_answerability_classification", sample_records())}
    assert outputs == {UNANSWERABLE, "보호수용 필요성이 없는 경우"}


def test_multiple_choice_lists_options_like_the_seed():
    (instance,) = built("task004_abstractive_qa_objective", [by_id("mrc-mc")])
    assert instance.query == "보기 : 보호감호제도, 집행유예제도, 가석방제도, 보호관찰제도,"
    assert instance.context == "보호수용제도와 성격이 유사한 제도는 뭐지"
    assert instance.output == "보호감호제도"
    assert options_line(["예", "아니요"]) == "보기 : 예, 아니요,"


def test_extractive_multiple_choice_keeps_the_passage_and_explanation_adds_the_clue():
    (plain,) = built("task007_extractive_qa_objective", [by_id("mrc-mc")])
    (explained,) = built("task021_extractive_qa_objective_explanation", [by_id("mrc-mc")])
    assert plain.context.startswith("보호수용제도는")
    assert (
        explained.output
        == "보호감호제도\n보호수용제도는 구 사회보호법상 보호감호제도와 유사한 성격의 것이다."
    )


def test_yes_no_tasks_answer_ye_or_aniyo_and_need_a_clue_for_explanation():
    yn = by_id("mrc-yn")
    assert [b.output for b in built("task008_extractive_qa_yes_no", [yn])] == ["예"]
    assert built("task020_abstractive_qa_yes_no", [yn])[0].context == yn["question"]
    assert built("task022_extractive_qa_yes_no_explanation", [yn])[0].output.split("\n") == ["예", yn["clue"]]
    assert built("task022_extractive_qa_yes_no_explanation", [{**yn, "clue": None}]) == []
    assert built("task008_extractive_qa_yes_no", [{**yn, "answers": ["모름"]}]) == []


def test_abstractive_qa_leaves_the_passage_out():
    for task_id in ("task005_abstractive_qa_short_answer", "task006_abstractive_qa_long_answer"):
        for instance in built(task_id, sample_records()):
            assert "보호수용제도는 구 사회보호법" not in instance.context + instance.query


def test_summary_family_follows_the_seed_length_rules():
    law = by_id("sum-law")
    assert built("task002_summarization", [law])[0].output == law["summary"]
    assert built("task002_summarization", [{**law, "summary": "강도상해죄 요건."}]) == [], (
        "below a third of the text"
    )
    simplified = built("task013_text_simplification", sample_records())
    assert simplified and all(len(s.output) <= 50 for s in simplified)
    (expansion,) = built("task016_summary_expansion", [law])
    assert (expansion.context, expansion.output) == (law["summary"], law["text"])
    (contents,) = built("task012_title_to_contents", [law])
    assert (contents.context, contents.output) == ("강도상해죄의 성립 요건", law["text"])


def test_completion_and_composition_split_whole_sentences():
    law = by_id("sum-law")
    (completion,) = built("task011_text_completion", [law])
    assert f"{completion.context} {completion.output}" == LAW_TEXT
    (composition,) = built("task015_text_composition", [law])
    lines = composition.context.split("\n")
    assert lines[0].startswith("문장1 : 형법 제337조") and len(lines) == 4
    blank = next(line for line in lines if line.endswith(": "))
    assert composition.output.startswith(blank) and composition.output[len(blank) :] in law["sentences"]


def test_completion_reads_passages_not_one_copy_per_question():
    sources = [r["record_id"] for r in sample_records() if BUILDERS["task011_text_completion"].accepts(r)]
    assert "passage" in sources and not any(s.startswith("mrc-") for s in sources)


def test_keywords_and_tables():
    assert built("task014_keyword_tagging", sample_records())[0].output == "에지 보정, 골격선 추출, 융기 영상"
    (qa,) = built("task017_table_qa_short_answer", sample_records())
    assert "<table>" in qa.context and qa.output == "14,587"
    assert qa.context.count("<table>") == 1, "a table already inside the text is not repeated"
    assert built("task019_table_to_title", sample_records())[0].output == "연도별 시간당 임금"


def test_instruction_choice_is_stable_and_spread_and_placement_matches_the_seed():
    record_ids = [f"{n:024d}" for n in range(50)]
    picks = list(map(instruction_chooser("task", 5, seed=7), record_ids))
    assert picks == list(map(instruction_chooser("task", 5, seed=7), record_ids))
    assert picks == [stable_hash("7", f"task-{r}") % 5 for r in record_ids], "the documented hash, continued per id"
    assert picks != list(map(instruction_chooser("task", 5, seed=8), record_ids))
    assert len(set(picks)) > 1 and set(picks) <= set(range(5))
    (mc,) = built("task007_extractive_qa_objective", [by_id("mrc-mc")])
    title = built("task003_title_generation", sample_records())[0]
    assert mc.query and not title.query
    definition = pa.array(["지시문", "제목을 지으시오."])
    context, query = pa.array([mc.context, title.context]), pa.array([mc.query, None], pa.string())
    inputs, after = place(definition, context, query, "after")
    assert inputs.to_pylist() == [f"{mc.context}\n\n{mc.query}", title.context]
    assert after[0].as_py().startswith(mc.context + "\n\n지시문\n\n보호수용제도와 성격이")
    assert after[1].as_py() == f"{title.context}\n\n제목을 지으시오."
    _, before = place(definition, context, query, "before")
    assert before.to_pylist() == [f"지시문\n\n{mc.context}\n\n{mc.query}", f"제목을 지으시오.\n\n{title.context}"]


# --- the stage through the pipeline runner ---------------------------------------------------


def publish(store: ArtifactStore, stage: str, version: str, write) -> None:
    with store.build(stage, version) as staging:
        write(staging.path)
        store.publish(staging, inputs={}, params={}, code_version="test")


def run_stage(root: Path, records: list[dict], bank_overrides: dict | None = None, **params):
    store = ArtifactStore(root)
    ingest_v = (
        "ingest-"
        + compute_version("ingest", "t", {"n": len(records), "first": records[0]["record_id"]}, {})[:8]
    )
    bank_v = "bank-" + compute_version("instructions", "t", {"o": bank_overrides or {}}, {})[:8]
    if not store.exists("ingest", ingest_v):
        publish(store, "ingest", ingest_v, lambda p: write_records(p / "records.parquet", records))
    if not store.exists("instructions", bank_v):
        publish(store, "instructions", bank_v, lambda p: write_bank(p / "bank.parquet", bank_overrides))
    config = ReformatConfig(**params)
    inputs = {"ingest": ingest_v, "instructions": bank_v}
    plan_params = config.model_dump(mode="json")
    version = compute_version(
        "reformat", STAGE.code_version, plan_params, inputs, dict(STAGE.fingerprint(config))
    )
    item = PlannedStage(STAGE, config, plan_params, inputs, version)
    result = execute(item, store, "test", ConsoleReporter(show_progress=False))
    return result, store.open("reformat", version)


def many_records(n_docs: int) -> list[dict]:
    return [r for i in range(n_docs) for r in sample_records(doc_prefix=f"d{i:03d}-")]


def shard(path: Path, task: str, split: str):
    return pq.read_table(path / "shards" / task / f"{split}.parquet")


def test_stage_writes_22_task_shards_with_metadata_and_card(tmp_path):
    result, artifact = run_stage(
        tmp_path / "a", sample_records(), validation_ratio=0.0, seed_jsonl_export=True
    )
    assert result.status == "ran"
    for task in SUPERNI_TASKS:
        train = shard(artifact.path, task.id, "train")
        assert train.num_rows > 0, task.id
        assert train.schema.equals(SHARD_SCHEMA), task.id
        row = train.slice(0, 1).to_pylist()[0]
        assert row["definition"] in row["prompt"] and row["input"] not in ("", None)
        assert row["definition"] not in row["input"]
        meta = json.loads((artifact.path / "tasks" / f"{task.id}.json").read_text(encoding="utf-8"))
        assert meta["Instances"] == train.num_rows and meta["Categories"] == [task.category]
        assert meta["Positive Examples"] and len(meta["Definition"]) == 3
    export = [
        json.loads(line)
        for line in (artifact.path / "seed_format.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert {e["Task_name"] for e in export} == {t.seed_name for t in SUPERNI_TASKS}
    card = (artifact.path / "data_card.md").read_text(encoding="utf-8")
    assert "task022_extractive_qa_yes_no_explanation" in card and "decontamination: skipped" in card
    assert (artifact.path / "composition.png").read_bytes()[:4] == b"\x89PNG"


def test_same_inputs_give_the_same_bytes(tmp_path):
    records = many_records(5)
    _, first = run_stage(tmp_path / "a", records, validation_ratio=0.3)
    _, second = run_stage(tmp_path / "b", records, validation_ratio=0.3)
    for task in SUPERNI_TASKS:
        for split in ("train", "validation"):
            name = f"shards/{task.id}/{split}.parquet"
            assert (first.path / name).read_bytes() == (second.path / name).read_bytes(), name


def test_documents_never_straddle_the_split(tmp_path):
    _, artifact = run_stage(tmp_path, many_records(30), validation_ratio=0.3)
    train_docs, validation_docs = set(), set()
    for task in SUPERNI_TASKS:
        train_docs |= set(shard(artifact.path, task.id, "train").column("doc_id").to_pylist())
        validation_docs |= set(shard(artifact.path, task.id, "validation").column("doc_id").to_pylist())
    assert train_docs and validation_docs
    assert not train_docs & validation_docs


def test_per_task_cap_and_minimum(tmp_path):
    _, artifact = run_stage(tmp_path / "cap", many_records(6), validation_ratio=0.0, per_task_max=4)
    assert all(shard(artifact.path, t.id, "train").num_rows <= 4 for t in SUPERNI_TASKS)
    assert artifact.report["tasks"]["task011_text_completion"]["capped"] > 0
    with pytest.raises(ReformatError, match="task013_text_simplification \\(1\\)"):
        run_stage(tmp_path / "min", sample_records(), validation_ratio=0.0, per_task_min=2)


def test_decontamination_drops_a_planted_overlap(tmp_path):
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    planted = "피해자가 입은 상처가 경미하더라도 상해로 볼 수 있다"
    (eval_dir / "nsmc.jsonl").write_text(
        json.dumps({"document": planted, "label": 1}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    _, artifact = run_stage(
        tmp_path / "art",
        sample_records(),
        validation_ratio=0.0,
        below_min="warn",
        decontaminate_against=str(eval_dir),
    )
    assert artifact.rows["contaminated"] > 0
    assert artifact.report["tasks"]["task002_summarization"]["contaminated"] >= 1
    for task in SUPERNI_TASKS:
        for row in shard(artifact.path, task.id, "train").to_pylist():
            assert "상처가 경미하더라도" not in (row["prompt"] + row["output"]), task.id
    assert "dropped" in artifact.report["decontamination"]


def test_records_are_flagged_through_any_text_field_whatever_the_spacing(tmp_path):
    from kositp.reformat.decontaminate import EvalIndex

    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "kornli.tsv").write_text(
        "sentence1\tsentence2\tgold_label\n국회는 법률안을 심의하여 의결한다\t정부는 매년 예산안을 편성하여 국회에 제출한다\tneutral\n",
        encoding="utf-8",
    )
    index = EvalIndex(tmp_path / "eval", 13)
    batch = pa.RecordBatch.from_pylist(
        [
            {"title": None, "text": "오늘은 맑고 따뜻한 날씨가 이어지겠습니다.", "options": ["비", "눈"]},
            {"text": "선택지를 고르시오.", "options": ["예", "국회는 법률안을심의하여  의결한다"]},
            {"text": None, "options": None, "title": "정부는 매년 예산안을 편성하여 국회에 제출한다고 밝혔다"},
            {"text": "국회는 법률안을", "options": ["심의하여 의결한다"]},
        ]
    )
    assert index.records_overlap(batch).tolist() == [False, True, True, False]
    # A null list slot may still span values (Arrow allows it): they belong to no record.
    options = pa.ListArray.from_arrays(
        pa.array([0, 1, 2, 3], pa.int32()),
        pa.array(["비", "국회는 법률안을 심의하여 의결한다", "눈"]),
        mask=pa.array([False, True, False]),
    )
    spanned = pa.RecordBatch.from_arrays([pa.array(["가", "나", "다"]), options], names=["text", "options"])
    assert index.records_overlap(spanned).tolist() == [False, False, False]


def test_an_instruction_shared_with_an_eval_set_drops_its_training_instances(tmp_path):
    from kositp.reformat.decontaminate import EvalIndex
    from kositp.reformat.shards import SplitParams, build_shards

    records = write_records(tmp_path / "records.parquet", many_records(3))
    tainted = "다음 글을 읽고 핵심 내용을 세 문장 이내로 요약하시오."
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "prompts.txt").write_text(tainted + "\n", encoding="utf-8")
    task = "task002_summarization"
    bank = {task: [Instruction("i0", tainted), Instruction("i1", "이 글을 짧게 줄이시오.")]}
    stats = build_shards(
        records,
        [task],
        bank,
        SplitParams(1, 0.0, None),
        {task: tmp_path / task},
        ConsoleReporter(show_progress=False),
        EvalIndex(tmp_path / "eval", 13),
    )
    kept = pq.read_table(tmp_path / task / "train.parquet").column("instruction_id").to_pylist()
    assert stats[task].contaminated > 0 and kept and set(kept) == {"i1"}
    assert stats[task].contaminated + len(kept) == stats[task].built


def test_unchanged_rerun_is_cached_and_one_task_change_rebuilds_one_shard(tmp_path):
    records = many_records(3)
    first, a = run_stage(tmp_path, records, validation_ratio=0.0)
    again, _ = run_stage(tmp_path, records, validation_ratio=0.0)
    assert (first.status, again.status) == ("ran", "cached")
    changed = {"task013_text_simplification": ["텍스트를 50자 이내의 한 문장으로 단순하게 바꾸시오."]}
    third, b = run_stage(tmp_path, records, bank_overrides=changed, validation_ratio=0.0)
    assert third.status == "ran" and b.version != a.version
    assert b.report["rebuilt"] == ["task013_text_simplification"] and len(b.report["reused"]) == 21
    assert set(shard(b.path, "task013_text_simplification", "train").column("definition").to_pylist()) == set(
        changed["task013_text_simplification"]
    )
    for task in SUPERNI_TASKS[:3]:
        name = f"shards/{task.id}/train.parquet"
        assert (a.path / name).read_bytes() == (b.path / name).read_bytes()


def test_supplementary_rows_are_mixed_at_the_ratio(tmp_path):
    alpaca = tmp_path / "kor_alpaca.jsonl"
    rows = [
        {"instruction": f"{n}의 제곱을 구하시오.", "input": "", "output": f"{n}의 제곱은 {n * n}입니다."}
        for n in range(1, 41)
    ]
    alpaca.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    _, artifact = run_stage(
        tmp_path / "art",
        many_records(2),
        validation_ratio=0.0,
        supplementary=[{"path": str(alpaca), "name": "kor_alpaca", "ratio": 0.25}],
    )
    task_train = sum(shard(artifact.path, t.id, "train").num_rows for t in SUPERNI_TASKS)
    supplementary = shard(artifact.path, "supplementary_kor_alpaca", "train")
    assert supplementary.num_rows == min(40, round(0.25 * task_train))
    row = supplementary.slice(0, 1).to_pylist()[0]
    assert row["prompt"] == row["definition"] and row["output"].endswith("입니다.")


def test_a_bad_supplementary_line_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"instruction": "인사하시오.", "output": "안녕하세요."}\n{"instruction": 3}\n', encoding="utf-8"
    )
    with pytest.raises(SupplementaryError, match="bad.jsonl:2"):
        list(read_alpaca(bad))


def test_a_task_with_only_validation_documents_trains_on_them_after_decontamination(tmp_path):
    from kositp.reformat.decontaminate import EvalIndex
    from kositp.reformat.shards import SplitParams, build_shards

    records = write_records(tmp_path / "records.parquet", sample_records())
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "hate.txt").write_text(
        "보호수용제도와 성격이 유사한 제도는 뭐지\n", encoding="utf-8"
    )
    tasks = ["task004_abstractive_qa_objective", "task020_abstractive_qa_yes_no"]
    bank = {t: [Instruction("i0", "보기에서 알맞은 답을 고르시오.")] for t in tasks}
    folders = {t: tmp_path / t for t in tasks}
    stats = build_shards(
        records,
        tasks,
        bank,
        SplitParams(1, 0.9999, None),
        folders,
        ConsoleReporter(show_progress=False),
        EvalIndex(tmp_path / "eval", 13),
    )
    assert (stats[tasks[0]].train, stats[tasks[0]].contaminated) == (0, 1)
    assert (stats[tasks[1]].train, stats[tasks[1]].validation, stats[tasks[1]].moved_to_train) == (1, 0, 1)
    assert pq.read_table(folders[tasks[1]] / "train.parquet").column("split").to_pylist() == ["train"]


def _parallel_inputs(tmp_path: Path):
    from kositp.reformat.build import load_bank
    from kositp.reformat.decontaminate import EvalIndex

    records = write_records(tmp_path / "records.parquet", many_records(6))
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "nsmc.txt").write_text(
        "피해자가 입은 상처가 경미하더라도 상해로 볼 수 있다\n", encoding="utf-8"
    )
    bank = load_bank(write_bank(tmp_path / "bank.parquet"))
    return records, bank, EvalIndex(tmp_path / "eval", 13)


def test_two_processes_write_the_same_shards_and_counts_as_one(tmp_path):
    from kositp.reformat.parallel import build_shards_parallel
    from kositp.reformat.shards import SplitParams

    records, bank, eval_index = _parallel_inputs(tmp_path)
    tasks = [t.id for t in SUPERNI_TASKS]
    results = {}
    for processes in (1, 2):
        folders = {t: tmp_path / f"p{processes}" / t for t in tasks}
        stats = build_shards_parallel(
            records, tasks, bank, SplitParams(7, 0.3, 5), folders, ConsoleReporter(show_progress=False),
            eval_index, processes=processes,
        )
        results[processes] = (
            {t: s.to_json() for t, s in stats.items()},
            {t: [(folders[t] / f"{s}.parquet").read_bytes() for s in ("train", "validation")] for t in tasks},
        )
    assert results[1] == results[2]
    assert sum(s["contaminated"] for s in results[2][0].values()) > 0
    assert sum(s["capped"] for s in results[2][0].values()) > 0
    assert not list((tmp_path / "p2").glob("*.worker.*")), "the worker's spec and log are removed"


def test_a_failing_worker_is_reported_with_its_log(tmp_path):
    from kositp.reformat.parallel import build_shards_parallel, record_mix, split_tasks
    from kositp.reformat.shards import SplitParams

    records, bank, eval_index = _parallel_inputs(tmp_path)
    tasks = [t.id for t in SUPERNI_TASKS]
    _, there = split_tasks(tasks, record_mix(records), child_start=0)
    assert there
    (tmp_path / "blocked").write_text("파일이 폴더 자리를 차지하고 있다", encoding="utf-8")
    folders = {t: tmp_path / "out" / t for t in tasks} | {there[-1]: tmp_path / "blocked" / there[-1]}
    with pytest.raises(RuntimeError, match=r"reformat worker failed \(exit code 1\)(.|\n)*NotADirectoryError"):
        build_shards_parallel(
            records, tasks, bank, SplitParams(7, 0.3, None), folders, ConsoleReporter(show_progress=False),
            eval_index, processes=2,
        )


def test_a_worker_that_dies_before_the_flags_meeting_is_reported_with_its_log(tmp_path):
    import shutil

    from kositp.reformat.parallel import build_shards_parallel
    from kositp.reformat.shards import SplitParams

    records, bank, eval_index = _parallel_inputs(tmp_path)
    shutil.rmtree(tmp_path / "eval")  # the worker builds its own index from the folder, and cannot
    tasks = [t.id for t in SUPERNI_TASKS]
    folders = {t: tmp_path / "out" / t for t in tasks}
    with pytest.raises(RuntimeError, match=r"reformat worker failed \(exit code 1\)(.|\n)*is not a folder"):
        build_shards_parallel(
            records, tasks, bank, SplitParams(7, 0.3, None), folders, ConsoleReporter(show_progress=False),
            eval_index, processes=2,
        )


def test_tasks_are_split_by_work_and_a_small_input_stays_in_one_process():
    from kositp.reformat.parallel import CHILD_START_RECORDS, share_work, split_tasks

    tasks = [t.id for t in SUPERNI_TASKS]
    mix = {("summary", None): 75_000, ("paper", None): 15_000, ("table_qa", "table"): 3_750}
    mix |= {("mrc", q): 10_500 for q in ("span", "long", "yes_no", "multiple_choice", "unanswerable")}
    here, there = split_tasks(tasks, mix)
    assert sorted(here + there) == sorted(tasks) and here and there
    finish = (share_work(here, mix), CHILD_START_RECORDS + share_work(there, mix))
    assert max(finish) < 0.6 * (share_work(tasks, mix) + CHILD_START_RECORDS)
    assert abs(finish[0] - finish[1]) < 0.1 * max(finish)
    small = {kind: n // 100 for kind, n in mix.items()}
    assert split_tasks(tasks, small) == (tasks, [])


def test_the_cap_keeps_the_smallest_keys_whatever_the_record_order(tmp_path):
    import random

    from kositp.reformat.build import load_bank
    from kositp.reformat.cap import TaskCap, record_hashes
    from kositp.reformat.shards import SplitParams, build_shards

    records = many_records(8)
    shuffled = records[:]
    random.Random(0).shuffle(shuffled)
    bank = load_bank(write_bank(tmp_path / "bank.parquet"))
    tasks = [t.id for t in SUPERNI_TASKS]
    reporter = ConsoleReporter(show_progress=False)

    def kept(name: str, rows: list[dict], cap: int | None):
        path = write_records(tmp_path / f"{name}.parquet", rows)
        folders = {t: tmp_path / name / t for t in tasks}
        stats = build_shards(path, tasks, bank, SplitParams(3, 0.3, cap), folders, reporter)
        tables = {t: pq.read_table(folders[t] / "train.parquet").to_pylist()
                  + pq.read_table(folders[t] / "validation.parquet").to_pylist() for t in tasks}
        return stats, tables

    _, everything = kept("all", records, None)
    stats, sample = kept("capped", shuffled, 3)
    for task in tasks:
        rows = everything[task]
        keys = TaskCap(task, 3, 3).keys(record_hashes([r["source_id"] for r in rows]))
        expected = [r for _, r in sorted(zip(keys, rows), key=lambda pair: pair[0])][:3]
        assert sorted(r["id"] for r in sample[task]) == sorted(r["id"] for r in expected), task
        task_stats = stats[task]
        assert task_stats.train + task_stats.validation == len(expected)
        assert task_stats.prompt_chars.total == sum(len(r["prompt"]) for r in sample[task])
        assert task_stats.output_chars.longest == max((len(r["output"]) for r in sample[task]), default=0)
    assert sum(s.capped for s in stats.values()) > 0


# --- the per-task cache key and its pruning -------------------------------------------------


def _package_copy(tmp_path: Path) -> Path:
    import shutil

    import kositp

    copy = tmp_path / "kositp"
    shutil.copytree(Path(kositp.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _key(task_id: str, code: str) -> str:
    bank = [Instruction("i1", "다음 글을 읽고 질문에 답하시오.")]
    return task_subversion(task_id, bank, "ingest-v1", ReformatConfig(), "no-eval", code=code)


def test_editing_a_helper_a_builder_calls_changes_the_task_keys(tmp_path):
    """task021 and task022 are lambdas around ``_with_clue``: the helper's source is in the key."""
    copy = _package_copy(tmp_path)
    before = source_digest(BUILD_MODULES, root=copy)
    assert before == build_code()  # the copy is the code that runs
    builders = copy / "reformat" / "builders.py"
    source = builders.read_text(encoding="utf-8")
    edited = source.replace('f"{built.output}\\n{clue}"', 'f"{built.output}\\n\\n{clue}"')  # the clue's separator
    assert edited != source
    builders.write_text(edited, encoding="utf-8")
    after = source_digest(BUILD_MODULES, root=copy)
    for task in ("task021_extractive_qa_objective_explanation", "task002_summarization"):
        assert _key(task, before) != _key(task, after), task


def test_a_helper_module_edit_reaches_the_key_and_an_unrelated_one_does_not(tmp_path):
    copy = _package_copy(tmp_path)
    before = source_digest(BUILD_MODULES, root=copy)
    unrelated = copy / "sft" / "recipe.py"
    unrelated.write_text(unrelated.read_text(encoding="utf-8") + "\n# 무관한 수정\n", encoding="utf-8")
    assert source_digest(BUILD_MODULES, root=copy) == before
    helper = copy / "text_hash.py"  # reached only through reformat.cap and reformat.decontaminate
    helper.write_text(helper.read_text(encoding="utf-8") + "\n# 해시 설명\n", encoding="utf-8")
    assert source_digest(BUILD_MODULES, root=copy) != before


def test_cache_entries_no_version_refers_to_are_pruned(tmp_path):
    import shutil

    records = many_records(2)
    cache = tmp_path / "_cache" / "reformat"
    _, first = run_stage(tmp_path, records, validation_ratio=0.0)
    _, second = run_stage(
        tmp_path, records, bank_overrides={"task013_text_simplification": ["짧게 줄여 쓰시오."]}, validation_ratio=0.0
    )
    assert {p.name for p in cache.iterdir() if p.is_dir()} == set(first.report["subversions"].values()) | set(
        second.report["subversions"].values()
    )
    shutil.rmtree(first.path)  # the first version is deleted (retention)
    (cache / f"{TMP_PREFIX}abandoned-build").mkdir()
    _, third = run_stage(
        tmp_path, records, bank_overrides={"task013_text_simplification": ["한 문장으로 쓰시오."]}, validation_ratio=0.0
    )
    kept = {p.name for p in cache.iterdir() if p.is_dir()}
    assert kept == set(second.report["subversions"].values()) | set(third.report["subversions"].values())
    assert first.report["subversions"]["task013_text_simplification"] not in kept


def test_pruning_waits_for_a_cache_another_run_is_using(tmp_path):
    cache = tmp_path / "reformat"
    (cache / "task001-old").mkdir(parents=True)
    with cache_in_use(cache) as ours, cache_in_use(cache):
        assert prune_cache(ours, cache, keep=set()) == []
        assert (cache / "task001-old").is_dir()
    with cache_in_use(cache) as ours:
        assert prune_cache(ours, cache, keep=set()) == ["task001-old"]
