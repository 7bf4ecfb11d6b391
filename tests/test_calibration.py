"""Batch calibration and the separation (AUC) of label scores: against sklearn, on planted scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from kositp.evaluate import calibration
from kositp.evaluate.backends import Sampling
from kositp.evaluate.calibration import score_metrics
from kositp.evaluate.config import EvaluateConfig
from kositp.evaluate.metrics import default_macro_f1, strict_macro_f1
from kositp.evaluate.prompts import SetPrompt
from kositp.evaluate.runner import evaluate_sets
from kositp.reporting import ConsoleReporter

LABELS = ["긍정", "부정"]


def test_the_fast_macro_f1s_are_sklearns_strict_and_invalid_dropped():
    rng = np.random.default_rng(1)
    for classes in (2, 3):
        for _ in range(20):
            gold = rng.integers(0, classes, 30)
            pred = rng.integers(-1, classes, 30)  # -1: invalid
            strict = f1_score(gold, pred, labels=list(range(classes)), average="macro", zero_division=0)
            assert strict_macro_f1(gold, pred, classes) == pytest.approx(strict)
            kept = pred >= 0
            dropped = f1_score(gold[kept], pred[kept], average="macro", zero_division=0)
            assert default_macro_f1(gold, pred, classes) == pytest.approx(dropped)


def test_separation_auc_is_sklearns_margin_auc_and_one_vs_rest_macro_auc():
    rng = np.random.default_rng(2)
    gold = rng.integers(0, 2, 80)
    scores = rng.normal(size=(80, 2)).round(1)  # ties included
    assert calibration.separation_auc(gold, scores) == pytest.approx(roc_auc_score(gold == 0, scores[:, 0] - scores[:, 1]))
    gold3 = rng.integers(0, 3, 90)
    scores3 = rng.normal(size=(90, 3))
    probs = np.exp(scores3) / np.exp(scores3).sum(axis=1, keepdims=True)
    expected = roc_auc_score(gold3, probs, multi_class="ovr", average="macro")
    assert calibration.separation_auc(gold3, scores3) == pytest.approx(expected)
    assert calibration.separation_auc(np.zeros(5, dtype=int), rng.normal(size=(5, 2))) is None


def _prior_bound_scores(n: int = 40) -> tuple[list[str], np.ndarray]:
    """A model that orders every input by its class but puts 3 nats of prior on 긍정: it always says 긍정."""
    gold = [LABELS[i % 2] for i in range(n)]
    signal = np.array([0.5 if g == "긍정" else -0.5 for g in gold])
    scores = np.stack([-2.0 + signal, -5.0 - signal], axis=1)
    return gold, scores


def test_calibration_removes_the_label_prior_and_auc_sees_through_it():
    gold, scores = _prior_bound_scores()
    m = score_metrics(gold, scores, LABELS, calibrate=True)
    assert m["predicted"] == {"긍정": 40, "부정": 0} and m["macro_f1"] == pytest.approx(1 / 3)
    assert m["calibration"]["offsets"] == pytest.approx({"긍정": -2.0, "부정": -5.0})
    assert m["calibrated"]["predicted"] == {"긍정": 20, "부정": 20} and m["calibrated"]["macro_f1"] == 1.0
    # a constant prior cannot move the AUC of the margin: the model separates the classes either way
    assert m["auc"] == m["calibrated"]["auc"] == 1.0
    without = score_metrics(gold, scores, LABELS, calibrate=False)
    assert without["calibration"] == {"method": "none"} and "calibrated" not in without


def test_the_calibrated_interval_re_estimates_the_offsets_in_every_resample():
    """Calibrated with the whole set's offsets every input is right; the offsets of a resample with
    more of one class move the boundary and flip the inputs nearest to it, which the interval shows."""
    gold = [LABELS[i % 2] for i in range(40)]
    margin = np.array([0.001 + 0.01 * i if g == "긍정" else -0.001 - 0.01 * i for i, g in enumerate(gold)])
    scores = np.stack([-3.0 + margin / 2, -3.0 - margin / 2], axis=1)
    m = score_metrics(gold, scores, LABELS, calibrate=True)
    assert m["calibrated"]["macro_f1"] == 1.0
    low, high = m["calibrated"]["macro_f1_ci95"]
    assert low < 0.95 and high == 1.0


def test_infinite_scores_cannot_be_calibrated():
    with pytest.raises(calibration.CalibrationError, match="calibration: none"):
        calibration.batch_offsets(np.array([[0.0, -np.inf], [-np.inf, 0.0]]))
    with pytest.raises(ValueError, match="needs method: choice"):
        EvaluateConfig(method="generate", calibration="batch")
    with pytest.raises(ValueError, match="openai backend"):
        EvaluateConfig(backend="openai", calibration="batch")


class _PlantedScores:
    """A backend that returns fixed label scores, one row per prompt in order."""

    name = "planted"

    def __init__(self, scores: np.ndarray):
        self.rows = iter(scores.tolist())

    def choose(self, prompts, labels, advance):
        advance(len(prompts))
        return [next(self.rows) for _ in prompts]


def test_sklearn_over_the_stored_calibrated_predictions_gives_the_reported_figures(tmp_path, monkeypatch):
    from kositp.evaluate import runner
    from kositp.evaluate.loaders import Example

    gold, scores = _prior_bound_scores(30)
    rng = np.random.default_rng(3)
    scores = scores + rng.normal(scale=0.8, size=scores.shape)  # not perfectly separated
    examples = [Example("nsmc", str(i), f"리뷰 {i}", g) for i, g in enumerate(gold)]
    monkeypatch.setattr(runner, "load_set", lambda *args, **kwargs: examples)
    prompt = SetPrompt("다음 영화 리뷰의 감정을 분류하세요.\n", {"1": "긍정", "0": "부정"})
    frame, metrics = evaluate_sets(
        tmp_path, ["nsmc"], {"nsmc": prompt}, _PlantedScores(scores), "choice",
        sampling=Sampling(), reporter=ConsoleReporter(show_progress=False), calibration="batch",
    )
    calibrated = metrics["nsmc"]["calibrated"]
    stored = frame["calibrated_prediction"].tolist()
    assert calibrated["macro_f1"] == pytest.approx(f1_score(gold, stored, labels=LABELS, average="macro"))
    margin = [row["긍정"] - row["부정"] for row in map(json.loads, frame["calibrated_scores"])]
    assert calibrated["auc"] == pytest.approx(roc_auc_score([g == "긍정" for g in gold], margin))
    raw_margin = [row["긍정"] - row["부정"] for row in map(json.loads, frame["label_scores"])]
    assert metrics["nsmc"]["auc"] == pytest.approx(roc_auc_score([g == "긍정" for g in gold], raw_margin))
    assert frame["prediction"].tolist() != stored
