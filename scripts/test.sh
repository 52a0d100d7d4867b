#!/usr/bin/env bash
# Set up (ONNX Runtime library) and run the whole test suite. Idempotent; safe on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-ort.sh
# Release: the suite trains real networks and scores real datasets; debug builds make that several times slower.
cargo test --release --no-fail-fast 2>&1
