#!/usr/bin/env bash
# GPU check of ratio's training path, for a machine with an NVIDIA GPU (driver >= 580, CUDA 13 capable).
# Builds with `--features cuda`, fetches onnxruntime-gpu 1.31.1 with its CUDA 13 / cuDNN 9 wheels via pip,
# puts their libraries on LD_LIBRARY_PATH, runs the GPU tests and a short training benchmark. Budget: < 8 min.
#
#   scripts/gpu-check.sh            # everything below; output also saved to gpu-check.log
#   RATIO_GPU_DIR=/scratch/ort-gpu scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
GPU_DIR=${RATIO_GPU_DIR:-$ROOT/.ort-gpu}
LOG=$ROOT/gpu-check.log
exec > >(tee "$LOG") 2>&1
start=$(date +%s)
step() { echo; echo "== $* ($(( $(date +%s) - start ))s)"; }

step "GPU"
command -v nvidia-smi >/dev/null || { echo "nvidia-smi not found: no NVIDIA driver on this machine"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

step "onnxruntime-gpu 1.31.1 + CUDA 13 / cuDNN 9 wheels"
SITE=$GPU_DIR/site
if [ ! -f "$SITE/onnxruntime/capi/libonnxruntime.so.1.31.1" ]; then
  mkdir -p "$SITE"
  timeout 300 python3 -m pip install --quiet --disable-pip-version-check --no-compile \
    --target "$SITE" 'onnxruntime-gpu[cuda,cudnn]==1.31.1'
fi
export ORT_DYLIB_PATH=$SITE/onnxruntime/capi/libonnxruntime.so.1.31.1
LIBS=$(find "$SITE/nvidia" -maxdepth 3 -type d -name lib | tr '\n' ':')
export LD_LIBRARY_PATH=${LIBS}${LD_LIBRARY_PATH:-}
echo "ORT_DYLIB_PATH=$ORT_DYLIB_PATH"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
sha256sum "$ORT_DYLIB_PATH"

step "build with --features cuda"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
timeout 240 cargo build --release -p toolkit --features cuda --bin ratio

step "GPU tests (train step on CUDA vs CPU)"
RATIO_GPU_TESTS=1 timeout 180 cargo test --release -p toolkit --features cuda --test train_gpu -- --nocapture

step "training benchmark: ResNet-20, batch 128, CUDA EP"
timeout 120 "$CARGO_TARGET_DIR/release/ratio" bench-train --model resnet20 --batch 128 --iters 20 --device cuda

step "short fine-tune on CUDA: plain CNN on digits, 3 epochs"
DATA=$(for d in "$ROOT/../shared" "$ROOT/../../shared"; do [ -f "$d/data/digits.csv.gz" ] && echo "$d" && break; done)
if [ -n "$DATA" ]; then
  OUT=$(mktemp -d)
  timeout 120 "$CARGO_TARGET_DIR/release/ratio" train --model plain --data "$DATA/data/digits.csv.gz" \
    --preset digits --epochs 3 --batch 64 --lr 0.05 --device cuda --out "$OUT" --no-progress
else
  echo "skipped: shared/data/digits.csv.gz not found next to the checkout"
fi
echo; echo "gpu-check finished in $(( $(date +%s) - start ))s; log: $LOG"
