#!/usr/bin/env bash
# Set up (ONNX Runtime library) and run the whole test suite. Idempotent; safe on a fresh machine.
# In CI (CI=true) or with RATIO_SLURM_TEST=1 it also runs the real single-node Slurm test of `ratio sweep --emit
# slurm`, which installs slurm-wlm and munge with apt-get and starts its own daemons (skipped loudly if it cannot).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-ort.sh
# Release: the suite trains real networks and scores real datasets; debug builds make that several times slower.
cargo test --release --no-fail-fast 2>&1
if [ "${CI:-}" = true ] || [ "${RATIO_SLURM_TEST:-}" = 1 ]; then
  cargo build --release -q -p toolkit --bin ratio
  RATIO="${CARGO_TARGET_DIR:-$PWD/target}/release/ratio" bash scripts/slurm-test.sh 2>&1
fi

# --- CUDA build (issue 9 §5). No GPU is needed: ort's `cuda` feature with `load-dynamic` links no CUDA library,
# so this proves the CUDA code paths compile and are clippy-clean; the GPU run itself is scripts/gpu-check.sh.
cargo build --release --features cuda 2>&1
cargo clippy --release --workspace --all-targets --features toolkit/cuda -- -D warnings 2>&1
# --- end CUDA build
