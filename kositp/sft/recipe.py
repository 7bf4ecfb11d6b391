"""LoRA supervised fine-tuning, written as one recipe you can read top to bottom.

:func:`run` is the recipe; each of its steps is a function below it, in the order it calls them:

1. read the reformat artifact's shards (every ``shards/*/{train,validation}.parquet``) as one
   memory-mapped dataset per split (:mod:`kositp.train.shard_data`), never as Python lists;
2. choose the device and the backend (``unsloth`` on a CUDA GPU, ``hf`` anywhere);
3. load the base model and wrap it in LoRA with the profile's settings;
4. turn each row into a prompt/completion pair in the seed format (loss on the completion only);
5. train with TRL's ``SFTTrainer``, checkpointing into the staging folder and resuming from the
   newest checkpoint when a retry or rerun finds one;
6. save the adapter + tokenizer, the training log and the loss curve, and report.

The configuration keys (:mod:`kositp.sft.config`) are the seed ``config.json``'s (mapped in
:mod:`kositp.config`) plus the few this pipeline adds (backend, device, 4-bit loading, step
limits, checkpoint interval).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kositp.models.causal_lm import load_causal_lm
from kositp.models.prompt_format import format_completion, format_prompt
from kositp.models.refs import ModelRef
from kositp.reporting import Reporter
from kositp.sft.config import SftConfig
from kositp.stages import StageContext, StageOutcome
from kositp.train import common, distributed, settings
from kositp.train.lora_targets import resolve_targets
from kositp.train.trl_compat import sft_trainer_class

if TYPE_CHECKING:
    from kositp.train.shard_data import Split

# 8-bit optimizers need bitsandbytes on a CUDA device; on the CPU the plain AdamW is the equivalent.
CPU_OPTIMIZERS = {
    "adamw_8bit": "adamw_torch",
    "adamw_bnb_8bit": "adamw_torch",
    "paged_adamw_8bit": "adamw_torch",
}


@dataclass(frozen=True)
class Resume:
    """Where this attempt starts: the newest checkpoint a failed attempt left, its step and the
    tokens it had seen (throughput counts this attempt only)."""

    checkpoint: Path | None = None
    step: int = 0
    tokens: int = 0


@dataclass(frozen=True)
class Trained:
    """What ``trainer.train`` did in this attempt."""

    training_loss: float
    state: Any  # transformers' TrainerState
    seconds: float
    tokens: int


def run(ctx: StageContext, callbacks: Sequence[Any] = ()) -> StageOutcome:
    """Train (or finish training) the SFT adapter into ``ctx.out_dir``; ``callbacks`` are extra trainer hooks."""
    config = ctx.config if isinstance(ctx.config, SftConfig) else SftConfig(**ctx.params)
    if distributed.should_launch(config):
        return distributed.launch(ctx, "sft", config)
    train_rows, eval_rows = read_shards(ctx)
    device, backend = choose_backend(config, ctx.reporter)
    model, tokenizer = load_model(ctx, config, backend.name, device)
    train_set = to_prompt_completion(train_rows.dataset, tokenizer.eos_token)
    eval_set = to_prompt_completion(eval_rows.dataset, tokenizer.eos_token) if eval_rows.dataset else None
    resume = resume_point(ctx.out_dir, ctx.reporter)
    args = trainer_arguments(
        config, backend.name, device, ctx.out_dir / common.CHECKPOINT_DIR, eval_set is not None, ctx.reporter
    )
    trainer = sft_trainer_class(backend.name)(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        callbacks=trainer_callbacks(ctx, callbacks),
    )
    trained = train(trainer, resume)
    adapter_dir = ctx.out_dir / common.ADAPTER_DIR
    if not distributed.save_adapter(trainer, adapter_dir):
        return StageOutcome()  # a launched rank other than 0: rank 0 writes the outputs and the report
    tokenizer.save_pretrained(adapter_dir)
    report = training_report(ctx, config, backend, device, resume, trained, args.optim)
    return StageOutcome(
        rows={
            "train_examples": len(train_rows),
            "validation_examples": len(eval_rows),
            "steps": trained.state.global_step,
        },
        report=report,
        exclude=(common.CHECKPOINT_DIR, common.SCRATCH_DIR),
    )


def read_shards(ctx: StageContext) -> tuple[Split, Split]:
    """Every shard's train and validation rows, memory-mapped into the staging folder's scratch."""
    from kositp.train.shard_data import ShardError, load_split

    reformat_dir = ctx.inputs["reformat"].path
    data_cache = ctx.out_dir / common.SCRATCH_DIR / "datasets"
    train_rows = load_split(reformat_dir, "train", data_cache)
    eval_rows = load_split(reformat_dir, "validation", data_cache)
    if train_rows.dataset is None:
        raise ShardError(f"{reformat_dir}: no shards/*/train.parquet rows to train on")
    ctx.reporter.table(
        "sft_data",
        [{"shard": s, "train": n, "validation": eval_rows.counts.get(s, 0)} for s, n in train_rows.counts.items()],
    )
    return train_rows, eval_rows


def choose_backend(config: SftConfig, reporter: Reporter) -> tuple[str, common.BackendChoice]:
    device = common.resolve_device(config.device)
    choice = common.resolve_backend(config.backend, device)
    reporter.info(f"sft backend: {choice.name} on {device} ({choice.reason})")
    return device, choice


def load_model(ctx: StageContext, config: SftConfig, backend: str, device: str) -> tuple[Any, Any]:
    """The seeded base model wrapped in LoRA; Unsloth patches transformers and TRL when imported, so it goes first."""
    if backend == "unsloth":
        common.import_unsloth()
    from transformers import set_seed

    set_seed(config.seed)
    model_path = ModelRef.parse(config.base_model).resolve(ctx.cache_dir or ctx.out_dir / common.SCRATCH_DIR)
    return build_model(config, backend, device, model_path)


def build_model(config: SftConfig, backend: str, device: str, model_path: str):
    """Base model + tokenizer wrapped in LoRA; the two backends take the same LoRA settings."""
    if backend == "unsloth":
        FastLanguageModel = common.import_unsloth().FastLanguageModel
        model, tokenizer = common.load_unsloth_model(model_path, config.max_seq_length, config.load_in_4bit)
        model = FastLanguageModel.get_peft_model(
            model,
            r=config.lora_r,
            target_modules=resolve_targets(config.lora_target_modules, model),
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            bias="none",
            use_gradient_checkpointing="unsloth" if config.use_gradient_checkpointing else False,
            random_state=config.seed,
            use_rslora=config.use_rslora,
            loftq_config=None,
        )
        return model, tokenizer
    from peft import LoraConfig, get_peft_model

    model, tokenizer = load_causal_lm(
        model_path,
        device,
        load_in_4bit=config.load_in_4bit,
        gradient_checkpointing=bool(config.use_gradient_checkpointing),
    )
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        target_modules=resolve_targets(config.lora_target_modules, model),
        lora_dropout=config.lora_dropout,
        bias="none",
        task_type="CAUSAL_LM",
        use_rslora=config.use_rslora,
    )
    return get_peft_model(model, lora), tokenizer


def to_prompt_completion(rows: Any, eos_token: str) -> Any:
    """The seed format as a TRL prompt-completion dataset, so SFTTrainer masks the prompt.

    Mapped batch by batch into another memory-mapped Arrow file beside ``rows``' own.
    """

    def seed_format(batch: dict[str, list[str]]) -> dict[str, list[str]]:
        return {
            "prompt": [format_prompt(p) for p in batch["prompt"]],
            "completion": [format_completion(o, eos_token) for o in batch["output"]],
        }

    return rows.map(seed_format, batched=True, remove_columns=["output"], desc="seed format")


def resume_point(out_dir: Path, reporter: Reporter) -> Resume:
    """The newest checkpoint a failed attempt left behind, with the training log trimmed to it;
    without one, a fresh log."""
    checkpoint = common.last_checkpoint(out_dir)
    log_path = out_dir / common.TRAINING_LOG
    if not checkpoint:
        log_path.unlink(missing_ok=True)
        return Resume()
    step = common.checkpoint_step(checkpoint)
    reporter.info(f"resuming sft from {checkpoint.name} (step {step})")
    common.trim_training_log(log_path, step)
    return Resume(checkpoint, step, int(common.checkpoint_state(checkpoint).get("num_input_tokens_seen", 0)))


def trainer_arguments(
    config: SftConfig, backend: str, device: str, output_dir: Path, has_eval: bool, reporter: Any
):
    """The profile mapped onto TRL's ``SFTConfig`` for this device."""
    import torch
    from trl import SFTConfig

    on_gpu = device.startswith("cuda")
    optim = config.optim
    if not on_gpu and optim in CPU_OPTIMIZERS:
        optim = CPU_OPTIMIZERS[optim]
        reporter.info(f"optimizer {config.optim} needs a CUDA GPU; using {optim} on {device}")
    bf16 = on_gpu and torch.cuda.is_bf16_supported()
    eval_strategy = config.eval_strategy if has_eval else "no"
    if eval_strategy != config.eval_strategy:
        reporter.warning("no validation rows in the shards: evaluation and load_best_model_at_end are off")
    return SFTConfig(
        **settings.trainer_arguments(config, output_dir),
        use_cpu=not on_gpu,
        bf16=bf16,
        fp16=on_gpu and not bf16,
        data_seed=config.seed,
        max_length=config.max_seq_length,
        packing=config.packing,
        padding_free=config.padding_free,
        completion_only_loss=config.completion_only_loss,
        # Unsloth patches in its own checkpointing (get_peft_model); the hf backend uses the trainer's.
        gradient_checkpointing=bool(config.use_gradient_checkpointing) and backend == "hf",
        per_device_eval_batch_size=config.eval_batch_size,
        lr_scheduler_type=config.lr_scheduler_type,
        weight_decay=config.weight_decay,
        optim=optim,
        eval_strategy=eval_strategy,
        eval_steps=config.eval_steps,
        save_steps=config.checkpoint_interval,
        load_best_model_at_end=config.load_best_model_at_end and eval_strategy != "no",
        include_num_input_tokens_seen="non_padding",
        report_to="none",
        disable_tqdm=True,
        dataset_num_proc=None,
    )


