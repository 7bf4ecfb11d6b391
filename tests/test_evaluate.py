"""The evaluate stage: loaders on the real layouts, metrics, choice/generate, backends, CLI, stage."""

from __future__ import annotations

import json
import shutil
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest
from sklearn.metrics import f1_score

from kositp.evaluate.backends import BackendError, OpenAIBackend, Sampling, VLLMBackend, make_backend
from kositp.evaluate.loaders import EvalDataError, stratified_sample
from kositp.evaluate.metrics import INVALID, set_metrics
from kositp.evaluate.prompts import load_prompt_set
from kositp.evaluate.runner import normalised_scores, parse_generation, predict
from kositp.evaluate.sets import load_set
from kositp.models.causal_lm import label_logprobs, prompt_ids
from kositp.reporting import ConsoleReporter

PROMPTS = load_prompt_set()
REVIEWS = ("지루하고\r 별로", "재밌다 최고")


def _labels(name: str) -> dict[str, str]:
    return PROMPTS[name].labels


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def eval_dir(tmp_path: Path) -> Path:
    """One folder per set, each in its official layout with the real quirks."""
    root = tmp_path / "eval"
    _write(
        root / "kornli" / "xnli.test.ko.tsv",
        'sentence1\tsentence2\tgold_label\n그는 "좋아요, 갈게요."라고 말했다.\t그는 가겠다고 했다.\tentailment\n'
        "고양이가 창가에서 자고 있다.\t고양이는 밖에서 뛰어다닌다.\tcontradiction\n"
        "고양이가 창가에서 자고 있다.\t고양이는 세 살이다.\tneutral\n".encode(),
    )
    _write(  # BOM, CRLF, trailing comma, test_id, a stray extra cell in the unnamed column
        root / "kor_question_pair" / "kor_Pair_test.csv",
        "\ufefftest_id,question1,question2,is_duplicate,\r\n1,배고파,뭐 먹지,0,\r\n2,비가 와,우산 챙겨,1,\r\n"
        "3,심심해,놀아줘,0,1\r\n".encode(),
    )
    _write(  # the train file: id, qid columns, no trailing comma, a quoted comma, no final newline
        root / "kor_question_pair" / "kor_pair_train.csv",
        '\ufeffid,qid1,qid2,question1,question2,is_duplicate\r\n1,1,2,"아, 피곤해",너무 지쳐,0\r\n2,3,4,시험 끝,여행 가자,1'.encode(),
    )
    _write(
        root / "korean_hate_speech" / "train.tsv",
        "comments\tcontain_gender_bias\tbias\thate\n여자는 운전을 못 해\tTrue\tgender\thate\n"
        "노래 좋아요\tFalse\tnone\tnone\n나이 든 사람은 고집이 세\tFalse\tothers\toffensive\n".encode(),
    )
    _write(
        root / "korean_hate_speech" / "dev.tsv",
        "comments\tcontain_gender_bias\tbias\thate\n영상 멋져요\tFalse\tnone\tnone\n".encode(),
    )
    _write(  # a bare carriage return inside a review, as in the real crawl
        root / "nsmc" / "ratings_test.txt",
        (
            "id\tdocument\tlabel\n" + "".join(f"{100 + i}\t{REVIEWS[i % 2]}\t{i % 2}\n" for i in range(20))
        ).encode(),
    )
    return root


def test_loaders_read_each_layout_with_its_quirks(eval_dir: Path):
    kornli = load_set("kornli", eval_dir, _labels("kornli"))
    assert [e.gold for e in kornli] == ["함의", "모순", "중립"]
    assert kornli[0].text == '전제: 그는 "좋아요, 갈게요."라고 말했다.\n가설: 그는 가겠다고 했다.'

    pairs = load_set("question_pair", eval_dir, _labels("question_pair"))
    assert [(e.id, e.gold) for e in pairs] == [
        ("kor_Pair_test:1", "긍정"),
        ("kor_Pair_test:2", "부정"),
        ("kor_Pair_test:3", "긍정"),
        ("kor_pair_train:1", "긍정"),
        ("kor_pair_train:2", "부정"),
    ]
    assert pairs[3].text == "질문1: 아, 피곤해\n질문2: 너무 지쳐"

    hate = load_set("hate_speech", eval_dir, _labels("hate_speech"))
    assert [e.gold for e in hate] == [
        "사회적 편견 있음",
        "사회적 편견 없음",
        "사회적 편견 있음",
        "사회적 편견 없음",
    ]
    assert [e.id for e in hate] == ["train:1", "train:2", "train:3", "dev:1"]

    nsmc = load_set("nsmc", eval_dir, _labels("nsmc"))
    assert len(nsmc) == 20 and nsmc[0].gold == "부정" and nsmc[1].gold == "긍정"
    assert "\r" in nsmc[0].text


