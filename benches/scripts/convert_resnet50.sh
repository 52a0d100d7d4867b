#!/usr/bin/env bash
# Whole-process conversion of a ResNet-50-sized model (~100 MB of f32 weights, 49 ReLU slots): wall time, CPU
# time and peak RSS over N runs, medians printed. Usage: benches/scripts/convert_resnet50.sh [runs=9]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-9}"
bash scripts/setup-ort.sh
cargo build --release -q -p toolkit
bin=target/release/ratio
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$bin" model resnet50 --input-size 224 --classes 1000 -o "$work/r50.onnx" 2>/dev/null
size=$(stat -c %s "$work/r50.onnx")
echo "model: $(basename "$work")/r50.onnx, $size bytes; machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$runs"); do
  /usr/bin/time -f "%e %U %S %M" -o "$work/t$i" "$bin" convert "$work/r50.onnx" --ratio 2:1 --no-check \
    -o "$work/out.onnx" --force >/dev/null
done
cat "$work"/t* | python3 -c "
import sys, statistics as st
rows=[list(map(float,l.split())) for l in sys.stdin if l.strip()]
wall=[r[0] for r in rows]; cpu=[r[1]+r[2] for r in rows]; rss=[r[3]*1024 for r in rows]
size=$size
print(f'runs {len(rows)}: wall median {st.median(wall):.3f} s (min {min(wall):.3f}), cpu median {st.median(cpu):.3f} s, '
      f'peak RSS median {st.median(rss)/2**20:.1f} MiB = {st.median(rss)/size:.2f}x the file')"
