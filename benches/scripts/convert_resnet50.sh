#!/usr/bin/env bash
# Whole-process conversion of a ResNet-50-sized model (~100 MB of f32 weights, 49 ReLU slots) at 2:1, side by side
# with onnx-graphsurgeon removing every other ReLU (no checks at all). Rounds alternate
#   ratio convert (checks on, the default) · ratio convert --no-check · graphsurgeon · cp + sync
# so that drift on a shared machine hits all of them alike. `cp + sync` copies the model file over its previous copy
# and flushes it to disk: the floor for any tool that writes a durable output of this size, as ratio does (fsync
# before the rename), which graphsurgeon's onnx.save does not; wall time, CPU time and peak RSS are printed as medians
# with the per-round paired ratios against graphsurgeon.
# Usage: benches/scripts/convert_resnet50.sh [rounds=9]
# RATIO_BASELINE=/path/to/older/ratio adds that binary's default and --no-check runs to each round (before/after).
# Needs python3 with venv/pip: graphsurgeon runs in a throwaway venv (onnx + onnx-graphsurgeon from PyPI).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-9}"
bash scripts/setup-ort.sh
cargo build --release -q -p toolkit
bin=target/release/ratio
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
venv="${RATIO_GS_VENV:-/tmp/ratio-bench-gs-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import onnx, onnx_graphsurgeon" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q onnx onnx-graphsurgeon
fi
cat >"$work/gs_remove.py" <<'EOF'
# Remove every other Relu with onnx-graphsurgeon: rewire its consumers to its input, clean up, save.
import sys, onnx, onnx_graphsurgeon as gs
src, dst = sys.argv[1], sys.argv[2]
graph = gs.import_onnx(onnx.load(src))
for n in [n for n in graph.nodes if n.op == "Relu"][1::2]:
    x, y = n.inputs[0], n.outputs[0]
    for c in list(y.outputs):
        c.inputs[c.inputs.index(y)] = x
    if y in graph.outputs:
        graph.outputs[graph.outputs.index(y)] = x
    n.outputs.clear()
graph.cleanup().toposort()
onnx.save(gs.export_onnx(graph), dst)
EOF
"$bin" model resnet50 --input-size 224 --classes 1000 -o "$work/r50.onnx" >/dev/null 2>&1
size=$(stat -c %s "$work/r50.onnx")
gsv=$("$venv/bin/python" -c "import onnx, onnx_graphsurgeon as g; print(f'onnx {onnx.__version__}, onnx-graphsurgeon {g.__version__}')")
echo "model: r50.onnx, $size bytes, sha256 $(sha256sum "$work/r50.onnx" | cut -c1-12); $("$bin" --version); $gsv"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load before $(cut -d' ' -f1-3 /proc/loadavg)"
run() { # name, command...
  local name=$1
  shift
  /usr/bin/time -f "$name %e %U %S %M" -a -o "$work/times" "$@" >/dev/null
}
for i in $(seq "$rounds"); do
  run default "$bin" convert "$work/r50.onnx" --ratio 2:1 -o "$work/out.onnx" --force
  run no-check "$bin" convert "$work/r50.onnx" --ratio 2:1 --no-check -o "$work/out.onnx" --force
  run graphsurgeon "$venv/bin/python" "$work/gs_remove.py" "$work/r50.onnx" "$work/gs.onnx"
  run cp+sync sh -c 'cp "$1" "$2" && sync "$2"' sh "$work/r50.onnx" "$work/cp.onnx"
  if [ -n "${RATIO_BASELINE:-}" ]; then
    run baseline-default "$RATIO_BASELINE" convert "$work/r50.onnx" --ratio 2:1 -o "$work/out.onnx" --force
    run baseline-no-check "$RATIO_BASELINE" convert "$work/r50.onnx" --ratio 2:1 --no-check -o "$work/out.onnx" --force
  fi
done
echo "load after $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work/times" "$size" <<'EOF'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
size = int(sys.argv[2])
by = {}
for name, wall, user, sys_, rss in rows:
    by.setdefault(name, []).append((float(wall), float(user) + float(sys_), int(rss) * 1024))
for name, v in by.items():
    wall = [r[0] for r in v]; cpu = [r[1] for r in v]; rss = [r[2] for r in v]
    print(f"{name:>12}: wall median {st.median(wall):.3f} s (min {min(wall):.3f}, max {max(wall):.3f}), "
          f"cpu median {st.median(cpu):.3f} s, peak RSS median {st.median(rss) / 2**20:.1f} MiB "
          f"= {st.median(rss) / size:.2f}x the file  [{len(v)} rounds]")
gs = by["graphsurgeon"]
for name in [n for n in by if n != "graphsurgeon"]:
    wall = [g[0] / r[0] for g, r in zip(gs, by[name])]
    cpu = [g[1] / r[1] for g, r in zip(gs, by[name])]
    print(f"graphsurgeon / ratio {name}: wall ratio median {st.median(wall):.2f}x "
          f"(range {min(wall):.2f}-{max(wall):.2f}), cpu ratio median {st.median(cpu):.2f}x")
EOF
