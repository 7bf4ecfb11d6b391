"""LoRA supervised fine-tuning, written as one recipe you can read top to bottom.

1. read the reformat artifact's shards (every ``shards/*/{train,validation}.parquet``) as one
   memory-mapped dataset per split (:mod:`kositp.train.shard_data`), never as Python lists;
2. turn each row into a prompt/completion pair in the seed format (loss on the completion only);
3. choose the device and the backend (``unsloth`` on a CUDA GPU, ``hf`` anywhere);
4. load the base model and wrap it in LoRA with the profile's settings;
5. train with TRL's ``SFTTrainer``, checkpointing into the staging folder and resuming from the
   newest checkpoint when a retry or rerun finds one;
6. save the adapter + tokenizer, the training log and the loss curve.

The configuration keys are the seed ``config.json``'s (mapped in :mod:`kositp.config`) plus the
few this pipeline adds (backend, device, 4-bit loading, step limits, checkpoint interval).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from kositp.models.causal_lm import load_causal_lm
from kositp.models.prompt_format import format_completion, format_prompt
from kositp.models.refs import ModelRef
from kositp.stages import StageContext, StageOutcome
from kositp.train import common, distributed
from kositp.train.lora_targets import resolve_targets
from kositp.train.trl_compat import sft_trainer_class

log = logging.getLogger("kositp")

SEED_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# 8-bit optimizers need bitsandbytes on a CUDA device; on the CPU the plain AdamW is the equivalent.
CPU_OPTIMIZERS = {
    "adamw_8bit": "adamw_torch",
    "adamw_bnb_8bit": "adamw_torch",
    "paged_adamw_8bit": "adamw_torch",
}


class SftConfig(distributed.ScaleOutSettings):
    """The ``sft`` profile section; defaults are the seed's ``config.json`` values."""

    base_model: str = "tiny-llama"
    backend: Literal["auto", "unsloth", "hf"] = "auto"
    device: str = "auto"
    load_in_4bit: bool = True
    max_seq_length: int = Field(2048, ge=1)
    lora_r: int = Field(8, ge=1)
    lora_alpha: float = Field(32, gt=0)
    lora_target_modules: list[str] | Literal["auto"] = SEED_TARGET_MODULES  # auto: the architecture's own
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    use_gradient_checkpointing: bool | Literal["unsloth"] = True
    seed: int = 3407
    use_rslora: bool = False
    num_train_epochs: float = Field(3, gt=0)
    max_steps: int = Field(-1, ge=-1)  # -1: num_train_epochs decides
    train_batch_size: int = Field(4, ge=1)
    eval_batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(4, ge=1)
    weight_decay: float = Field(0.01, ge=0)
    learning_rate: float = Field(2e-4, gt=0)
    lr_scheduler_type: str = "linear"
    warmup_steps: int = Field(0, ge=0)
    logging_steps: int = Field(100, ge=1)
    optim: str = "adamw_8bit"
    eval_strategy: Literal["no", "steps", "epoch"] = "steps"
    save_steps: int = Field(9811, ge=1)
    eval_steps: int = Field(9811, ge=1)
    checkpoint_steps: int | None = Field(None, ge=1)
    load_best_model_at_end: bool = True
    save_total_limit: int | None = Field(3, ge=1)
    packing: bool = False
    padding_free: bool = False
    completion_only_loss: bool = True

    @model_validator(mode="after")
    def _checkpoints_line_up_with_evals(self) -> SftConfig:
        if (
            self.load_best_model_at_end
            and self.eval_strategy == "steps"
            and self.checkpoint_interval % self.eval_steps
        ):
            raise ValueError(
                f"load_best_model_at_end needs the checkpoint interval ({self.checkpoint_interval}) to be a "
                f"multiple of eval_steps ({self.eval_steps})"
            )
        if self.load_best_model_at_end and self.eval_strategy == "no":
            raise ValueError("load_best_model_at_end needs an eval_strategy other than 'no'")
        return self

    @property
    def checkpoint_interval(self) -> int:
        """Steps between checkpoints: ``checkpoint_steps`` when set, else the seed's ``save_steps``."""
        return self.checkpoint_steps or self.save_steps


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
        output_dir=str(output_dir),
        use_cpu=not on_gpu,
        bf16=bf16,
        fp16=on_gpu and not bf16,
        seed=config.seed,
        data_seed=config.seed,
        max_length=config.max_seq_length,
        packing=config.packing,
        padding_free=config.padding_free,
        completion_only_loss=config.completion_only_loss,
        # Unsloth patches in its own checkpointing (get_peft_model); the hf backend uses the trainer's.
        gradient_checkpointing=bool(config.use_gradient_checkpointing) and backend == "hf",
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.train_batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        optim=optim,
        logging_steps=config.logging_steps,
        eval_strategy=eval_strategy,
        eval_steps=config.eval_steps,
        save_strategy="steps",
        save_steps=config.checkpoint_interval,
        save_total_limit=config.save_total_limit,
        load_best_model_at_end=config.load_best_model_at_end and eval_strategy != "no",
        include_num_input_tokens_seen="non_padding",
        report_to="none",
        disable_tqdm=True,
        dataset_num_proc=None,
    )


