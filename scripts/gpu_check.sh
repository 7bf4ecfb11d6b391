#!/usr/bin/env bash
# The GPU check as ONE call of the device tool (one H100/H200, Python 3.12 with torch 2.11 and
# transformers 5.17, nothing to fetch, at most 64 MiB carried): SFT tokens/s of the hf backend with
# the output layer at the completion positions and with full logits, of Unsloth, and `choice`
# examples/s, on Gemma 3 270M's real shape with random weights, beside the GPU's bf16 matrix rate
# (benchmarks/bench_gpu.py says what each stage runs and what is not measured: vLLM, whose wheels
# exceed the limit, and 4-bit loading).
#
# Here first (downloads the wheels into .whl/ and checks them: tags, requirements, size, install):
#     .venv/bin/python scripts/gpu_check_prepare.py     # --no-unsloth: the training path alone
# Then, in a session that is lent a GPU, the device tool's call (bench_gpu.py's own limits end it
# within 8 minutes: 3 per stage, 7.5 in all; a stage that fails or runs out of time is named and the
# others still report):
#     run(command='bash scripts/gpu_check.sh', carry=['.whl'], timeout_s=540)
# docs/training.md ("GPU check") says what it measures and what it cannot.
# Figures and logs come back from $OUT (results.json, gpu_check.log, one log per stage). Arguments
# go to bench_gpu.py (e.g. --stages sft-hf,sft-full-logits to rerun two stages).
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-artifacts/gpu-check}
SITE=${SITE:-/tmp/kositp-site}
mkdir -p "$OUT"
shopt -s nullglob
wheels=(.whl/*.whl)
if [ ${#wheels[@]} -eq 0 ]; then
    echo "gpu_check: no wheels in .whl/: run scripts/gpu_check_prepare.py here and carry .whl" >&2
    exit 2
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${wheels[@]}" \
    || { echo "gpu_check: the carried wheels did not install into $SITE" >&2; exit 2; }
# the carried packages first, then this checkout (kositp, benchmarks); nothing may reach the network
export PYTHONPATH="$SITE:$PWD" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 benchmarks/bench_gpu.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_check.log"
