"""The demo profile end to end through the Prefect flow, once per session; stage tests hang off it."""

import pytest

from kositp.artifacts import ArtifactStore
from kositp.config import load_profile
from kositp.stages import PIPELINE_ORDER, registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def demo_run(prefect_server, tmp_path_factory):
    from kositp_flows.pipeline import pipeline

    root = tmp_path_factory.mktemp("demo-artifacts")
    return root, pipeline(profile="demo", root=str(root))


def test_demo_runs_every_stage_in_order(demo_run):
    root, results = demo_run
    assert [r["stage"] for r in results] == [s for s in PIPELINE_ORDER if s in registry()] == list(PIPELINE_ORDER)
    assert {r["status"] for r in results} == {"ran"}
    store = ArtifactStore(root)
    for result in results:
        artifact = store.open(result["stage"], result["version"])
        assert set(artifact.manifest["inputs"]) >= set(registry()[result["stage"]].inputs)


def test_second_demo_run_is_all_cache_hits(demo_run):
    from kositp_flows.pipeline import pipeline

    root, first = demo_run
    second = pipeline(profile="demo", root=str(root))
    assert [(r["stage"], r["version"], r["status"]) for r in second] == [
        (r["stage"], r["version"], "cached") for r in first
    ]


def test_demo_profile_validates_every_section():
    from kositp.pipeline import plan

    assert [p.name for p in plan(load_profile("demo"))] == list(PIPELINE_ORDER)


def _artifact(demo_run, stage):
    root, results = demo_run
    (result,) = [r for r in results if r["stage"] == stage]
    return ArtifactStore(root).open(stage, result["version"])


def test_demo_ingest_accounts_for_every_record(demo_run):
    report = _artifact(demo_run, "ingest").report
    assert report["read"] == report["kept"] + report["rejected"] and report["rejected"] > 0
    assert {"mrc", "summary", "paper", "table_qa"} <= set(report["by_kind"])


def test_demo_reformat_yields_all_22_tasks_with_training_rows(demo_run):
    import pyarrow.parquet as pq

    from kositp.catalog import SUPERNI_TASKS

    shards = _artifact(demo_run, "reformat").path / "shards"
    for task in SUPERNI_TASKS:
        assert pq.read_metadata(shards / task.id / "train.parquet").num_rows > 0, task.id


def test_demo_training_chain_exports_a_checked_model_that_is_evaluated(demo_run):
    assert _artifact(demo_run, "sft").report["backend"] == "hf"
    assert _artifact(demo_run, "dpo").rows["pairs"] > 0
    export = _artifact(demo_run, "export")
    assert all(p["same"] for p in export.report["check"]["prompts"])
    assert (export.path / "merged" / "model.safetensors").is_file()
    evaluation = _artifact(demo_run, "evaluate")
    assert evaluation.manifest["inputs"]["export"] == export.version


def test_demo_evaluation_reports_what_its_predictions_score(demo_run):
    """The published scores are recomputed from the published predictions, set by set."""
    import json
    from pathlib import Path

    import pandas as pd

    from kositp.evaluate.metrics import set_metrics
    from kositp.evaluate.prompts import load_prompt_set
    from kositp.evaluate.sets import load_set

    evaluation = _artifact(demo_run, "evaluate")
    predictions = pd.read_parquet(evaluation.path / "predictions.parquet")
    prompts = load_prompt_set()
    data_dir = Path(__file__).resolve().parents[1] / load_profile("demo").section("evaluate")["data_dir"]
    assert set(evaluation.report["sets"]) == {"kornli", "question_pair", "hate_speech", "nsmc"}
    metrics = json.loads(evaluation.file("metrics.json").read_text(encoding="utf-8"))
    for name, reported in evaluation.report["sets"].items():
        frame = predictions[predictions["set"] == name]
        gold = [e.gold for e in load_set(name, data_dir, prompts[name].labels)]
        assert sorted(frame["gold"]) == sorted(gold) and reported["n"] == len(gold), name
        # choice: each prediction is the label word the model scored highest
        for scores, prediction in zip(frame["label_scores"], frame["prediction"]):
            scores = json.loads(scores)
            assert prediction == max(scores, key=scores.get), name
        expected = set_metrics(frame["gold"].tolist(), frame["prediction"].tolist(), prompts[name].label_words)
        assert reported["macro_f1"] == pytest.approx(expected["macro_f1"]), name
        assert reported["coverage"] == expected["coverage"] == 1.0, name
        # batch-calibrated: the stored calibrated predictions give the reported macro F1
        calibrated = set_metrics(frame["gold"].tolist(), frame["calibrated_prediction"].tolist(), prompts[name].label_words)
        assert reported["calibrated_macro_f1"] == pytest.approx(calibrated["macro_f1"]), name
    held = metrics["held_in"]
    assert set(held["models"]) == {"tuned", "base"} and held["models"]["tuned"]["categories"]
    assert evaluation.rows["held_in_examples"] == sum(c["n"] for c in held["models"]["tuned"]["categories"].values())


def test_kositp_run_shows_a_line_per_stage_the_summary_and_what_to_do_next(demo_run, prefect_server, tmp_path):
    """What a user sees of a run (here a copy of the demo with its export rebuilt): the stage lines,
    the table and three closing lines; the libraries' output and the export check's raw model
    output go to the run's log file, named first."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = tmp_path / "데모"
    shutil.copytree(demo_run[0], root)
    run = subprocess.run(
        [sys.executable, "-m", "kositp", "run", "--profile", "demo", "--root", str(root), "--force", "export"],
        capture_output=True, text=True, timeout=600, check=False, env={**os.environ, "PREFECT_LOGGING_LEVEL": "INFO"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    details, *stage_lines = run.stderr.splitlines()
    log = Path(details.split()[1])
    assert details.startswith("details: ") and log.parent == root / "_logs"
    assert [line.split()[:4] for line in stage_lines] == [
        [f"[{i}/8]", stage, version, "ran" if stage == "export" else "cached"]
        for i, (stage, version) in enumerate(((r["stage"], r["version"]) for r in demo_run[1]), 1)
    ]
    *table, blank, artifacts, ui, chat = run.stdout.splitlines()
    assert table[0].split() == ["stage", "version", "status", "path"] and len(table) == 9 and blank == ""
    evaluate, promote = (f"{r['stage']}/{r['version']}" for r in demo_run[1][-2:])
    assert artifacts.startswith(f"Artifacts: {root} (scores: {evaluate}/report.md, {promote}/decision.md)")
    assert ui == f"Runs, tables and plots in the Prefect UI: {prefect_server.removesuffix('/api')}."
    assert chat.startswith("Chat with the model: `kositp serve --model ") and "`kositp chat`" in chat
    assert "the demo's tiny model writes nonsense by design" in chat
    logged = log.read_text(encoding="utf-8")
    assert "merged_output" in logged and "merged_output" not in run.stderr + run.stdout
