#!/usr/bin/env bash
# The demo: from a fresh checkout to a report, on real Fashion-MNIST, in at most ~15 minutes on a 2-core CPU.
#   1. ONNX Runtime library (scripts/setup-ort.sh), 2. release build, 3. `ratio data fetch fashion-mnist`,
#   4. a reduced sweep — ResNet-20 at 1:1 and 2:1 (policy `last`), 2 seeds: build + train the 1:1 base, convert,
#      calibrate (AdaBN + least squares against the base), fine-tune, evaluate, time and analyse every variant —
#      and 5. `ratio report`.
# Sizes are reduced to fit the budget (env overrides): DEMO_TRAIN_LIMIT training images (default 30000 of
# 60k: one epoch of ResNet-20 at width 0.5 over 60k took 48-65 s per training here, 5 trainings, and a cold release
# build takes 8-11 minutes on 2 cores, so half the set keeps a fresh checkout inside 15 minutes), DEMO_EPOCHS,
# DEMO_WIDTH (channel multiplier of ResNet-20), DEMO_SEEDS, DEMO_RICHNESS samples, DEMO_RUN (run directory).
# Rerunning resumes: finished steps are verified by their recorded hashes and skipped.
# The full experiment (all ratios × policies × 3 seeds, full data, 160 epochs) is the same command with
# the sizes lifted; see the end of this script's output and README.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TRAIN_LIMIT=${DEMO_TRAIN_LIMIT:-30000}
EPOCHS=${DEMO_EPOCHS:-1}
WIDTH=${DEMO_WIDTH:-0.5}
SEEDS=${DEMO_SEEDS:-2}
RICH=${DEMO_RICHNESS:-1000}
RUN=${DEMO_RUN:-$ROOT/runs/demo-fashion-mnist}
start=$(date +%s)
stamp() { echo "[demo +$(( $(date +%s) - start ))s] $*" >&2; }

stamp "1/5 ONNX Runtime library"
bash scripts/setup-ort.sh
export ORT_DYLIB_PATH="$ROOT/.ort/lib/libonnxruntime.so.1.31.1"

stamp "2/5 cargo build --release"
cargo build --release -q -p toolkit --bin ratio
RATIO="${CARGO_TARGET_DIR:-$ROOT/target}/release/ratio"

stamp "3/5 ratio data fetch fashion-mnist"
"$RATIO" data fetch fashion-mnist

stamp "4/5 ratio sweep (ResNet-20 ×{1:1, 2:1 last} × $SEEDS seeds, $TRAIN_LIMIT training images, $EPOCHS epoch(s), width $WIDTH)"
set +e
"$RATIO" sweep --model resnet20 --data fashion-mnist --preset fashion-mnist --ratios 1:1,2:1 --policies last --seeds "$SEEDS" \
  --finetune --epochs "$EPOCHS" \
  --steps convert,calibrate,train,inspect,eval,bench,richness \
  "--step-args=model=--width $WIDTH" \
  "--step-args=train=--train-limit $TRAIN_LIMIT" \
  "--step-args=bench=--iters 200 --warmup 20" \
  "--step-args=richness=--samples $RICH --cka-samples $RICH --no-probe" \
  --run-dir "$RUN"
status=$?
set -e
[ $status -le 1 ] || { stamp "sweep could not run (exit $status)"; exit $status; }

stamp "5/5 ratio report"
"$RATIO" report "$RUN"
stamp "done in $(( $(date +%s) - start )) s; open $RUN/report/index.html (Markdown: $RUN/report/report.md)"
[ $status -eq 0 ] || stamp "some steps failed (see the report's step counts and $RUN/variants/*/*.log); rerun this script to retry them"
exit $status