def test_nsmc_seed_sample_is_stratified_and_reproducible(eval_dir: Path):
    sample = load_set("nsmc", eval_dir, _labels("nsmc"), seed_sample=True)
    assert len(sample) == 4
    assert sorted(e.gold for e in sample) == ["긍정", "긍정", "부정", "부정"]
    assert sample == load_set("nsmc", eval_dir, _labels("nsmc"), seed_sample=True)
    assert stratified_sample([], 0.2, 42) == []


def test_limit_takes_a_seeded_subset(eval_dir: Path):
    first = load_set("nsmc", eval_dir, _labels("nsmc"), limit=5, seed=1)
    assert len(first) == 5 and first == load_set("nsmc", eval_dir, _labels("nsmc"), limit=5, seed=1)


def test_bad_or_missing_files_name_the_file(eval_dir: Path):
    (eval_dir / "kornli" / "xnli.test.ko.tsv").unlink()
    with pytest.raises(EvalDataError, match=r"xnli\.test\.ko\.tsv: file not found"):
        load_set("kornli", eval_dir, _labels("kornli"))
    _write(
        eval_dir / "kornli" / "xnli.test.ko.tsv", "sentence1\tsentence2\tgold_label\n가\t나\tmaybe\n".encode()
    )
    with pytest.raises(EvalDataError, match=r"xnli\.test\.ko\.tsv:2: unknown label 'maybe'"):
        load_set("kornli", eval_dir, _labels("kornli"))
    _write(eval_dir / "nsmc" / "ratings_test.txt", "id\tdocument\n1\t좋다\n".encode())
    with pytest.raises(EvalDataError, match=r"ratings_test\.txt: header .* lacks column\(s\) label"):
        load_set("nsmc", eval_dir, _labels("nsmc"))
    _write(eval_dir / "korean_hate_speech" / "dev.tsv", "comments\tbias\n욕설\tmaybe\n".encode())
    with pytest.raises(EvalDataError, match=r"dev\.tsv:2: unknown bias 'maybe'"):
        load_set("hate_speech", eval_dir, _labels("hate_speech"))
    shutil.rmtree(eval_dir / "kor_question_pair")
    with pytest.raises(EvalDataError, match="kor_question_pair: folder for set 'question_pair' not found"):
        load_set("question_pair", eval_dir, _labels("question_pair"))


