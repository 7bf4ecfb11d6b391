"""Export the last trained adapter as a model a server can load: merged 16-bit, adapter alone, card.

Order matters and reads top to bottom: merge the adapter into its base and save it with a
tokenizer that carries the seed format as its chat template and a generation config that stops
at the seed's stop marker; copy the adapter alone; then reload the *saved* folder, as a server
would, and check that it answers a few prompts exactly like base + adapter (merging bugs, dtype
slips and lost tokenizer settings all show up here, and the stage fails rather than publish
them); GGUF when Unsloth is there; the model card last, because it reports the check.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from kositp.artifacts import Artifact, ArtifactStore
from kositp.config import StageConfig
from kositp.models.causal_lm import generate_ids, load_causal_lm, prompt_ids
from kositp.models.prompt_format import CHAT_TEMPLATE, STOP_MARKER, cut_at_stop, format_prompt
from kositp.models.refs import ModelRef
from kositp.stages import StageContext, StageOutcome
from kositp.train import common

TRAINING_STAGES = ("dpo", "sft")  # the last one present is exported
EXPORT_INFO = "kositp_export.json"
DEFAULT_CHECK_PROMPTS = (
    "다음 문장의 감정을 긍정 또는 부정으로 분류하세요. 문장: 이 영화 정말 재미있었어요.",
    "대한민국의 수도는 어디인가요?",
    "다음 두 문장이 같은 뜻인지 판단하세요. 문장1: 오늘 날씨가 좋다. 문장2: 오늘은 맑은 날이다.",
)


class ExportError(RuntimeError):
    pass


class ExportConfig(StageConfig):
    device: str = "auto"
    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    check_prompts: list[str] = Field(default_factory=lambda: list(DEFAULT_CHECK_PROMPTS), min_length=1)
    check_answer_length: int = Field(32, ge=1)  # new tokens per check answer
    check_logprob_tolerance: float = Field(0.02, ge=0.0)
    gguf_quantization: str | None = "q4_k_m"
    hub_repo_id: str | None = None
    hub_private: bool = True
    license: str = "other"  # the card's license: the base model's terms decide it (apache-2.0, gemma, ...)


def run(ctx: StageContext) -> StageOutcome:
    config: ExportConfig = ctx.config  # type: ignore[assignment]
    trained = training_artifact(ctx.inputs)
    adapter_dir = trained.path / common.ADAPTER_DIR
    device = common.resolve_device(config.device)
    ctx.reporter.info(f"export: device {device}")
    merged_dir, adapter_out = ctx.out_dir / "merged", ctx.out_dir / "adapter"

    base = common.base_model_of(trained, ctx.cache_dir or ctx.out_dir / common.SCRATCH_DIR)
    ctx.reporter.info(f"export: merging {trained.stage}/{trained.version} into its base ({config.dtype})")
    info = save_merged(adapter_dir, merged_dir, config.dtype, base)
    save_adapter(adapter_dir, adapter_out)
    check = check_merged_matches_adapter(adapter_dir, base, merged_dir, config, device, ctx.reporter)
    ctx.reporter.table("export-check", check["prompts"], "greedy output: merged model vs base + adapter")
    if not check["all_equal"]:
        raise ExportError(
            f"merged model in {merged_dir} answers differently from base + adapter {adapter_dir} on "
            f"{check['differing']} of {len(check['prompts'])} prompts; not publishing it"
        )
    gguf = export_gguf(adapter_dir, ctx.out_dir / "gguf", config, device)
    if gguf["skipped"]:
        ctx.reporter.info(f"export: GGUF skipped ({gguf['reason']})")

    lineage = lineage_versions(trained)
    card = model_card(trained, lineage, info, check, config.license)
    (ctx.out_dir / "README.md").write_text(card, encoding="utf-8")
    shutil.copy(ctx.out_dir / "README.md", merged_dir / "README.md")
    ctx.reporter.markdown("export-model-card", card)
    pushed = push_to_hub(merged_dir, config, ctx.reporter)

    report = {
        "exported": f"{trained.stage}/{trained.version}",
        "lineage": lineage,
        "check": check,
        "gguf": gguf,
        "export_info": info,
        "pushed_to": pushed,
    }
    files = sum(1 for p in ctx.out_dir.rglob("*") if p.is_file())
    return StageOutcome(rows={"files": files, "check_prompts": len(check["prompts"])}, report=report)


def training_artifact(inputs: dict[str, Artifact]) -> Artifact:
    """DPO's adapter when the profile runs DPO, otherwise SFT's."""
    for stage in TRAINING_STAGES:
        if stage in inputs:
            return inputs[stage]
    raise ExportError("export needs a trained adapter: the profile runs neither 'dpo' nor 'sft'")


def save_merged(adapter_dir: Path, merged_dir: Path, dtype: str, base: str) -> dict[str, Any]:
    """Merged weights (safetensors), tokenizer with the seed chat template, stop-aware generation config.

    The generation config carries no ``stop_strings``: transformers then refuses ``generate``
    without a tokenizer argument, which breaks plain reloads. The stop marker goes into the EOS
    ids when it is one token, and always into ``kositp_export.json`` for servers to pass as ``stop``.
    The merge itself runs in float32 on the CPU and is rounded to ``dtype`` once, at the end.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoTokenizer, GenerationConfig

    base_model, _ = load_causal_lm(base, "cpu")
    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
    merged = PeftModel.from_pretrained(base_model, str(adapter_dir)).merge_and_unload()
    merged = merged.to(getattr(torch, dtype))
    stop_ids = stop_token_ids(tokenizer)
    merged.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=stop_ids,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    merged.save_pretrained(merged_dir)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(merged_dir)
    info = {
        "prompt_format": "seed",
        "stop": [STOP_MARKER],
        "eos_token_ids": stop_ids,
        "dtype": dtype,
        "base_model": base,
    }
    (merged_dir / EXPORT_INFO).write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
    return info


