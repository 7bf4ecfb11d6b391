"""``kositp eval`` takes its options from EvaluateConfig: every field, its default, its choices."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from kositp.cli import app
from kositp.evaluate.config import EvaluateConfig


def _eval_command():
    import typer.main

    group = typer.main.get_command(app)
    return group.commands["eval"]


def test_every_evaluate_setting_is_an_option_with_its_default():
    options = {p.name: p for p in _eval_command().params}
    for name, field in EvaluateConfig.model_fields.items():
        if name in ("data_dir", "served_model"):  # the command's --data-dir and --model
            continue
        assert name in options, name
        default = field.get_default(call_default_factory=True)
        expected = ",".join(default) if isinstance(default, list) else default
        assert options[name].default == expected, name
        assert options[name].help and field.description in options[name].help, name


def _run(tmp_path: Path, monkeypatch, *extra: str):
    from kositp.evaluate import stage

    seen = {}

    def evaluate_to(out, model, config, reporter, previous, describe, held_in_source=None):
        seen["config"] = config
        return None, {}

    monkeypatch.setattr(stage, "evaluate_to", evaluate_to)
    model = tmp_path / "모델"
    model.mkdir(exist_ok=True)
    args = ["eval", "--model", str(model), "--data-dir", str(tmp_path / "eval"), "--out", str(tmp_path / "out")]
    return CliRunner().invoke(app, [*args, *extra]), seen, model


def test_options_reach_the_evaluation_settings(tmp_path, monkeypatch):
    result, seen, model = _run(
        tmp_path, monkeypatch,
        "--sets", "kornli,nsmc", "--limit", "3", "--choice-scoring", "per_byte", "--temperature", "0.7",
        "--prompt-set", "seed", "--seed-sample",
    )
    assert result.exit_code == 0, result.output
    assert seen["config"] == EvaluateConfig(
        data_dir=str(tmp_path / "eval"), served_model=str(model), sets=["kornli", "nsmc"], limit=3,
        choice_scoring="per_byte", temperature=0.7, seed_sample=True,
    )


def test_a_value_outside_the_choices_or_limits_exits_2(tmp_path, monkeypatch):
    result, seen, _ = _run(tmp_path, monkeypatch, "--method", "guess")
    assert result.exit_code == 2 and "guess" in result.output and not seen
    result, seen, _ = _run(tmp_path, monkeypatch, "--batch-size", "0")
    assert result.exit_code == 2 and "batch_size" in result.output and not seen
    result, seen, _ = _run(tmp_path, monkeypatch, "--sets", "kornli,없는셋")
    assert result.exit_code == 2 and "없는셋" in result.output and not seen



def test_the_model_is_any_reference_a_profile_takes(tmp_path, monkeypatch):
    """tiny-llama (and a GGUF package, under real_model) is built or converted into the model cache
    and evaluated from there; a local path that is not there is one line, exit 2."""
    monkeypatch.setenv("KOSITP_MODEL_CACHE", str(tmp_path / "모델캐시"))
    from kositp.evaluate import stage

    seen = {}
    monkeypatch.setattr(stage, "evaluate_to", lambda out, model, *rest: seen.update(model=model) or (None, {}))
    args = ["eval", "--data-dir", str(tmp_path / "eval"), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(app, [*args, "--model", "tiny-llama:hidden=16,layers=1,heads=2,kv_heads=1"])
    assert result.exit_code == 0, result.output
    assert Path(seen["model"]).parent == tmp_path / "모델캐시" / "models" and (Path(seen["model"]) / "config.json").is_file()
    missing = CliRunner().invoke(app, [*args, "--model", str(tmp_path / "없는모델")])
    assert missing.exit_code == 2 and "model not found" in missing.output