def test_metrics_match_hand_computed_values():
    gold = ["긍정", "긍정", "부정", "부정"]
    pred = ["긍정", "부정", "부정", INVALID]
    m = set_metrics(gold, pred, ["긍정", "부정"])
    # over the gold labels only: 긍정 (P 1, R 1/2, F1 2/3), 부정 (P 1/2, R 1/2, F1 1/2); invalid is wrong
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    # the seed's metric drops the invalid answer: 긍정 F1 2/3, 부정 F1 2/3
    assert m["seed_macro_f1"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["coverage"] == pytest.approx(0.75)
    assert m["per_class"]["긍정"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert m["confusion_matrix"] == {
        "labels": ["긍정", "부정", INVALID],
        "matrix": [[1, 1, 0], [0, 1, 1], [0, 0, 0]],
    }
    low, high = m["macro_f1_ci95"]
    assert 0.0 <= low <= high <= 1.0
    assert set_metrics(gold, pred, ["긍정", "부정"])["macro_f1_ci95"] == m["macro_f1_ci95"]


def test_one_invalid_answer_among_a_thousand_costs_a_thousandth_not_a_third():
    """The strict metric is sklearn's macro F1 with ``labels=`` the gold labels, invalid counted wrong."""
    gold = ["긍정", "부정"] * 500
    pred = [INVALID, *gold[1:]]
    m = set_metrics(gold, pred, ["긍정", "부정"])
    assert m["macro_f1"] == f1_score(gold, pred, labels=["긍정", "부정"], average="macro")
    assert m["macro_f1"] == pytest.approx(0.9995, abs=1e-4)  # sklearn's default gives 0.667 here
    assert m["seed_macro_f1"] == 1.0 and m["coverage"] == pytest.approx(0.999)
    low, high = m["macro_f1_ci95"]
    assert 0.99 < low <= m["macro_f1"] <= high <= 1.0


def test_per_byte_choice_scoring_divides_by_the_label_length():
    labels = ["중립", "사회적 편견 없음"]
    assert normalised_scores([-6.0, -23.0], labels, "sum") == [-6.0, -23.0]
    assert normalised_scores([-6.0, -23.0], labels, "per_byte") == [-1.0, -1.0]  # 6 and 23 bytes
    with pytest.raises(ValueError, match="unknown choice scoring 'mean'"):
        normalised_scores([-1.0], labels[:1], "mean")


def test_generate_parsing_cuts_at_the_marker_and_flags_invalid_answers():
    labels = ["사회적 편견 있음", "사회적 편견 없음"]
    assert parse_generation(" 사회적 편견 없음$&%</s>그 뒤의 잡음", labels) == "사회적 편견 없음"
    assert parse_generation("사회적 편견 있음", labels) == "사회적 편견 있음"
    assert parse_generation("편견이 있는 것 같습니다$&%", labels) == INVALID
    assert parse_generation("", labels) == INVALID


class _PlantedGenerator:
    """A backend whose generations are fixed, to check that generate stores what it parses."""

    name = "stub"

    def __init__(self, outputs):
        self.outputs = outputs

    def generate(self, prompts, sampling, advance):
        advance(len(prompts))
        return self.outputs[: len(prompts)]


def test_generate_method_stores_invalid_predictions(eval_dir: Path):
    examples = load_set("nsmc", eval_dir, _labels("nsmc"), limit=3)
    frame, _ = predict(
        examples,
        PROMPTS["nsmc"],
        _PlantedGenerator(["긍정$&%", "잘 모르겠어요", "부정"]),
        "generate",
        Sampling(),
        ConsoleReporter(show_progress=False),
    )
    assert frame["prediction"].tolist() == ["긍정", INVALID, "부정"]
    assert frame["raw_output"].tolist() == ["긍정$&%", "잘 모르겠어요", "부정"]


def _train_preference(backend, prompts: list[str], label: str, steps: int = 40) -> None:
    """Teach the tiny model to answer ``label`` after these prompts (loss on the label tokens only)."""
    import torch

    torch.manual_seed(0)
    model = backend.model
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    label_ids = backend.tokenizer(label, add_special_tokens=False)["input_ids"]
    for _ in range(steps):
        for prompt in prompts:
            ids = prompt_ids(backend.tokenizer, prompt) + label_ids
            targets = torch.tensor([[-100] * (len(ids) - len(label_ids)) + label_ids])
            loss = model(input_ids=torch.tensor([ids]), labels=targets).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()


def test_choice_picks_the_label_a_trained_model_prefers(tiny_model_dir: Path, eval_dir: Path):
    import torch

    torch.set_num_threads(1)
    backend = make_backend("hf", tiny_model_dir, batch_size=4)
    examples = load_set("kornli", eval_dir, _labels("kornli"))
    quiet = ConsoleReporter(show_progress=False)
    before, _ = predict(examples, PROMPTS["kornli"], backend, "choice", Sampling(), quiet)
    target = next(w for w in PROMPTS["kornli"].label_words if w != before["prediction"].iloc[0])
    _train_preference(backend, [PROMPTS["kornli"].render(e.text) for e in examples], target)
    after, _ = predict(examples, PROMPTS["kornli"], backend, "choice", Sampling(), quiet)
    assert after["prediction"].tolist() == [target] * len(examples)
    scores = json.loads(after["label_scores"].iloc[0])
    assert max(scores, key=scores.get) == target
    # batched scoring equals scoring one sequence at a time
    single = label_logprobs(
        backend.model,
        backend.tokenizer,
        [prompt_ids(backend.tokenizer, PROMPTS["kornli"].render(examples[0].text))],
        [backend.tokenizer(w, add_special_tokens=False)["input_ids"] for w in PROMPTS["kornli"].label_words],
    )[0]
    assert single == pytest.approx(list(scores.values()), abs=1e-4)


def test_choice_scores_each_prompt_as_alone_whatever_the_batches_lengths(tiny_model_dir: Path):
    """Batches are cut in order of prompt length: every prompt's scores still come back in its own
    place, equal to scoring it alone."""
    import torch

    torch.set_num_threads(1)
    backend = make_backend("hf", tiny_model_dir, batch_size=2)
    reviews = ["재미없다", "배우들의 연기가 정말 훌륭했고 음악도 좋아서 두 번이나 봤습니다", "최고", "시간이 아까운 영화"]
    prompts = [PROMPTS["nsmc"].render(r) for r in reviews]
    words = PROMPTS["nsmc"].label_words
    scores = backend.choose(prompts, words, lambda n: None)
    label_ids = [backend.tokenizer(w, add_special_tokens=False)["input_ids"] for w in words]
    for prompt, got in zip(prompts, scores):
        alone = label_logprobs(backend.model, backend.tokenizer, [prompt_ids(backend.tokenizer, prompt)], label_ids)[0]
        assert got == pytest.approx(alone, abs=1e-4)


def test_generate_on_the_tiny_model_answers_what_it_was_taught(tiny_model_dir: Path, eval_dir: Path):
    """Batched, left-padded sampling continues each prompt, and the answer is cut at the marker."""
    import torch

    torch.set_num_threads(1)
    backend = make_backend("hf", tiny_model_dir, batch_size=4)
    examples = load_set("nsmc", eval_dir, _labels("nsmc"), limit=4)
    prompts = [PROMPTS["nsmc"].render(e.text) for e in examples]
    assert len({len(prompt_ids(backend.tokenizer, p)) for p in prompts}) > 1  # the batch needs padding
    _train_preference(backend, prompts, "부정$&%")
    frame, _ = predict(
        examples,
        PROMPTS["nsmc"],
        backend,
        "generate",
        Sampling(max_new_tokens=6),
        ConsoleReporter(show_progress=False),
    )
    assert all(raw.startswith("부정$&%") for raw in frame["raw_output"]), frame["raw_output"].tolist()
    assert frame["prediction"].tolist() == ["부정"] * 4
    m = set_metrics(frame["gold"].tolist(), frame["prediction"].tolist(), PROMPTS["nsmc"].label_words)
    assert m["coverage"] == 1.0


class _Completions(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, **body})
        choice = (body.get("structured_outputs") or {}).get("choice")
        text = choice[-1] if choice else "긍정$&% 그리고 더"
        reply = {
            "id": "cmpl-1",
            "object": "text_completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
        }
        data = json.dumps(reply, ensure_ascii=False).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def completions_server():
    _Completions.requests = []
    server = HTTPServer(("127.0.0.1", 0), _Completions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    thread.join()


def test_openai_backend_against_a_loopback_server(completions_server: str):
    backend = make_backend("openai", "ignored", base_url=completions_server, served_model="kositp-demo")
    assert isinstance(backend, OpenAIBackend)
    scores = backend.choose(["###입력:리뷰\n\n###출력:"], ["긍정", "부정"], lambda n: None)
    assert scores == [[float("-inf"), 0.0]]
    texts = backend.generate(["###입력:리뷰\n\n###출력:"], Sampling(max_new_tokens=7), lambda n: None)
    assert texts == ["긍정$&% 그리고 더"]
    choice_req, gen_req = _Completions.requests
    assert choice_req["path"] == "/v1/completions" and choice_req["model"] == "kositp-demo"
    assert choice_req["structured_outputs"] == {"choice": ["긍정", "부정"]}
    assert gen_req["max_tokens"] == 7 and gen_req["temperature"] == 0.5 and gen_req["top_k"] == 50


def test_vllm_backend_needs_its_own_python(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("KOSITP_VLLM_PYTHON", raising=False)
    with pytest.raises(BackendError, match="KOSITP_VLLM_PYTHON"):
        make_backend("vllm", tmp_path)
    with pytest.raises(BackendError, match="does not exist"):
        make_backend("vllm", tmp_path, vllm_python=str(tmp_path / "no-python"))


FAKE_VLLM = """
class SamplingParams:
    def __init__(self, **kw):
        self.kw = kw

class TokensPrompt(dict):
    def __init__(self, prompt_token_ids):
        super().__init__(prompt_token_ids=prompt_token_ids)

class _Logprob:
    def __init__(self, value):
        self.logprob = value

class _Completion:
    def __init__(self, text):
        self.text = text

class _Output:
    def __init__(self, ids=None, text=""):
        self.prompt_logprobs = None if ids is None else [None] + [{t: _Logprob(-float(t))} for t in ids[1:]]
        self.outputs = [_Completion(text)]

class _Tokenizer:
    def encode(self, text, add_special_tokens=True):
        return [len(text)] if add_special_tokens else [ord(c) % 7 + 1 for c in text]

class LLM:
    def __init__(self, model, seed=0, tensor_parallel_size=1):
        self.model = model

    def get_tokenizer(self):
        return _Tokenizer()

    def generate(self, requests, params):
        if "prompt_logprobs" in params.kw:
            return [_Output(ids=r["prompt_token_ids"]) for r in requests]
        return [_Output(text=p + "|" + str(params.kw["max_tokens"])) for p in requests]
"""


def test_vllm_worker_protocol_with_a_stand_in_engine(monkeypatch, tmp_path: Path):
    """The subprocess worker end to end, with a stand-in ``vllm`` module (no GPU here)."""
    _write(tmp_path / "fake" / "vllm" / "__init__.py", FAKE_VLLM.encode())
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "fake"))
    backend = make_backend("vllm", tmp_path / "model", vllm_python=sys.executable)
    assert isinstance(backend, VLLMBackend)
    scores = backend.choose(["가", "나다"], ["긍정", "부정"], lambda n: None)
    expected = [[-float(sum(ord(c) % 7 + 1 for c in w)) for w in ("긍정", "부정")]] * 2
    assert scores == expected
    assert backend.generate(["리뷰"], Sampling(max_new_tokens=9), lambda n: None) == ["리뷰|9"]
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "nothing"))
    with pytest.raises(BackendError, match="vllm is not importable"):
        backend.choose(["가"], ["긍정"], lambda n: None)