def stop_token_ids(tokenizer: Any) -> list[int]:
    """EOS, plus the stop marker when it is a single token (so vLLM stops on it without stop strings)."""
    marker = tokenizer.encode(STOP_MARKER, add_special_tokens=False)
    return [tokenizer.eos_token_id, *marker] if len(marker) == 1 else [tokenizer.eos_token_id]


def save_adapter(adapter_dir: Path, out_dir: Path) -> None:
    """The adapter alone, with the chat template in its tokenizer as in the merged model."""
    from transformers import AutoTokenizer

    shutil.copytree(adapter_dir, out_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(out_dir)


def check_merged_matches_adapter(
    adapter_dir: Path, base: str, merged_dir: Path, config: ExportConfig, device: str, reporter: Any
) -> dict[str, Any]:
    """Greedy answers of the saved merged folder against base + adapter, both at the export dtype.

    In 16 bits, ``W + BA`` rounded once and ``W x + B(A x)`` rounded per product differ in the
    last bits, which can flip a near-tie between two tokens. So an answer that is not identical
    still passes when, teacher-forced along base + adapter's answer, the merged model rates every
    one of those tokens within ``check_logprob_tolerance`` nats of its own best token; a real
    merge bug (adapter lost, wrong base, quantized merge) misses by far more.
    """
    from peft import PeftModel
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
    base_model, _ = load_causal_lm(base, device, dtype=config.dtype)
    with_adapter = PeftModel.from_pretrained(base_model, str(adapter_dir)).eval()
    merged, _ = load_causal_lm(merged_dir, device, dtype=config.dtype)
    rows = []
    with reporter.progress("merged vs adapter check", len(config.check_prompts)) as advance:
        for prompt in config.check_prompts:
            ids = prompt_ids(tokenizer, format_prompt(prompt))
            expected = generate_ids(with_adapter, tokenizer, [ids], config.check_answer_length)[0]
            actual = generate_ids(merged, tokenizer, [ids], config.check_answer_length)[0]
            gap = 0.0 if expected == actual else logprob_gap(merged, ids, expected)
            rows.append(
                {
                    "prompt": prompt[:60],
                    "identical": expected == actual,
                    "max_logprob_gap": round(gap, 5),
                    "same": gap <= config.check_logprob_tolerance,
                    "merged_output": cut_at_stop(tokenizer.decode(actual, skip_special_tokens=True))[0][:80],
                }
            )
            advance(1)
    differing = sum(not r["same"] for r in rows)
    return {
        "all_equal": differing == 0,
        "differing": differing,
        "tolerance": config.check_logprob_tolerance,
        "prompts": rows,
    }


def logprob_gap(model: Any, prompt: list[int], answer_ids: list[int]) -> float:
    """Largest gap (nats) between the model's best token and ``answer_ids``' token, teacher-forced."""
    import torch

    ids = torch.tensor([prompt + answer_ids], device=model.device)
    with torch.inference_mode():
        logits = model(input_ids=ids, logits_to_keep=len(answer_ids) + 1).logits[0, :-1].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    chosen = logprobs.gather(-1, torch.tensor(answer_ids, device=logits.device).unsqueeze(-1)).squeeze(-1)
    return float((logprobs.max(-1).values - chosen).max())


def export_gguf(adapter_dir: Path, out_dir: Path, config: ExportConfig, device: str) -> dict[str, Any]:
    """GGUF through Unsloth (it bundles the llama.cpp conversion); optional, skipped with a reason."""
    if not config.gguf_quantization:
        return {"skipped": True, "reason": "gguf_quantization is not set"}
    if not device.startswith("cuda"):
        return {"skipped": True, "reason": "GGUF export uses Unsloth, which needs a CUDA GPU"}
    try:
        from unsloth import FastLanguageModel
    except ImportError:
        return {"skipped": True, "reason": "unsloth is not installed (pip install 'kositp[gpu]')"}
    model, tokenizer = FastLanguageModel.from_pretrained(str(adapter_dir))
    model.save_pretrained_gguf(str(out_dir), tokenizer, quantization_method=config.gguf_quantization)
    return {
        "skipped": False,
        "quantization": config.gguf_quantization,
        "files": sorted(p.name for p in out_dir.glob("*.gguf")),
    }


def lineage_versions(artifact: Artifact) -> dict[str, str]:
    """Every upstream stage's version, found by walking manifests back through the store."""
    store = ArtifactStore(artifact.path.parent.parent)
    found = {artifact.stage: artifact.version}
    pending = list(artifact.manifest.get("inputs", {}).items())
    while pending:
        stage, version = pending.pop()
        if stage in found:
            continue
        found[stage] = version
        if store.exists(stage, version):
            pending += list(store.open(stage, version, verify=False).manifest.get("inputs", {}).items())
    return found


def base_model_reference(store: ArtifactStore, lineage: dict[str, str]) -> str | None:
    """The base model as the profile named it (``sft.base_model``), from the SFT artifact's manifest."""
    if "sft" not in lineage or not store.exists("sft", lineage["sft"]):
        return None
    return store.open("sft", lineage["sft"], verify=False).manifest.get("params", {}).get("base_model")


def ingested_sources(store: ArtifactStore, lineage: dict[str, str]) -> list[str]:
    """The corpora the model was tuned on, as the ingest stage counted them by source."""
    if "ingest" not in lineage or not store.exists("ingest", lineage["ingest"]):
        return []
    return sorted(store.open("ingest", lineage["ingest"], verify=False).report.get("by_source", {}))


def model_card(
    trained: Artifact, lineage: dict[str, str], info: dict[str, Any], check: dict[str, Any], license: str = "other"
) -> str:
    """A Hub model card (YAML metadata + text). Scores are not here: this export is not evaluated
    yet; the promote stage writes the card with its evaluation into its own artifact."""
    from huggingface_hub import ModelCard, ModelCardData

    store = ArtifactStore(trained.path.parent.parent)
    lineage_rows = "\n".join(f"| {stage} | `{version}` |" for stage, version in sorted(lineage.items()))
    params = []
    for stage in ("sft", "dpo"):
        if stage in lineage and store.exists(stage, lineage[stage]):
            manifest = store.open(stage, lineage[stage], verify=False).manifest
            params.append(
                f"### {stage}\n\n```json\n{json.dumps(manifest.get('params', {}), ensure_ascii=False, indent=2)}\n```"
            )
    check_line = (
        f"Greedy output of the merged model equals base + adapter on all {len(check['prompts'])} check prompts."
        if check["all_equal"]
        else f"Merged model differs from base + adapter on {check['differing']} prompts."
    )
    reference = base_model_reference(store, lineage)
    data = ModelCardData(
        base_model=ModelRef.parse(reference).hub_id() if reference else None,
        library_name="transformers",
        language="ko",
        license=license,
        datasets=ingested_sources(store, lineage) or None,
        tags=["kositp", "korean", "lora", "instruction-tuning", *(["dpo"] if "dpo" in lineage else [])],
        pipeline_tag="text-generation",
        model_name="KOSITP Korean instruction-tuned model",
    )
    text = f"""# KOSITP Korean instruction-tuned model

Base model: `{reference or info["base_model"]}`, LoRA-tuned by the KOSITP pipeline and merged to {info["dtype"]}.
Exported from `{trained.stage}/{trained.version}`.

## Prompt format

`###입력:{{prompt}}\\n\\n###출력:` — the model answers and ends with the stop marker `{STOP_MARKER}`
then EOS. The tokenizer's chat template produces this format; stop generation at `{STOP_MARKER}`
(see `{EXPORT_INFO}`; token ids {info["eos_token_ids"]} are the generation config's EOS).

## Lineage

| stage | version |
|---|---|
{lineage_rows}

## Hyper-parameters

{chr(10).join(params) or "_(training manifests not found in the artifact store)_"}

## Export check

{check_line}

## Evaluation

This export is not evaluated yet. The promote stage writes this card with the zero-shot scores
and the promotion decision into `promote/<version>/README.md` (`kositp promoted` names it).
"""
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n{text}"))


def push_to_hub(merged_dir: Path, config: ExportConfig, reporter: Any) -> str | None:
    """Upload the merged model when a repo id is configured and ``HF_TOKEN`` is set; never required."""
    token = os.environ.get("HF_TOKEN")
    if not config.hub_repo_id:
        return None
    if not token:
        reporter.warning(
            f"export: hub_repo_id {config.hub_repo_id!r} is set but HF_TOKEN is not; not pushing"
        )
        return None
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(config.hub_repo_id, private=config.hub_private, exist_ok=True)
    api.upload_folder(folder_path=str(merged_dir), repo_id=config.hub_repo_id)
    reporter.info(f"export: pushed to https://huggingface.co/{config.hub_repo_id}")
    return config.hub_repo_id
