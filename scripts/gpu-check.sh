#!/usr/bin/env bash
# GPU check of ratio's training path: every GPU test, a real fine-tune on the CUDA EP with the device-resident
# step (and the host-copying one beside it), and the train-step bench (host vs resident, alternating). Results
# are written step by step, so a run cut short by a timeout still leaves what it finished.
#
#   scripts/gpu-check.sh prepare [DIR]      on a build machine: cargo + PyPI needed, no GPU
#   scripts/gpu-check.sh run [--cpu-dry-run] [RESULTS]
#                                           on the GPU machine: no network, no Rust toolchain needed
#   scripts/gpu-check.sh [RESULTS]          both, on one GPU machine that has cargo and PyPI
#
# prepare builds `ratio` and the GPU-relevant test binaries with `--features cuda`, strips them, and stages them
# with the fixtures they read and the onnxruntime-gpu 1.31.1 libraries (from the PyPI wheel) in DIR/stage
# (default .gpu-check, git-ignored). The CUDA provider library alone is 284 MB, over what one remote call can
# carry, so prepare also packs the stage as DIR/part-1 … DIR/part-N (xz-compressed tar, at most 56 MiB each, leaving room for the repository in a 64 MiB call);
# `run` unpacks them into DIR/stage when the stage itself is absent (RATIO_GPU_XZ_LEVEL, default 6, trades
# packing time for parts). CUDA 13 and cuDNN 9 come from the GPU
# machine's Python packages (nvidia-* wheels, e.g. PyTorch's); without them `run` says which library is missing.
# `run --cpu-dry-run` runs the same steps on the CPU EP with the CPU ONNX Runtime library in .ort/lib, to check
# the script here. RESULTS defaults to $OUT when set, else ./gpu-check-results.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PREP=${RATIO_GPU_DIR:-$ROOT/.gpu-check}
ORT_VERSION=1.31.1
PART_MIB=56
XZ_LEVEL=${RATIO_GPU_XZ_LEVEL:-6}

stage_file() { # src dst-relative-to-stage
  mkdir -p "$(dirname "$PREP/stage/$2")"
  cp -L "$1" "$PREP/stage/$2"
}

prepare() {
  [ $# -ge 1 ] && PREP=$1
  echo "== preparing $PREP"
  rm -rf "$PREP/stage" "$PREP"/part-*
  mkdir -p "$PREP/stage/bin"
  bash scripts/setup-ort.sh
  local target=${CARGO_TARGET_DIR:-$ROOT/target}
  cargo build --release -p toolkit --features cuda --bin ratio
  # Test binaries: cargo prints each executable it built.
  local tests=(train_gpu train_resident runtime bench)
  local args=()
  for t in "${tests[@]}"; do args+=(--test "$t"); done
  cargo test --release -p toolkit --features cuda --no-run --message-format=json "${args[@]}" \
    | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])' >"$PREP/tests.txt"
  while read -r name exe; do
    cp "$exe" "$PREP/stage/bin/$name"
  done <"$PREP/tests.txt"
  cp "$target/release/ratio" "$PREP/stage/bin/ratio"
  strip "$PREP/stage/bin/"*
  local shared
  shared=$(for d in "$ROOT/shared" "$ROOT/../shared" "$ROOT/../../shared"; do
    [ -f "$d/models/mnist_cnn.onnx" ] && echo "$d" && break
  done)
  [ -n "$shared" ] || { echo "shared/models/mnist_cnn.onnx not found beside the checkout"; exit 1; }
  for f in models/mnist_cnn.onnx data/digits.csv.gz data/mnist/train-images.idx3-ubyte.gz \
    data/mnist/train-labels.idx1-ubyte.gz data/mnist/t10k-images.idx3-ubyte.gz data/mnist/t10k-labels.idx1-ubyte.gz; do
    stage_file "$shared/$f" "shared/$f"
  done
  local wheel_dir=$PREP/wheel
  mkdir -p "$wheel_dir"
  if ! ls "$wheel_dir"/onnxruntime_gpu-"$ORT_VERSION"-*.whl >/dev/null 2>&1; then
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
      -d "$wheel_dir" "onnxruntime-gpu==$ORT_VERSION"
  fi
  mkdir -p "$PREP/stage/ort"
  (cd "$PREP/stage/ort" && unzip -q -j -o "$wheel_dir"/onnxruntime_gpu-"$ORT_VERSION"-*.whl \
    "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" "onnxruntime/capi/libonnxruntime_providers_shared.so" \
    "onnxruntime/capi/libonnxruntime_providers_cuda.so")
  # Where the test binaries look for the ratio binary and shared/ (paths fixed at compile time).
  {
    echo "BAKED_ROOT=$ROOT"
    echo "BAKED_TARGET=$target"
    echo "COMMIT=$(git rev-parse HEAD)"
    echo "BUILT=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  } >"$PREP/stage/manifest.env"
  echo "== packing the stage into parts of at most $PART_MIB MiB"
  tar -C "$PREP/stage" -cf - . | xz -T0 "-$XZ_LEVEL" | split -b "${PART_MIB}M" -d -a 1 - "$PREP/pack."
  local k=1
  for p in "$PREP"/pack.*; do
    mkdir -p "$PREP/part-$k"
    mv "$p" "$PREP/part-$k/stage.tar.xz.$k"
    k=$((k + 1))
  done
  du -sh "$PREP/stage" "$PREP"/part-*
  echo "carry each of $(cd "$PREP" && echo part-*) in one call (in order, calls back to back so the machine stays" \
    "warm), then call: bash scripts/gpu-check.sh run"
}

