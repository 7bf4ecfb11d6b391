"""The ``export`` stage: merged 16-bit model, adapter alone and model card from the last trained adapter.

Order matters and reads top to bottom in :func:`run`: merge the adapter into its base and save it
with a tokenizer that carries the seed format as its chat template and a generation config that
stops at the seed's stop marker (:mod:`kositp.export.merge`); copy the adapter alone; then reload
the *saved* folder, as a server would, and check that it answers a few prompts exactly like
base + adapter (:mod:`kositp.export.check`: merging bugs, dtype slips and lost tokenizer settings
all show up here, and the stage fails rather than publish them); GGUF when Unsloth is there
(:mod:`kositp.export.gguf`); the model card last, because it reports the check
(:mod:`kositp.export.card`); the Hub push when configured (:mod:`kositp.export.hub`).

Both training stages are optional inputs so that a profile without DPO exports the SFT adapter;
with DPO in the run, DPO's adapter is exported (:func:`training_artifact`).
"""

from __future__ import annotations

import shutil

from kositp.artifacts import Artifact
from kositp.export import card, check, gguf, hub, merge
from kositp.export.config import ExportConfig
from kositp.stages import Stage, StageContext, StageOutcome
from kositp.train import common

TRAINING_STAGES = ("dpo", "sft")  # the last one present is exported


class ExportError(RuntimeError):
    pass


def run(ctx: StageContext) -> StageOutcome:
    config: ExportConfig = ctx.config  # type: ignore[assignment]
    trained = training_artifact(ctx.inputs)
    adapter_dir = trained.path / common.ADAPTER_DIR
    device = common.resolve_device(config.device)
    ctx.reporter.info(f"export: device {device}")
    merged_dir, adapter_out = ctx.out_dir / "merged", ctx.out_dir / "adapter"

    base = common.base_model_of(trained, ctx.cache_dir or ctx.out_dir / common.SCRATCH_DIR)
    ctx.reporter.info(f"export: merging {trained.stage}/{trained.version} into its base ({config.dtype})")
    info = merge.save_merged(adapter_dir, merged_dir, config.dtype, base)
    merge.save_adapter(adapter_dir, adapter_out)
    checked = check.check_merged_matches_adapter(adapter_dir, base, merged_dir, config, device, ctx.reporter)
    ctx.reporter.table("export-check", checked["prompts"], "greedy output: merged model vs base + adapter")
    if not checked["all_equal"]:
        raise ExportError(
            f"merged model in {merged_dir} answers differently from base + adapter {adapter_dir} on "
            f"{checked['differing']} of {len(checked['prompts'])} prompts; not publishing it"
        )
    gguf_files = gguf.export_gguf(adapter_dir, ctx.out_dir / "gguf", config, device)
    if gguf_files["skipped"]:
        ctx.reporter.info(f"export: GGUF skipped ({gguf_files['reason']})")

    lineage = card.lineage_versions(trained)
    card_text = card.model_card(trained, lineage, info, checked, config.license)
    (ctx.out_dir / "README.md").write_text(card_text, encoding="utf-8")
    shutil.copy(ctx.out_dir / "README.md", merged_dir / "README.md")
    ctx.reporter.markdown("export-model-card", card_text)
    pushed = hub.push_to_hub(merged_dir, config, ctx.reporter)

    report = {
        "exported": f"{trained.stage}/{trained.version}",
        "lineage": lineage,
        "check": checked,
        "gguf": gguf_files,
        "export_info": info,
        "pushed_to": pushed,
    }
    files = sum(1 for p in ctx.out_dir.rglob("*") if p.is_file())
    return StageOutcome(rows={"files": files, "check_prompts": len(checked["prompts"])}, report=report)


def training_artifact(inputs: dict[str, Artifact]) -> Artifact:
    """DPO's adapter when the profile runs DPO, otherwise SFT's."""
    for stage in TRAINING_STAGES:
        if stage in inputs:
            return inputs[stage]
    raise ExportError("export needs a trained adapter: the profile runs neither 'dpo' nor 'sft'")


STAGE = Stage(
    name="export", code_version="1", config=ExportConfig, run=run, optional_inputs=("sft", "dpo"), gpu=True,
    description="merge the last trained adapter into its base; adapter alone; chat template; model card",
)
