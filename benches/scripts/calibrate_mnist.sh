#!/usr/bin/env bash
# Calibration of the real MNIST CNN after a 2:1 conversion (global scope, no stem/head protection: 4 → 2 ReLUs),
# as a whole process: wall time, CPU time and peak RSS per method over N runs, medians printed, with the top-1
# before and after on the 10k test images. The DESIGN.md §7 target is ≥ 98 % in under 30 s wall on 2 cores.
#
#   benches/scripts/calibrate_mnist.sh [RUNS=3] [METHODS="auto affine lsq"] [SAMPLES=4000]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-3}"
methods="${2:-auto affine lsq}"
samples="${3:-4000}"
ROOT=$(pwd)
SHARED=$(for d in "$ROOT/../shared" "$ROOT/../../shared"; do [ -d "$d" ] && { cd "$d" && pwd; break; }; done)
bash scripts/setup-ort.sh
cargo build --release -q -p toolkit --bin ratio
bin=$ROOT/target/release/ratio
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$SHARED/models/mnist_cnn.onnx" "$work/"
"$bin" convert "$work/mnist_cnn.onnx" --ratio 2:1 --scope global --no-protect-stem --no-protect-head \
  -o "$work/m21.onnx" >/dev/null
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); samples $samples"
for m in $methods; do
  for i in $(seq "$runs"); do
    /usr/bin/time -f "%e %U %S %M" -o "$work/t.$m.$i" "$bin" calibrate "$work/m21.onnx" --data "$SHARED/data/mnist" \
      --preset mnist --method "$m" --samples "$samples" -o "$work/c.onnx" --force --json "$work/r.$m.$i.json" >/dev/null
  done
  python3 - "$work" "$m" "$runs" <<'PY'
import json, statistics as st, sys
work, m, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = [list(map(float, open(f"{work}/t.{m}.{i}").read().split())) for i in range(1, runs + 1)]
body = json.load(open(f"{work}/r.{m}.1.json"))["body"]
b, a = body["before"], body["after"]
print(f"{m:>7}: top-1 {100*b['top1']:.2f}% -> {100*a['top1']:.2f}%, agreement {100*b['agreement']:.2f}% -> "
      f"{100*a['agreement']:.2f}%; wall median {st.median(r[0] for r in rows):.1f} s (min {min(r[0] for r in rows):.1f}), "
      f"cpu median {st.median(r[1] + r[2] for r in rows):.1f} s, peak RSS {st.median(r[3] for r in rows)/1024:.0f} MiB")
PY
done
