"""Which layers LoRA adapts, per architecture.

The seed names Llama's seven projections, and Mistral, Qwen and Gemma use the same names; other
architectures do not (Phi-3 fuses ``qkv_proj`` and ``gate_up_proj``, GPT-2 has ``c_attn``,
``c_proj`` and ``c_fc``), and PEFT's error for a name that matches nothing does not say what the
model has. ``lora_target_modules: auto`` takes the architecture's projections from the table
below (by the config's ``model_type``); an explicit list is checked against the model's layers
before training, so a wrong name fails at once, in one line that lists the names that would work.
"""

from __future__ import annotations

from typing import Any

from kositp.errors import PermanentError

LLAMA_STYLE = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
BY_MODEL_TYPE: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        ("llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "gemma3_text"), LLAMA_STYLE
    ),
    "phi3": ("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
    "gpt2": ("c_attn", "c_proj", "c_fc"),
}
# layer classes LoRA can adapt: torch's Linear, its quantized variants, GPT-2's Conv1D
_ADAPTABLE = ("Linear", "Linear4bit", "Linear8bitLt", "Conv1D")


class LoraTargetError(PermanentError):
    """The LoRA target modules name no layer of the model, or its architecture has no default."""


def adaptable_layer_names(model: Any) -> set[str]:
    """Short names (the last dotted part) of the model's adaptable layers, the output head excluded."""
    return {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if type(module).__name__ in _ADAPTABLE and not name.endswith("lm_head")
    }


def resolve_targets(requested: list[str] | str, model: Any) -> list[str]:
    """The target module names for ``model``: the architecture's own for ``auto``, else ``requested``, checked."""
    model_type = getattr(getattr(model, "config", None), "model_type", "") or "unknown"
    available = adaptable_layer_names(model)
    if requested == "auto":
        if model_type not in BY_MODEL_TYPE:
            raise LoraTargetError(
                f"sft.lora_target_modules: auto knows no projections for model type {model_type!r}; "
                f"list some of its layers: {', '.join(sorted(available))}"
            )
        targets = list(BY_MODEL_TYPE[model_type])
    else:
        targets = list(requested)
    missing = [t for t in targets if t not in available]
    if missing:
        raise LoraTargetError(
            f"sft.lora_target_modules {missing} match no layer of this {model_type} model; "
            f"its adaptable layers: {', '.join(sorted(available))}"
        )
    return targets
