#!/usr/bin/env bash
# Streamed fine-tuning on a generated 224×224 ImageFolder (issue 9 §3): peak RSS of the whole `ratio finetune`
# process (target < 2 GB) and the share of the step loop's wall time spent waiting on data (target ≤ 5 % on 2
# cores), with RandomResizedCrop + flip + colour jitter decoding every training image from disk each step.
#
#   benches/scripts/stream_imagefolder.sh [IMAGES=20000] [EPOCHS=1]
#
# Environment: WORK (default /tmp/ratio-stream-bench; the generated folder is kept there and reused), MODEL
# (a `ratio model` name, default plain), WIDTH (default 1), BATCH (default 32), THREADS (ORT intra-op threads,
# default 2), STATE (device|host, default device), LIMIT (train on the first N training images only, e.g. to
# keep one run short on a slow machine; the whole folder is still scanned and validated). Prints one summary line; the full outcome JSON, the metrics and
# /usr/bin/time's report stay in $WORK/run-*/.
set -euo pipefail
cd "$(dirname "$0")/../.."
images=${1:-20000}
epochs=${2:-1}
work=${WORK:-/tmp/ratio-stream-bench}
model=${MODEL:-plain}
width=${WIDTH:-1}
batch=${BATCH:-32}
threads=${THREADS:-2}
state=${STATE:-device}
limit_args=()
[ -n "${LIMIT:-}" ] && limit_args=(--train-limit "$LIMIT")
bash scripts/setup-ort.sh
cargo build --release -q -p toolkit --bin ratio
cargo build --release -q -p ratio-benches --bin gen_imagefolder
bin=${CARGO_TARGET_DIR:-$PWD/target}/release
mkdir -p "$work"
data=$work/folder-$images
if [ ! -f "$data/.complete" ]; then
  rm -rf "$data"
  "$bin/gen_imagefolder" "$data" "$images" 10 0
  touch "$data/.complete"
fi
onnx=$work/$model-w$width-224.onnx
"$bin/ratio" model "$model" --input-size 224 --classes 10 --width "$width" --seed 0 -o "$onnx" --force >/dev/null
run=$work/run-$(date +%Y%m%d-%H%M%S)
mkdir -p "$run"
echo "data: $data ($(du -sh "$data" | cut -f1), $images images); model: $onnx; batch $batch, $threads ORT threads," \
  "state $state${LIMIT:+, first $LIMIT training images}; machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -v -o "$run/time.txt" "$bin/ratio" finetune "$onnx" --data "$data" --preset imagenet-torchvision \
  --random-resized-crop 224 --hflip --brightness 0.4 --contrast 0.4 --saturation 0.4 \
  --epochs "$epochs" --batch "$batch" --lr 0.01 --threads "$threads" --state "$state" "${limit_args[@]}" \
  --no-progress --json - -o "$run/out" >"$run/outcome.json"
python3 - "$run" <<'EOF'
import json, sys
run = sys.argv[1]
o = json.load(open(f"{run}/outcome.json"))
t = {k.strip(): v.strip() for k, v in (l.split(": ", 1) for l in open(f"{run}/time.txt") if ": " in l)}
rss_gb = int(t["Maximum resident set size (kbytes)"]) * 1024 / 1e9
for e in o["epochs"]:
    print(f"epoch {e['epoch']}: {e['steps']} steps, {e['images_per_s']:.1f} img/s, step loop waited on data "
          f"{e['data_wait_s']:.1f} s = {100 * e['data_wait_fraction']:.2f} % (target <= 5 %), "
          f"in the step {e['step_s']:.1f} s, epoch {e['seconds']:.1f} s with validation, "
          f"val acc {e['val_acc']:.4f}")
print(f"peak RSS {rss_gb:.2f} GB (target < 2 GB); wall {t['Elapsed (wall clock) time (h:mm:ss or m:ss)']}; "
      f"ORT {o['identity']['provenance']['ort_version']} on {o['identity']['provenance']['device']}, "
      f"{o['identity']['provenance']['machine']['cores']} cores; run folder {run}")
EOF
