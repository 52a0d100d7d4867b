#!/usr/bin/env bash
# Train step of ratio against PyTorch eager on the same network with the same weights (see train_vs_pytorch.py):
# ResNet-20 at 32x32x3 batch 128 and a torchvision-style ResNet-18 at 224x224x3 batch 16, 2 threads, rounds
# alternating ratio and PyTorch; prints both medians and the median of the per-round ratio.
# Usage: benches/scripts/train_vs_pytorch.sh [rounds=5] [iters per round=5] [nets="resnet20 resnet18"]
# PyTorch (from PyPI) goes into a throwaway venv, $RATIO_TORCH_VENV (default /tmp/ratio-bench-torch-venv); no test
# or CI step needs it.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-5}"
iters="${2:-5}"
nets="${3:-resnet20 resnet18}"
bash scripts/setup-ort.sh
cargo build --release -q -p toolkit
venv="${RATIO_TORCH_VENV:-/tmp/ratio-bench-torch-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch, onnx, numpy" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch onnx numpy
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(target/release/ratio --version), ONNX Runtime $(basename "$(readlink -f .ort/lib/libonnxruntime.so* | head -1)")"
for net in $nets; do
  batch=128
  [ "$net" = resnet18 ] && batch=16
  "$venv/bin/python" benches/scripts/train_vs_pytorch.py target/release/ratio "$net" "$batch" "$rounds" "$iters"
done
