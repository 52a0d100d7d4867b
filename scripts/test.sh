#!/usr/bin/env bash
# Set up (ONNX Runtime library) and run the whole test suite. Idempotent; safe on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-ort.sh
cargo test --workspace --release 2>&1