def trainer_callbacks(ctx: StageContext, extra: Sequence[Any]) -> list[Any]:
    """The training log (written by rank 0 only), progress for the reporter, and the caller's hooks."""
    return [
        *distributed.main_process_only(common.make_log_callback(ctx.out_dir / common.TRAINING_LOG)),
        common.make_progress_callback(ctx.reporter),
        *extra,
    ]


def train(trainer: Any, resume: Resume) -> Trained:
    """Run the trainer to its last step; stopping short never publishes a partial adapter."""
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume.checkpoint) if resume.checkpoint else None)
    seconds = time.perf_counter() - started
    state = trainer.state
    if state.global_step < state.max_steps:
        raise RuntimeError(
            f"sft stopped at step {state.global_step} of {state.max_steps}; not publishing a partial adapter"
        )
    return Trained(result.training_loss, state, seconds, (state.num_input_tokens_seen or 0) - resume.tokens)


def training_report(
    ctx: StageContext,
    config: SftConfig,
    backend: common.BackendChoice,
    device: str,
    resume: Resume,
    trained: Trained,
    optim: Any,
) -> dict[str, Any]:
    """The loss curve for the UI and the manifest's report, from the training log."""
    rows = common.read_training_log(ctx.out_dir / common.TRAINING_LOG)
    plot = common.plot_loss(rows, ctx.out_dir / common.LOSS_PLOT, title=f"sft {config.base_model}")
    if plot:
        ctx.reporter.image("sft-loss", plot, "SFT loss and learning rate")
    state = trained.state
    eval_losses = [r["eval_loss"] for r in rows if "eval_loss" in r]
    report = {
        "backend": backend.name,
        "backend_reason": backend.reason,
        "device": device,
        "base_model": config.base_model,
        "global_step": state.global_step,
        "resumed_from_step": resume.step,
        "train_loss": common.full_run_train_loss(trained.training_loss, state.global_step, resume.step, rows),
        "final_eval_loss": eval_losses[-1] if eval_losses else None,
        "best_checkpoint_metric": state.best_metric,
        # manifest keys avoid the word "token": the secret redactor masks such keys
        "trained_tok": trained.tokens,
        "throughput_tok_per_s": round(trained.tokens / trained.seconds, 1) if trained.seconds > 0 else None,
        "optimizer": str(getattr(optim, "value", optim)),
        "packing": config.packing,
    }
    ctx.reporter.table("sft_result", [{k: v for k, v in report.items() if k != "backend_reason"}])
    return report