def test_cli_json_macro_f1_equals_sklearn_on_predictions(
    tiny_model_dir: Path, eval_dir: Path, tmp_path: Path
):
    from typer.testing import CliRunner

    from kositp.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--model",
            str(tiny_model_dir),
            "--data-dir",
            str(eval_dir),
            "--out",
            str(out),
            "--sets",
            "kornli,nsmc",
            "--limit",
            "6",
            "--method",
            "generate",
            "--backend",
            "hf",
            "--json",
        ]
        + ["--batch-size", "4"],
    )
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip().splitlines()[-1])
    frame = pd.read_parquet(out / "predictions.parquet")
    assert set(frame.columns) >= {"set", "id", "gold", "raw_output", "prediction"}
    assert set(line["sets"]) == {"kornli", "nsmc"}
    for name, metrics in line["sets"].items():
        part = frame[frame["set"] == name]
        assert metrics["n"] == len(part)
        words = PROMPTS[name].label_words
        assert metrics["macro_f1"] == f1_score(part["gold"], part["prediction"], labels=words, average="macro")
        assert metrics["coverage"] == (part["prediction"] != INVALID).mean()
    assert {p.name for p in out.iterdir()} >= {"predictions.parquet", "metrics.json", "report.md", "f1.png"}


def test_cli_names_a_missing_data_folder(tiny_model_dir: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from kositp.cli import app

    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--model",
            str(tiny_model_dir),
            "--data-dir",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
            "--sets",
            "nsmc",
            "--backend",
            "hf",
        ],
    )
    assert result.exit_code == 2
    assert "nsmc: folder for set 'nsmc' not found" in result.output


