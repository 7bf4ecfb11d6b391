"""The promotion gate: the served model changes only for one that is not worse."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from huggingface_hub import ModelCard
from store_builders import metrics_json, publish

from kositp.artifacts import ArtifactStore
from kositp.evaluate.stage import EvaluateConfig
from kositp.pipeline import PlannedStage, execute
from kositp.promote import stage as promote_stage
from kositp.promote.gate import judge
from kositp.promote.record import PromotionError, promoted, read_history, record_path
from kositp.promote.stage import STAGE, PromoteConfig
from kositp.reporting import ConsoleReporter

CARD = "---\nlanguage: ko\n---\n# 한국어 지시 학습 모델\n\n## Evaluation\n\nThis export is not evaluated yet.\n"
GOOD = {"kornli": 0.50, "question_pair": 0.70, "hate_speech": 0.60, "nsmc": 0.80}


def test_gate_promotes_the_first_model_and_a_better_one():
    assert judge(GOOD, None, 0.0, 0.05).promote
    better = {**GOOD, "nsmc": 0.85}
    verdict = judge(better, GOOD, 0.0, 0.05)
    assert verdict.promote and "+0.0125" in verdict.reason
    assert verdict.rows[-1] == {"set": "mean", "candidate": "0.6625", "promoted": "0.6500", "change": "+0.0125"}


def test_gate_keeps_the_old_model_when_the_mean_drops_beyond_the_tolerance():
    worse = {name: score - 0.02 for name, score in GOOD.items()}
    assert not judge(worse, GOOD, 0.01, 0.05).promote
    assert judge(worse, GOOD, 0.03, 0.05).promote


def test_gate_keeps_the_old_model_when_one_set_drops_too_far_even_if_the_mean_rises():
    lopsided = {**GOOD, "kornli": 0.40, "nsmc": 0.95}
    verdict = judge(lopsided, GOOD, 0.0, 0.05)
    assert not verdict.promote and "kornli -0.1000" in verdict.reason


def test_gate_refuses_scores_of_different_sets():
    with pytest.raises(ValueError, match="nsmc"):
        judge({"kornli": 0.5}, {"kornli": 0.5, "nsmc": 0.7}, 0.0, 0.05)


@pytest.fixture
def eval_dir(tmp_path):
    folder = tmp_path / "eval"
    folder.mkdir()
    (folder / "nsmc.tsv").write_text("id\tdocument\tlabel\n1\t정말 재미있는 영화였다\t1\n", encoding="utf-8")
    return folder


def _candidate(store, n, scores, eval_dir, **params):
    export = publish(store, "export", f"export{n:011d}", {"README.md": CARD, "merged/config.json": "{}"})
    evaluate_params = EvaluateConfig(data_dir=str(eval_dir), **params).model_dump(mode="json")
    return publish(
        store, "evaluate", f"evaluate{n:09d}", {"metrics.json": metrics_json(scores)},
        inputs={"export": export.version}, params=evaluate_params,
    )


def _promote(store, evaluation, config=None):
    config = config or PromoteConfig()
    item = PlannedStage(STAGE, config, config.model_dump(), {"evaluate": evaluation.version}, f"p{evaluation.version}")
    result = execute(item, store, "demo", ConsoleReporter(show_progress=False))
    return store.open("promote", result.version)


def test_promote_stage_keeps_a_worse_model_and_promotes_a_better_one(tmp_path, eval_dir):
    store = ArtifactStore(tmp_path / "store")
    first = _promote(store, _candidate(store, 1, GOOD, eval_dir))
    assert first.report["decision"] == "promoted"
    assert promoted(store.root, "demo").export_version == "export00000000001"

    worse = _promote(store, _candidate(store, 2, {**GOOD, "nsmc": 0.60}, eval_dir))
    assert worse.report["decision"] == "kept" and "nsmc -0.2000" in worse.report["reason"]
    assert promoted(store.root, "demo").export_version == "export00000000001"
    assert "kept" in (worse.path / "decision.md").read_text(encoding="utf-8")

    better = _promote(store, _candidate(store, 3, {**GOOD, "kornli": 0.55}, eval_dir))
    assert better.report["decision"] == "promoted"
    current = promoted(store.root, "demo")
    assert (current.export_version, current.promote_version) == ("export00000000003", better.version)
    history = read_history(store.root, "demo").history
    assert [(h["decision"], h["export_version"]) for h in history] == [
        ("promoted", "export00000000001"), ("kept", "export00000000002"), ("promoted", "export00000000003"),
    ]
    card = ModelCard.load(better.path / "README.md")
    results = {r.dataset_name: r.metric_value for r in card.data.eval_results}
    assert results["KorNLI"] == 0.55 and card.data.language == "ko"
    assert "promote: promoted" in card.text and "한국어 지시 학습 모델" in card.text


def test_promote_stage_re_evaluates_the_promoted_model_when_the_settings_differ(tmp_path, eval_dir, monkeypatch):
    store = ArtifactStore(tmp_path / "store")
    _promote(store, _candidate(store, 1, GOOD, eval_dir))
    rescored = []

    def evaluate_to(out_dir, model, config, reporter, previous, describe, held_in_source=None):
        rescored.append((str(model), config.limit))
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "metrics.json").write_text(metrics_json({**GOOD, "nsmc": 0.50}), encoding="utf-8")

    monkeypatch.setattr(promote_stage.evaluate_stage, "evaluate_to", evaluate_to)
    decided = _promote(store, _candidate(store, 2, {**GOOD, "nsmc": 0.55}, eval_dir, limit=100))
    assert rescored == [(str(store.path("export", "export00000000001") / "merged"), 100)]
    assert decided.report["decision"] == "promoted" and decided.report["baseline_mean_macro_f1"] == pytest.approx(0.575)
    assert [h["decision"] for h in read_history(store.root, "demo").history] == ["promoted", "rescored", "promoted"]


def test_a_damaged_record_is_reported_and_never_overwritten(tmp_path, eval_dir):
    store = ArtifactStore(tmp_path / "store")
    record_path(store.root, "demo").parent.mkdir(parents=True)
    record_path(store.root, "demo").write_text('{"current": {"export_version": ', encoding="utf-8")
    with pytest.raises(PromotionError, match="damaged"):
        _promote(store, _candidate(store, 1, GOOD, eval_dir))
    assert record_path(store.root, "demo").read_text(encoding="utf-8") == '{"current": {"export_version": '


def test_promote_and_promoted_commands_override_the_gate_and_show_the_history(tmp_path, eval_dir):
    store = ArtifactStore(tmp_path / "store")
    _promote(store, _candidate(store, 1, GOOD, eval_dir))
    _promote(store, _candidate(store, 2, {**GOOD, "nsmc": 0.10}, eval_dir))
    kositp = [sys.executable, "-m", "kositp"]
    args = ["--profile", "demo", "--root", str(store.root)]
    env = {**os.environ, "COLUMNS": "250"}
    manual = subprocess.run([*kositp, "promote", "export0000000000", *args, "--reason", "사람이 직접 승격"], check=False,
                            capture_output=True, text=True, env=env)
    assert manual.returncode == 1 and "matches 2 export versions" in manual.stderr
    manual = subprocess.run([*kositp, "promote", "export00000000002", *args, "--reason", "사람이 직접 승격"], check=False,
                            capture_output=True, text=True, env=env)
    assert manual.returncode == 0, manual.stderr
    current = promoted(store.root, "demo")
    assert (current.export_version, current.by, current.reason) == ("export00000000002", "manual", "사람이 직접 승격")
    assert current.scores["nsmc"] == 0.10
    shown = subprocess.run([*kositp, "promoted", *args, "--history"], check=False, capture_output=True, text=True, env=env)
    assert shown.returncode == 0 and "export export00000000002" in shown.stdout
    assert [line.split()[1] for line in shown.stdout.splitlines()[-3:]] == ["promoted", "kept", "promoted"]
    as_json = json.loads(subprocess.run([*kositp, "promoted", *args, "--json"], check=False, capture_output=True, text=True).stdout)
    assert as_json["current"]["by"] == "manual"


def test_gate_keeps_the_old_model_when_the_held_in_mean_drops():
    from kositp.promote.gate import HeldInCheck

    verdict = judge(GOOD, GOOD, 0.0, 0.05, HeldInCheck(0.40, 0.45, 0.01))
    assert not verdict.promote and "held-in mean 0.4000 is 0.0500 below" in verdict.reason
    assert verdict.rows[-1] == {"set": "held-in mean", "candidate": "0.4000", "promoted": "0.4500", "change": "-0.0500"}
    assert judge(GOOD, GOOD, 0.0, 0.05, HeldInCheck(0.40, 0.45, 0.06)).promote
    unknown = judge(GOOD, GOOD, 0.0, 0.05, HeldInCheck(0.40, None, 0.0))
    assert unknown.promote and unknown.rows[-1]["promoted"] == "none"


def _scored(raw: dict[str, float], calibrated: dict[str, float], held_in: float) -> str:
    """metrics.json with raw and calibrated macro F1, an AUC per set and one held-in category."""
    sets = {
        name: {"macro_f1": raw[name], "n": 10, "auc": 0.6, "calibrated": {"macro_f1": calibrated[name]}}
        for name in raw
    }
    held = {"models": {"tuned": {"categories": {"label": {"metric": "accuracy", "n": 5, "mean": held_in}}}}}
    return json.dumps({"sets": sets, "held_in": held})


def _calibrated_candidate(store, n, raw, calibrated, held_in, eval_dir):
    export = publish(store, "export", f"export{n:011d}", {"README.md": CARD, "merged/config.json": "{}"})
    reformat = publish(store, "reformat", "reformat0000001", {"shards/.keep": ""}) if n == 1 else None
    params = EvaluateConfig(data_dir=str(eval_dir), calibration="batch", held_in=True).model_dump(mode="json")
    return publish(
        store, "evaluate", f"evaluate{n:09d}", {"metrics.json": _scored(raw, calibrated, held_in)},
        inputs={"export": export.version, "reformat": reformat.version if reformat else "reformat0000001"},
        params=params,
    )


def test_the_gate_compares_the_metric_the_profile_names_and_records_it(tmp_path, eval_dir):
    store = ArtifactStore(tmp_path / "store")
    gate = PromoteConfig(metric="calibrated", held_in=True)
    first = _promote(store, _calibrated_candidate(store, 1, GOOD, GOOD, 0.5, eval_dir), gate)
    assert first.report["decision"] == "promoted" and promoted(store.root, "demo").metric == "calibrated"
    # better raw scores, worse calibrated ones: the calibrated gate keeps the promoted model
    raw_better = {name: score + 0.1 for name, score in GOOD.items()}
    calibrated_worse = {**GOOD, "nsmc": 0.70}
    kept = _promote(store, _calibrated_candidate(store, 2, raw_better, calibrated_worse, 0.5, eval_dir), gate)
    assert kept.report["decision"] == "kept" and kept.report["metric"] == "calibrated"
    assert "nsmc -0.1000" in kept.report["reason"]
    # the same calibrated scores and a lower held-in mean: kept for that reason
    held_lower = _promote(store, _calibrated_candidate(store, 3, GOOD, GOOD, 0.3, eval_dir), gate)
    assert held_lower.report["decision"] == "kept" and "held-in mean 0.3000" in held_lower.report["reason"]
    card = ModelCard.load(first.path / "README.md")
    names = {(r.dataset_name, r.metric_name) for r in card.data.eval_results}
    assert ("NSMC", "macro F1, batch-calibrated") in names and ("NSMC", "AUC of the label-score margin") in names
    assert ("KOSITP 22 tasks, validation split", "held-in accuracy") in names


def test_a_gate_asking_for_scores_the_evaluation_did_not_compute_is_one_clear_error(tmp_path, eval_dir):
    from kositp.promote.stage import PromoteSettingsError

    store = ArtifactStore(tmp_path / "store")
    evaluation = _candidate(store, 1, GOOD, eval_dir)  # calibration: none, held_in: false
    with pytest.raises(PromoteSettingsError, match="needs evaluate.calibration: batch"):
        _promote(store, evaluation, PromoteConfig(metric="calibrated"))
    with pytest.raises(PromoteSettingsError, match="needs evaluate.held_in: true"):
        _promote(store, evaluation, PromoteConfig(held_in=True))


def _kositp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kositp", *args], check=False, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "250"})


def test_a_profile_name_or_version_prefix_that_is_not_a_plain_name_is_refused(tmp_path, eval_dir):
    """``promote 4a07 --profile ../../../escaped --root R`` wrote ``R/../escaped.json``, and
    ``promote ''`` promoted the only export."""
    store = ArtifactStore(tmp_path / "store")
    _candidate(store, 1, GOOD, eval_dir)
    escaped = _kositp("promote", "export00000000001", "--profile", "../escaped", "--root", str(store.root))
    assert escaped.returncode == 1 and escaped.stderr.strip() == (
        "error: profile name '../escaped' is not a safe name: use 1 to 128 letters, digits, '_', '-' or '.', "
        "starting with a letter, digit or '_'")
    assert not (tmp_path / "escaped.json").exists() and not (store.root / "promoted-..").exists()
    empty = _kositp("promote", "", "--root", str(store.root))
    assert empty.returncode == 1 and empty.stderr.startswith("error: version prefix '' is not a safe name")
    assert promoted(store.root, "demo") is None


def test_promoted_says_when_the_promoted_export_is_gone(tmp_path, eval_dir):
    store = ArtifactStore(tmp_path / "store")
    _promote(store, _candidate(store, 1, GOOD, eval_dir))
    assert "warning" not in _kositp("promoted", "--root", str(store.root)).stderr
    shutil.rmtree(store.path("export", "export00000000001"))
    for args in ([], ["--json"]):
        shown = _kositp("promoted", "--root", str(store.root), *args)
        assert shown.returncode == 0
        assert shown.stderr.strip() == (
            f"warning: the promoted export export00000000001 is no longer under {store.root} (removed?): kositp serve "
            "cannot serve it; promote another export (kositp promote VERSION)")