def run(ctx: StageContext, callbacks: Sequence[Any] = ()) -> StageOutcome:
    """Train (or finish training) the SFT adapter into ``ctx.out_dir``; ``callbacks`` are extra trainer hooks."""
    config = ctx.config if isinstance(ctx.config, SftConfig) else SftConfig(**ctx.params)
    if distributed.should_launch(config):
        return distributed.launch(ctx, "sft", config)
    from kositp.train.shard_data import ShardError, load_split

    reporter, out_dir = ctx.reporter, ctx.out_dir

    # 1. data
    reformat_dir = ctx.inputs["reformat"].path
    data_cache = out_dir / common.SCRATCH_DIR / "datasets"
    train_rows = load_split(reformat_dir, "train", data_cache)
    eval_rows = load_split(reformat_dir, "validation", data_cache)
    if train_rows.dataset is None:
        raise ShardError(f"{reformat_dir}: no shards/*/train.parquet rows to train on")
    reporter.table(
        "sft_data",
        [{"shard": s, "train": n, "validation": eval_rows.counts.get(s, 0)} for s, n in train_rows.counts.items()],
    )

    # 2. device and backend
    device = common.resolve_device(config.device)
    choice = common.resolve_backend(config.backend, device)
    reporter.info(f"sft backend: {choice.name} on {device} ({choice.reason})")

    # 3. model (Unsloth patches transformers and TRL when imported, so it goes first)
    if choice.name == "unsloth":
        common.import_unsloth()
    from transformers import set_seed

    set_seed(config.seed)
    model_path = ModelRef.parse(config.base_model).resolve(ctx.cache_dir or out_dir / common.SCRATCH_DIR)
    model, tokenizer = build_model(config, choice.name, device, model_path)
    train_set = to_prompt_completion(train_rows.dataset, tokenizer.eos_token)
    eval_set = to_prompt_completion(eval_rows.dataset, tokenizer.eos_token) if eval_rows.dataset else None

    # 4. trainer, resuming from the newest checkpoint a failed attempt left behind
    checkpoint = common.last_checkpoint(out_dir)
    resumed_step = common.checkpoint_step(checkpoint) if checkpoint else 0
    log_path = out_dir / common.TRAINING_LOG
    if checkpoint:
        reporter.info(f"resuming sft from {checkpoint.name} (step {resumed_step})")
        common.trim_training_log(log_path, resumed_step)
    else:
        log_path.unlink(missing_ok=True)
    args = trainer_arguments(
        config, choice.name, device, out_dir / common.CHECKPOINT_DIR, eval_set is not None, reporter
    )
    trainer = sft_trainer_class(choice.name)(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        callbacks=[
            *distributed.main_process_only(common.make_log_callback(log_path)),
            common.make_progress_callback(reporter),
            *callbacks,
        ],
    )
    # throughput counts this attempt only: the resumed state already holds the earlier tokens
    tokens_before = (
        int(common.checkpoint_state(checkpoint).get("num_input_tokens_seen", 0)) if checkpoint else 0
    )
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    elapsed = time.perf_counter() - started
    state = trainer.state
    if state.global_step < state.max_steps:
        raise RuntimeError(
            f"sft stopped at step {state.global_step} of {state.max_steps}; not publishing a partial adapter"
        )

    # 5. outputs
    adapter_dir = out_dir / common.ADAPTER_DIR
    if not distributed.save_adapter(trainer, adapter_dir):
        return StageOutcome()  # a launched rank other than 0: rank 0 writes the outputs and the report
    tokenizer.save_pretrained(adapter_dir)
    rows = common.read_training_log(log_path)
    plot = common.plot_loss(rows, out_dir / common.LOSS_PLOT, title=f"sft {config.base_model}")
    if plot:
        reporter.image("sft-loss", plot, "SFT loss and learning rate")
    tokens = (state.num_input_tokens_seen or 0) - tokens_before
    tokens_per_s = round(tokens / elapsed, 1) if elapsed > 0 else None
    eval_losses = [r["eval_loss"] for r in rows if "eval_loss" in r]
    report = {
        "backend": choice.name,
        "backend_reason": choice.reason,
        "device": device,
        "base_model": config.base_model,
        "global_step": state.global_step,
        "resumed_from_step": resumed_step,
        "train_loss": common.full_run_train_loss(result.training_loss, state.global_step, resumed_step, rows),
        "final_eval_loss": eval_losses[-1] if eval_losses else None,
        "best_checkpoint_metric": state.best_metric,
        # manifest keys avoid the word "token": the secret redactor masks such keys
        "trained_tok": tokens,
        "throughput_tok_per_s": tokens_per_s,
        "optimizer": str(getattr(args.optim, "value", args.optim)),
        "packing": config.packing,
    }
    reporter.table("sft_result", [{k: v for k, v in report.items() if k != "backend_reason"}])
    return StageOutcome(
        rows={
            "train_examples": len(train_rows),
            "validation_examples": len(eval_rows),
            "steps": state.global_step,
        },
        report=report,
        exclude=(common.CHECKPOINT_DIR, common.SCRATCH_DIR),
    )