def test_real_shared_files_load_with_their_row_counts(shared_dir: Path):
    data = shared_dir / "datasets" / "eval"
    counts = {name: len(load_set(name, data, _labels(name))) for name in PROMPTS}
    # question pair: 688 test + 6,888 train rows (the datasets README's 687 / 6,887 count lines, and
    # both files end without a final newline)
    assert counts == {"kornli": 5010, "question_pair": 688 + 6888, "hate_speech": 7896 + 471, "nsmc": 10000}
    assert len(load_set("nsmc", data, _labels("nsmc"), seed_sample=True)) == 2000


def _with_stand_in_export(tiny_model_dir: Path) -> dict:
    """The evaluate stage after an export stand-in whose ``merged/`` is the untrained tiny model."""
    from pydantic import BaseModel, ConfigDict

    from kositp.evaluate.stage import STAGE

    class StandInExportConfig(BaseModel):
        model_config = ConfigDict(extra="allow")
    from kositp.stages import Stage, StageOutcome

    def export_run(ctx):
        shutil.copytree(tiny_model_dir, ctx.out_dir / "merged")
        return StageOutcome()

    return {
        "export": Stage(name="export", code_version="1", config=StandInExportConfig, run=export_run),
        "evaluate": STAGE,
    }


def test_stage_runs_on_an_export_artifact_and_compares_with_the_promoted_model_never_with_itself(
    tiny_model_dir: Path, eval_dir: Path, tmp_path: Path
):
    """The demo profile's evaluate section, run by the pipeline runner on a stand-in export artifact."""
    from dataclasses import replace

    from kositp.artifacts import ArtifactStore
    from kositp.config import load_profile
    from kositp.evaluate.stage import STAGE
    from kositp.pipeline import execute, plan
    from kositp.promote.record import Promotion, record_decision
    from kositp.stages import registry

    assert registry()["evaluate"] is STAGE
    stages = _with_stand_in_export(tiny_model_dir)
    store = ArtifactStore(tmp_path / "artifacts")
    quiet = ConsoleReporter(show_progress=False)

    def evaluate(limit: int, force: bool = False) -> tuple[str, str]:
        profile = load_profile(
            "demo", [f"evaluate.data_dir={eval_dir}", f"evaluate.limit={limit}", "evaluate.held_in=false"], root=store.root
        )
        planned = plan(profile, stages)
        results = [execute(item, store, profile.name, quiet, force=force) for item in planned]
        assert [r.status for r in results][-1] == "ran"
        artifact = store.open("evaluate", results[-1].version)
        metrics = json.loads(artifact.file("metrics.json").read_text(encoding="utf-8"))["sets"]
        assert set(metrics) == {"kornli", "question_pair", "hate_speech", "nsmc"}
        assert all(m["coverage"] == 1.0 and m["n"] == limit for m in metrics.values())
        assert artifact.rows["nsmc_examples"] == limit
        assert (artifact.path / "f1.png").stat().st_size > 0
        return artifact.manifest["inputs"]["export"], artifact.file("report.md").read_text(encoding="utf-8")

    export, first = evaluate(2)
    assert "No previous evaluation to compare with" in first

    scores = dict.fromkeys(("kornli", "question_pair", "hate_speech", "nsmc"), 0.987)
    other = Promotion("fedcba9876543210", "evaluate-of-other", scores, 0.987, {}, "test")
    record_decision(store.root, "demo", other, "promoted")
    _, against_promoted = evaluate(3)
    assert "| previous |" in against_promoted and "SOLAR 10.7B TaskInstruct" in against_promoted
    assert "previous: the promoted export fedcba9876543210" in against_promoted
    assert against_promoted.count("| 0.987 |") == 4

    record_decision(store.root, "demo", replace(other, export_version=export), "promoted")
    _, forced = evaluate(3, force=True)  # the promoted model's own evaluation, again
    assert "| previous |" not in forced and "the promoted model itself: no other model to compare with" in forced


