"""Runs inside the vLLM environment (``KOSITP_VLLM_PYTHON``), never imported by kositp.

Usage: ``python vllm_worker.py REQUEST.jsonl RESULTS.jsonl``. The request's first line is a header
``{"method": "choice"|"generate", "model": PATH, "labels": [...], "sampling": {...},
"tensor_parallel_size": N}`` (the engine shards the model over N GPUs), then one
``{"prompt": ...}`` per line; the results file gets one line per prompt, in order:
``{"scores": [...]}`` (choice: summed log-probability of each label's tokens after the prompt,
read from vLLM's prompt log-probabilities) or ``{"text": ...}`` (generate).
Stdlib + vllm only, so it runs in an environment without kositp installed.
"""

from __future__ import annotations

import json
import sys


def read_request(path: str) -> tuple[dict, list[str]]:
    with open(path, encoding="utf-8") as handle:
        lines = [json.loads(line) for line in handle if line.strip()]
    if not lines:
        raise SystemExit(f"{path}: empty request")
    return lines[0], [line["prompt"] for line in lines[1:]]


def choice_scores(llm, tokenizer, prompts: list[str], labels: list[str]) -> list[list[float]]:
    from vllm import SamplingParams, TokensPrompt

    label_ids = [tokenizer.encode(label, add_special_tokens=False) for label in labels]
    requests, spans = [], []
    for prompt in prompts:
        prompt_ids = tokenizer.encode(prompt)
        for ids in label_ids:
            requests.append(TokensPrompt(prompt_token_ids=prompt_ids + ids))
            spans.append((len(prompt_ids), ids))
    params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0)
    outputs = llm.generate(requests, params)
    flat = []
    for output, (start, ids) in zip(outputs, spans):
        logprobs = output.prompt_logprobs
        flat.append(sum(logprobs[start + i][token].logprob for i, token in enumerate(ids)))
    width = len(labels)
    return [flat[i * width : (i + 1) * width] for i in range(len(prompts))]


def generations(llm, prompts: list[str], sampling: dict) -> list[str]:
    from vllm import SamplingParams

    params = SamplingParams(
        temperature=sampling["temperature"],
        top_k=sampling["top_k"],
        max_tokens=sampling["max_new_tokens"],
        seed=sampling["seed"],
    )
    return [output.outputs[0].text for output in llm.generate(prompts, params)]


def main(request_path: str, results_path: str) -> None:
    header, prompts = read_request(request_path)
    try:
        from vllm import LLM
    except ImportError as exc:
        raise SystemExit(f"vllm is not importable from {sys.executable}: {exc}") from exc
    llm = LLM(
        model=header["model"],
        seed=header.get("sampling", {}).get("seed", 0),
        tensor_parallel_size=header.get("tensor_parallel_size", 1),
    )
    if header["method"] == "choice":
        rows = [{"scores": s} for s in choice_scores(llm, llm.get_tokenizer(), prompts, header["labels"])]
    elif header["method"] == "generate":
        rows = [{"text": t} for t in generations(llm, prompts, header["sampling"])]
    else:
        raise SystemExit(f"{request_path}: unknown method {header['method']!r}")
    with open(results_path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: vllm_worker.py REQUEST.jsonl RESULTS.jsonl")
    main(sys.argv[1], sys.argv[2])
