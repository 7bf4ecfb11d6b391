"""The export's Hub model card: base model, prompt format, lineage, hyper-parameters, the check."""

from __future__ import annotations

import json
from typing import Any

from kositp.artifacts import Artifact, ArtifactStore
from kositp.export.merge import EXPORT_INFO
from kositp.models.prompt_format import STOP_MARKER
from kositp.models.refs import ModelRef


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
