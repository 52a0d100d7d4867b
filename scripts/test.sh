#!/usr/bin/env bash
# Set up (ONNX Runtime library) and run the whole test suite. Idempotent; safe on a fresh machine.
# In CI (CI=true) or with RATIO_SLURM_TEST=1 it also runs the real single-node Slurm test of `ratio sweep --emit
# slurm`, which installs slurm-wlm and munge with apt-get and starts its own daemons (and fails if it cannot).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-ort.sh

# The maintainer's habits, checked where everyone's change lands: formatting, generated code up to date, lints on
# every crate and target with every feature (the CUDA path included: it compiles without CUDA libraries), and the
# crates the suite does not test (benches, xtask) still build.
echo "test.sh: cargo fmt --check" >&2
cargo fmt --all --check
echo "test.sh: cargo xtask codegen --check" >&2
cargo xtask codegen --check
echo "test.sh: cargo clippy --all-features -D warnings" >&2
cargo clippy --workspace --all-targets --all-features --no-deps -q -- -D warnings
echo "test.sh: build benches and xtask" >&2
cargo build --release -q -p ratio-benches --benches -p xtask

# --- Chromium for toolkit/tests/report_render.rs (headless browser check of the sweep report) --------------------
# The test fails without a browser rather than skipping, so install Debian's package here when none is on PATH.
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null && ! command -v google-chrome >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  ($SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium) >&2 \
    || echo "test.sh: installing chromium failed; report_renders_in_headless_chromium will fail" >&2
fi
# --- end Chromium -----------------------------------------------------------------------------------------------
# Release: the suite trains real networks and scores real datasets; debug builds make that several times slower.
cargo test --release --no-fail-fast 2>&1
if [ "${CI:-}" = true ] || [ "${RATIO_SLURM_TEST:-}" = 1 ]; then
  cargo build --release -q -p toolkit --bin ratio
  RATIO="${CARGO_TARGET_DIR:-$PWD/target}/release/ratio" bash scripts/slurm-test.sh 2>&1
fi

# --- CUDA build (issue 9 §5). No GPU is needed: ort's `cuda` feature with `load-dynamic` links no CUDA library,
# so this proves the CUDA binaries build (the clippy run above already lints them, --all-features); the GPU run
# itself is scripts/gpu-check.sh.
echo "test.sh: build with --features cuda" >&2
cargo build --release -q -p toolkit --features cuda --bins 2>&1
# --- end CUDA build
