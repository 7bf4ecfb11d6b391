"""The seed's prompt format, the default because the published models were trained on it.

A training example is ``###입력:{prompt}\n\n###출력:{output}$&%`` followed by the tokenizer's EOS;
``$&%`` is the stop marker generation is cut at. The same format is baked into exported
tokenizers as a chat template (:data:`CHAT_TEMPLATE`), so servers that apply chat templates
produce exactly what the model was trained on.
"""

from __future__ import annotations

INPUT_TAG = "###입력:"
OUTPUT_TAG = "###출력:"
STOP_MARKER = "$&%"

# System and user turns are concatenated into the input block; an assistant turn is an output.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '###출력:' + message['content'] + '$&%' + eos_token }}"
    "{% elif message['role'] == 'system' %}"
    "{{ '###입력:' + message['content'] }}"
    "{% else %}"
    "{% if loop.first or messages[loop.index0 - 1]['role'] != 'system' %}{{ '###입력:' }}{% endif %}"
    "{{ message['content'] + '\n\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '###출력:' }}{% endif %}"
)


def format_prompt(prompt: str) -> str:
    """What the model sees before it answers."""
    return f"{INPUT_TAG}{prompt}\n\n{OUTPUT_TAG}"


def format_completion(output: str, eos_token: str) -> str:
    """What the model learns to produce after the prompt."""
    return f"{output}{STOP_MARKER}{eos_token}"


def format_example(prompt: str, output: str, eos_token: str) -> str:
    return format_prompt(prompt) + format_completion(output, eos_token)


def cut_at_stop(generated: str) -> tuple[str, bool]:
    """Text before the stop marker, stripped, and whether the marker was present."""
    head, marker, _ = generated.partition(STOP_MARKER)
    return head.strip(), bool(marker)