# Unpack DIR/part-*/ into DIR/stage when only the parts travelled.
unpack() {
  [ -d "$PREP/stage/bin" ] && return 0
  local parts=() k
  for k in $(seq 1 99); do
    [ -f "$PREP/part-$k/stage.tar.xz.$k" ] || break
    parts+=("$PREP/part-$k/stage.tar.xz.$k")
  done
  [ ${#parts[@]} -gt 0 ] || { echo "no staged build in $PREP (run 'scripts/gpu-check.sh prepare' first)"; return 1; }
  mkdir -p "$PREP/stage"
  cat "${parts[@]}" | xz -d | tar -C "$PREP/stage" -xf -
}

run_checks() {
  local dry=0
  if [ "${1:-}" = --cpu-dry-run ]; then dry=1; shift; fi
  local res=${1:-${OUT:-$ROOT/gpu-check-results}}
  mkdir -p "$res"
  exec > >(tee -a "$res/gpu-check.log") 2>&1
  local start fails=0
  start=$(date +%s)
  local summary=$res/summary.txt
  : >"$summary"
  note() { echo "$*" | tee -a "$summary"; }
  step() { echo; echo "== $* ($(($(date +%s) - start))s)"; }
  # Run a named step with a time limit, stdout into `out` ('-': the log); record PASS/FAIL and keep going.
  check() {
    local name=$1 limit=$2 out=$3
    shift 3
    step "$name"
    local t0 rc=0
    t0=$(date +%s)
    if [ "$out" = - ]; then
      timeout "$limit" "$@" || rc=$?
    else
      timeout "$limit" "$@" >"$out" || rc=$?
    fi
    if [ "$rc" -eq 0 ]; then
      note "PASS $name ($(($(date +%s) - t0))s)"
    else
      note "FAIL $name (exit $rc after $(($(date +%s) - t0))s)"
      fails=$((fails + 1))
    fi
  }

  step "machine"
  unpack
  local stage=$PREP/stage bin=$PREP/stage/bin
  # shellcheck disable=SC1091 # written by prepare
  source "$stage/manifest.env"
  note "gpu-check of commit $COMMIT (built $BUILT); mode $([ $dry = 1 ] && echo cpu-dry-run || echo gpu); $(date -u +%FT%TZ)"
  local device=cuda
  if [ $dry = 1 ]; then
    device=cpu
    export ORT_DYLIB_PATH=$ROOT/.ort/lib/libonnxruntime.so.$ORT_VERSION
    note "cpu dry run: CPU EP, ORT_DYLIB_PATH=$ORT_DYLIB_PATH, GPU tests skip themselves"
  else
    command -v nvidia-smi >/dev/null || { note "FAIL nvidia-smi not found: no NVIDIA driver here"; exit 1; }
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$summary"
    export ORT_DYLIB_PATH=$stage/ort/libonnxruntime.so.$ORT_VERSION
    # CUDA 13 / cuDNN 9 from the Python nvidia-* wheels on this machine (PyTorch's), else the system's.
    local libs
    libs=$(python3 - <<'EOF' 2>/dev/null || true
import glob, os, site
dirs = set()
for sp in site.getsitepackages() + [site.getusersitepackages()]:
    for so in glob.glob(os.path.join(sp, "nvidia", "**", "lib*.so*"), recursive=True):
        dirs.add(os.path.dirname(so))
print(":".join(sorted(dirs)))
EOF
)
    export LD_LIBRARY_PATH=$stage/ort${libs:+:$libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export RATIO_GPU_TESTS=1
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    local missing
    missing=$(LD_LIBRARY_PATH=$LD_LIBRARY_PATH ldd "$stage/ort/libonnxruntime_providers_cuda.so" | grep "not found" || true)
    [ -z "$missing" ] || note "missing CUDA libraries for the CUDA EP: $missing"
  fi
  sha256sum "$ORT_DYLIB_PATH"
  # The test binaries look for the ratio binary and shared/ where they were built.
  if [ ! -x "$BAKED_TARGET/release/ratio" ]; then
    mkdir -p "$BAKED_TARGET/release" && cp "$bin/ratio" "$BAKED_TARGET/release/ratio"
  fi
  local found=""
  for d in "$BAKED_ROOT/toolkit" "$BAKED_ROOT" "$(dirname "$BAKED_ROOT")" "$(dirname "$(dirname "$BAKED_ROOT")")"; do
    [ -f "$d/shared/models/mnist_cnn.onnx" ] && found=$d && break
  done
  [ -n "$found" ] || { mkdir -p "$BAKED_ROOT" && ln -sfn "$stage/shared" "$BAKED_ROOT/shared"; }
  local shared=$stage/shared

  for t in train_gpu runtime bench train_resident; do
    [ -x "$bin/$t" ] || { note "FAIL test binary $t missing"; fails=$((fails + 1)); continue; }
    check "tests: $t" 300 - "$bin/$t" --test-threads 1
  done

  local limit_args=() threads_args=()
  [ $dry = 1 ] && limit_args=(--train-limit 2048) && threads_args=(--threads 2)
  for state in device host; do
    local f=$res/finetune-$state.json
    check "fine-tune mnist_cnn on MNIST, --device $device --state $state" 300 "$f" \
      "$bin/ratio" finetune "$shared/models/mnist_cnn.onnx" --data "$shared/data/mnist" --preset mnist \
      --epochs 1 --batch 128 --lr 0.01 --device "$device" --state "$state" "${limit_args[@]}" "${threads_args[@]}" \
      --no-progress --json - -o "$res/ft-$state.out"
    rm -rf "$res/ft-$state.out"
    [ -s "$f" ] && python3 - "$f" "$state" <<'EOF' | tee -a "$summary"
import json, sys
o = json.load(open(sys.argv[1]))
for e in o["epochs"]:
    print(f"fine-tune --state {sys.argv[2]} on {o['identity']['provenance']['device']}: {e['images_per_s']:.0f} img/s, "
          f"{e['step_s']:.2f} s inside the step, data wait {100 * e['data_wait_fraction']:.1f} %, val acc {e['val_acc']:.4f} "
          f"(before {o['initial_val_acc']:.4f})")
EOF
  done

  local bench_args=(--model resnet20 --batch 128 --iters 20)
  [ $dry = 1 ] && bench_args=(--model resnet20 --batch 16 --iters 3)
  step "train-step bench: ${bench_args[*]} --device $device"
  if timeout 300 "$bin/ratio" bench-train "${bench_args[@]}" --device "$device" >"$res/bench-train.json"; then
    python3 - "$res/bench-train.json" <<'EOF' | tee -a "$summary"
import json, sys
b = json.load(open(sys.argv[1]))
print(f"bench-train {b['model']} batch {b['batch']}: host step {b['step_ms_median']:.2f} ms, resident "
      f"{b['resident_step_ms_median']:.2f} ms (paired median ratio {b['resident_over_host']:.3f}), inference "
      f"{b['inference_ms_median']:.2f} ms, on {b['provenance']['device']}")
EOF
  else
    note "FAIL train-step bench"
    fails=$((fails + 1))
  fi
  note "gpu-check finished in $(($(date +%s) - start))s with $fails failure(s); results in $res"
  [ "$fails" -eq 0 ]
}

case "${1:-}" in
  prepare) shift; prepare "$@" ;;
  run) shift; run_checks "$@" ;;
  *) prepare; run_checks "$@" ;;
esac