def test_a_header_only_set_is_one_clear_error(tmp_path):
    from kositp.errors import PermanentError
    from kositp.evaluate.loaders import EvalDataError
    from kositp.evaluate.sets import load_set

    (tmp_path / "nsmc").mkdir()
    (tmp_path / "nsmc" / "ratings_test.txt").write_text("id\tdocument\tlabel\n", encoding="utf-8")
    for sample in (False, True):
        with pytest.raises(EvalDataError, match=r"nsmc: no examples for set 'nsmc' \(header only\?\)") as caught:
            load_set("nsmc", tmp_path, {"0": "부정", "1": "긍정"}, seed_sample=sample)
        assert isinstance(caught.value, PermanentError)


def test_the_stage_scores_held_in_tasks_for_the_tuned_and_the_base_model(
    tiny_model_dir: Path, eval_dir: Path, tmp_path: Path
):
    """With held_in the stage reads the run's reformat shards and the base model its sft stage named."""
    import pandas as pd
    from pydantic import BaseModel, ConfigDict

    from kositp.artifacts import ArtifactStore
    from kositp.config import load_profile
    from kositp.pipeline import execute, plan
    from kositp.stages import Stage, StageOutcome

    class AnySection(BaseModel):
        model_config = ConfigDict(extra="allow")

    def reformat_run(ctx):
        rows = {
            "task008_extractive_qa_yes_no": ("청년 월세 지원은 12개월간 이어진다.\n\n지원 기간은 12개월인가요?", "예"),
            "task009_extractive_qa_short_answer": ("영하 30도까지 떨어졌다.\n\n최저 기온은?", "영하 30도"),
            "task002_summarization": ("정부는 청년 주택 공급을 늘리기로 했다.", "청년 주택 공급 확대"),
        }
        for task, (prompt, output) in rows.items():
            folder = ctx.out_dir / "shards" / task
            folder.mkdir(parents=True)
            pd.DataFrame({"id": [f"{task}-0"], "prompt": [prompt], "output": [output]}).to_parquet(
                folder / "validation.parquet"
            )
        return StageOutcome()

    stages = {
        "reformat": Stage(name="reformat", code_version="1", config=AnySection, run=reformat_run),
        "sft": Stage(name="sft", code_version="1", config=AnySection, run=lambda ctx: StageOutcome(), inputs=("reformat",)),
        **_with_stand_in_export(tiny_model_dir),
    }
    store = ArtifactStore(tmp_path / "artifacts")
    profile = load_profile(
        "demo", [f"evaluate.data_dir={eval_dir}", "evaluate.limit=2", "sft.base_model=tiny-llama"], root=store.root
    )
    results = [execute(item, store, profile.name, ConsoleReporter(show_progress=False)) for item in plan(profile, stages)]
    artifact = store.open("evaluate", results[-1].version)
    assert set(artifact.manifest["inputs"]) == {"export", "reformat", "sft"}
    metrics = json.loads(artifact.file("metrics.json").read_text(encoding="utf-8"))
    assert all("calibrated" in m and m["calibration"]["method"] == "batch" for m in metrics["sets"].values())
    held = metrics["held_in"]
    assert set(held["models"]) == {"tuned", "base"} and set(held["difference"]) == {"label", "span", "free_text"}
    assert set(held["models"]["base"]["tasks"]) == {
        "task008_extractive_qa_yes_no", "task009_extractive_qa_short_answer", "task002_summarization"
    }
    answers = pd.read_parquet(artifact.file("held_in.parquet"))
    assert sorted(answers["model"]) == ["base"] * 3 + ["tuned"] * 3
    assert artifact.report["held_in"]["base"].keys() == {"label", "span", "free_text"}
    assert artifact.report["sets"]["nsmc"]["calibrated_macro_f1"] == metrics["sets"]["nsmc"]["calibrated"]["macro_f1"]
    report = artifact.file("report.md").read_text(encoding="utf-8")
    assert "Held-in tasks" in report and "calibrated F1" in report and "tuned − base" in report
