#!/usr/bin/env bash
# End-to-end MNIST evaluation, `ratio eval` against a Python onnxruntime + numpy loop doing the same job (gzip
# IDX read, normalise, batch 256, 2 intra-op threads, top-1), each timed as a whole process, alternating A,B,A,B so
# machine drift hits both. Prints each run and the best of each.
#
#   benches/scripts/eval_vs_python.sh [ROUNDS]        (default 5)
#
# Needs: a release `ratio` (built here unless RATIO=path is given), python3 with venv, the PyPI registry.
# The venv lives outside the repository (VENV, default /tmp/ratio-eval-venv).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-5}
VENV=${VENV:-/tmp/ratio-eval-venv}
ROOT=$(pwd)
SHARED=$(for d in "$ROOT/../shared" "$ROOT/../../shared"; do [ -d "$d" ] && { cd "$d" && pwd; break; }; done)
DATA=$SHARED/data/mnist
MODEL=$SHARED/models/mnist_cnn.onnx

if [ -z "${RATIO:-}" ]; then
  cargo build --release -q -p toolkit --bin ratio
  RATIO=${CARGO_TARGET_DIR:-$ROOT/target}/release/ratio
fi
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q onnxruntime==1.31.1 numpy
fi

PY=$(mktemp --suffix .py)
trap 'rm -f "$PY"' EXIT
cat > "$PY" <<'PYEOF'
import gzip, sys
import numpy as np, onnxruntime as ort
data, model = sys.argv[1], sys.argv[2]
def idx(path):
    b = gzip.open(path).read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)
x = idx(f"{data}/t10k-images.idx3-ubyte.gz")
y = idx(f"{data}/t10k-labels.idx1-ubyte.gz")
o = ort.SessionOptions(); o.intra_op_num_threads = 2
s = ort.InferenceSession(model, o, providers=["CPUExecutionProvider"])
correct = 0
for i in range(0, len(x), 256):
    b = ((x[i:i + 256].astype(np.float32) / 255.0 - 0.1307) / 0.3081)[:, None]
    correct += int((s.run(None, {"input": b})[0].argmax(1) == y[i:i + 256]).sum())
print(f"top1 {correct / len(x):.4f}")
PYEOF

now() { date +%s.%N; }
best_r=999; best_p=999
for r in $(seq "$ROUNDS"); do
  t0=$(now); "$RATIO" eval "$MODEL" --data "$DATA" --preset mnist --batch 256 --threads 2 --no-progress --bootstrap 0 >/tmp/ratio-eval.out; t1=$(now)
  "$VENV/bin/python" "$PY" "$DATA" "$MODEL" >/tmp/python-eval.out; t2=$(now)
  tr=$(echo "$t1 - $t0" | bc -l); tp=$(echo "$t2 - $t1" | bc -l)
  printf 'round %d: ratio eval %.3f s (%s)   python %.3f s (%s)\n' "$r" "$tr" \
    "$(grep -o '99\.[0-9]*%' /tmp/ratio-eval.out | head -1)" "$tp" "$(cat /tmp/python-eval.out)"
  best_r=$(echo "if ($tr < $best_r) $tr else $best_r" | bc -l); best_p=$(echo "if ($tp < $best_p) $tp else $best_p" | bc -l)
done
printf 'best of %d: ratio eval %.3f s, python onnxruntime+numpy %.3f s, python/ratio = %.2fx\n' "$ROUNDS" "$best_r" "$best_p" \
  "$(echo "$best_p / $best_r" | bc -l)"
echo "model sha256 $(sha256sum "$MODEL" | cut -c1-12), data $DATA (MNIST t10k), ORT 1.31.1 both sides, $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
