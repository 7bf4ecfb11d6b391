"""DPO on the SFT adapter, read top to bottom: pairs, policy, trainer, resume, train, publish.

The policy is the base model with the SFT LoRA adapter loaded trainable. No second model is
loaded for the reference: with a PEFT policy and ``ref_model=None``, TRL 1.15's ``DPOTrainer``
adds a frozen copy of the adapter (named ``ref``) on the same base weights, so the reference is
exactly the SFT model and costs one extra adapter, not one extra base model. Only the trained
``default`` adapter is published.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kositp.dpo import preferences
from kositp.dpo.config import DpoConfig
from kositp.dpo.preferences import PreferencePair
from kositp.models.causal_lm import load_causal_lm
from kositp.models.prompt_format import format_completion, format_prompt
from kositp.stages import StageContext, StageOutcome
from kositp.train import common, distributed, settings

PAIRS_FILE = "pairs.parquet"


def run(ctx: StageContext) -> StageOutcome:
    config: DpoConfig = ctx.config  # type: ignore[assignment]
    if distributed.should_launch(config):
        return distributed.launch(ctx, "dpo", config)
    device = common.resolve_device(config.device)
    backend = common.resolve_backend(config.backend, device)
    ctx.reporter.info(f"dpo: device {device}; {backend.reason}")
    sft_adapter = ctx.inputs["sft"].path / common.ADAPTER_DIR
    base = common.base_model_of(ctx.inputs["sft"], ctx.cache_dir or ctx.out_dir / common.SCRATCH_DIR)
    model, tokenizer = load_policy(sft_adapter, base, backend.name, device, config)

    with distributed.main_process_first():  # launched: rank 0 builds the pairs, the other ranks read them
        pairs, pair_report = build_pairs(ctx, config, model, tokenizer)
    if not pairs:
        counts = {k: v for k, v in pair_report.items() if isinstance(v, int)}
        raise preferences.PreferenceError(
            f"no preference pairs to train on (counts: {counts}); enable dpo.pairs.on_policy, "
            "fix dpo.pairs.user_file, or raise dpo.pairs.similarity_threshold"
        )
    dataset = to_dataset(pairs, tokenizer.eos_token)

    trainer = make_trainer(model, tokenizer, dataset, config, ctx.out_dir / common.CHECKPOINT_DIR, device)
    if distributed.is_main_process():
        trainer.add_callback(common.make_log_callback(ctx.out_dir / common.TRAINING_LOG, ctx.reporter))
    checkpoint = common.last_checkpoint(ctx.out_dir)
    if checkpoint:
        ctx.reporter.info(f"dpo: resuming from {checkpoint.name}")
        restore_policy_adapter(trainer.model, checkpoint)
    with ctx.reporter.progress("dpo steps", config.max_steps if config.max_steps > 0 else None) as advance:
        trainer.add_callback(step_progress(advance))
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)

    if not distributed.save_adapter(trainer, ctx.out_dir / common.ADAPTER_DIR, selected_adapters=["default"]):
        return StageOutcome()  # a launched rank other than 0: rank 0 writes the outputs and the report
    tokenizer.save_pretrained(ctx.out_dir / common.ADAPTER_DIR)
    rows = common.read_training_log(ctx.out_dir / common.TRAINING_LOG)
    plot = common.plot_loss(rows, ctx.out_dir / common.LOSS_PLOT, title="DPO")
    if plot:
        ctx.reporter.image("dpo-loss", plot, "DPO loss and learning rate per step")

    report = {
        **pair_report,
        "backend": backend.name,
        "backend_reason": backend.reason,
        "device": device,
        "reference": "frozen copy of the SFT adapter on the same base (TRL 'ref' adapter)",
        "resumed_from": checkpoint.name if checkpoint else None,
        "global_step": trainer.state.global_step,
        "train_loss": round(common.full_run_train_loss(
            float(result.training_loss), trainer.state.global_step,
            common.checkpoint_step(checkpoint) if checkpoint else 0, rows), 6),
    }
    return StageOutcome(
        rows={"pairs": len(pairs), "steps": trainer.state.global_step},
        report=report,
        exclude=(common.CHECKPOINT_DIR, common.SCRATCH_DIR),
    )


def load_policy(adapter_dir: Path, base: str, backend: str, device: str, config: DpoConfig) -> tuple[Any, Any]:
    """Base model (``base``, loadable) + the SFT adapter, trainable; Unsloth's patched DPO path on a GPU.

    The tokenizer is the one saved with the adapter (SFT may have set its padding token).
    """
    if backend == "unsloth":
        from unsloth import PatchDPOTrainer

        PatchDPOTrainer()
        return common.load_unsloth_model(str(adapter_dir), config.max_length, config.load_in_4bit)
    from peft import PeftModel
    from transformers import AutoTokenizer

    model, _ = load_causal_lm(
        base,
        device,
        load_in_4bit=config.load_in_4bit,
        gradient_checkpointing=config.use_gradient_checkpointing,
    )
    policy = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True)
    return policy, AutoTokenizer.from_pretrained(str(adapter_dir))


def build_pairs(
    ctx: StageContext, config: DpoConfig, model: Any, tokenizer: Any
) -> tuple[list[PreferencePair], dict[str, Any]]:
    """User pairs and/or on-policy pairs; a resumed run reuses the pairs it already built."""
    pairs_path = ctx.out_dir / PAIRS_FILE
    if (ctx.resumed or not distributed.is_main_process()) and pairs_path.is_file():
        pairs = preferences.read_pairs(pairs_path)
        ctx.reporter.info(f"dpo: reusing {len(pairs)} pairs from the interrupted attempt")
        return pairs, json.loads((ctx.out_dir / "pairs_report.json").read_text(encoding="utf-8"))
    pairs: list[PreferencePair] = []
    report: dict[str, Any] = {}
    if config.pairs.user_file:
        user_pairs, problems = preferences.read_user_pairs(Path(config.pairs.user_file))
        for problem in problems:
            ctx.reporter.warning(problem)
        pairs += user_pairs
        report.update(user_pairs=len(user_pairs), user_bad_lines=len(problems), user_problems=problems[:20])
    if config.pairs.on_policy:
        samples = preferences.sample_training_prompts(
            ctx.inputs["reformat"].path,
            config.pairs.on_policy_samples,
            config.seed,
            ctx.out_dir / common.SCRATCH_DIR / "datasets",
        )
        with ctx.reporter.progress("on-policy answers", len(samples)) as advance:
            answers = preferences.generate_answers(
                model,
                tokenizer,
                list(samples["prompt"]),
                config.pairs.max_answer_length,
                config.pairs.generation_batch_size,
                advance,
            )
        policy_pairs, counts = preferences.on_policy_pairs(
            samples, answers, config.pairs.similarity_threshold
        )
        pairs += policy_pairs
        report.update(counts)
    report["pairs"] = len(pairs)
    report["examples"] = preferences.examples(pairs)
    ctx.reporter.table("dpo-pair-counts", [{k: v for k, v in report.items() if isinstance(v, int)}])
    preferences.write_pairs(pairs, pairs_path)
    (ctx.out_dir / "pairs_report.json").write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
    return pairs, report


def to_dataset(pairs: list[PreferencePair], eos_token: str) -> Any:
    """TRL's standard (non-conversational) preference format, in the seed prompt format."""
    from datasets import Dataset

    return Dataset.from_list(
        [
            {
                "prompt": format_prompt(p.prompt),
                "chosen": format_completion(p.chosen, eos_token),
                "rejected": format_completion(p.rejected, eos_token),
            }
            for p in pairs
        ]
    )


def make_trainer(
    model: Any, tokenizer: Any, dataset: Any, config: DpoConfig, output_dir: Path, device: str
) -> Any:
    from trl import DPOConfig, DPOTrainer

    from kositp.train.trl_compat import ensure_logprob_kernel

    ensure_logprob_kernel()
    on_cpu = device == "cpu"
    bf16 = not on_cpu and _bf16_supported()
    args = DPOConfig(
        **settings.trainer_arguments(config, output_dir),
        beta=config.beta,
        loss_type=list(config.loss_type),
        max_length=config.max_length,
        optim=config.optim,
        gradient_checkpointing=config.use_gradient_checkpointing,
        save_steps=config.save_steps,
        report_to=[],
        use_cpu=on_cpu,
        bf16=bf16,
        dataloader_num_workers=0,
    )
    return DPOTrainer(
        model=model, ref_model=None, args=args, train_dataset=dataset, processing_class=tokenizer
    )


def restore_policy_adapter(model: Any, checkpoint: Path) -> None:
    """Load the trained adapter from a checkpoint before ``Trainer`` resumes.

    A checkpoint holds two adapters: ``default`` (trained) at its root and ``ref`` in a
    sub-folder. transformers 5.17's resume loads only sub-folder adapters when any exist, so
    without this the policy would silently restart from the SFT weights while the optimizer and
    step counter continued.
    """
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(str(checkpoint / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(model, weights, adapter_name="default")
    if result.unexpected_keys:
        raise RuntimeError(
            f"{checkpoint}: adapter weights do not fit the policy ({result.unexpected_keys[:3]} ...)"
        )


def step_progress(advance: Any) -> Any:
    """A trainer callback that advances the reporter's progress bar once per optimizer step."""
    from transformers import TrainerCallback

    class StepProgress(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            advance(1)

    return StepProgress()


def _bf16_supported() -> bool:
    import torch

    return torch.cuda.is_bf16_supported()
