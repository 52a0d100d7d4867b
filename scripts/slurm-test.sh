#!/usr/bin/env bash
# Real single-node Slurm test of `ratio sweep --emit slurm`: install slurm-wlm + munge (Debian) when missing,
# start munged, slurmctld and slurmd on this machine from a minimal slurm.conf in a temp dir (own ports, own
# socket: nothing system-wide is touched), submit the emitted sbatch array of a tiny sweep, wait for it, and
# check that `ratio report` merges every shard's records. If the packages cannot be installed it fails (exit 1)
# in CI (CI=true) or when asked for (RATIO_SLURM_TEST=1, as scripts/test.sh does), and only run by hand elsewhere
# does it skip loudly (exit 0).
# Usage: scripts/slurm-test.sh   (env: RATIO=path/to/ratio to skip the build, KEEP=1 to keep $T)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

skip() {
  if [ "${CI:-}" = true ] || [ "${RATIO_SLURM_TEST:-}" = 1 ]; then
    printf '\nslurm-test FAILED: %s (required here: CI=true or RATIO_SLURM_TEST=1)\n\n' "$*" >&2
    exit 1
  fi
  printf '\n!!!!!!!! SKIPPED slurm-test: %s !!!!!!!!\n\n' "$*" >&2
  exit 0
}

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "slurm-test: installing slurm-wlm and munge" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  ($SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y slurm-wlm munge) >&2 \
    || skip "apt-get install slurm-wlm munge failed"
  command -v slurmctld >/dev/null && command -v munged >/dev/null || skip "slurmctld/munged still missing"
fi

bash scripts/setup-ort.sh
export ORT_DYLIB_PATH="$ROOT/.ort/lib/libonnxruntime.so.1.31.1"
if [ -z "${RATIO:-}" ]; then
  cargo build -q -p toolkit --bin ratio
  RATIO="${CARGO_TARGET_DIR:-$ROOT/target}/debug/ratio"
fi
MODEL=""
for d in "$ROOT/.." "$ROOT/../.." "$ROOT/../../.."; do
  [ -f "$d/shared/models/mnist_cnn.onnx" ] && MODEL="$(cd "$d/shared/models" && pwd)/mnist_cnn.onnx" && break
done
[ -n "$MODEL" ] || { echo "slurm-test: shared/models/mnist_cnn.onnx not found above $ROOT" >&2; exit 1; }

T="$(mktemp -d /tmp/ratio-slurm.XXXXXX)"
chmod 700 "$T"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "slurm-test: kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT

# munge: a fresh key and a private socket.
mkdir -p "$T/munge"
chmod 700 "$T/munge"
dd if=/dev/urandom of="$T/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$T/munge/munge.key"
munged --foreground --force --socket="$T/munge/munge.socket" --key-file="$T/munge/munge.key" \
  --pid-file="$T/munge/munged.pid" --log-file="$T/munge/munged.log" --seed-file="$T/munge/munged.seed" \
  >"$T/munge/console.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ -S "$T/munge/munge.socket" ] && break; sleep 0.1; done
[ -S "$T/munge/munge.socket" ] || { cat "$T/munge/munged.log" >&2; echo "slurm-test: munged did not start" >&2; exit 1; }

HOST="$(hostname -s)"
CPUS="$(nproc)"
MEM=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
mkdir -p "$T/state" "$T/spool"
cat > "$T/slurm.conf" <<CONF
ClusterName=ratiotest
SlurmctldHost=$HOST
SlurmctldPort=26817
SlurmdPort=26818
SlurmUser=$(id -un)
AuthType=auth/munge
AuthInfo=socket=$T/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=ratio Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$T/slurm.conf"
slurmctld -D -i >"$T/slurmctld.console" 2>&1 &
PIDS+=($!)
slurmd -D -N "$HOST" >"$T/slurmd.console" 2>&1 &
PIDS+=($!)
up=0
for _ in $(seq 100); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then up=1; break; fi
  sleep 0.2
done
if [ $up != 1 ]; then
  echo "slurm-test: the node did not come up; logs:" >&2
  tail -20 "$T/slurmctld.log" "$T/slurmd.log" >&2 || true
  exit 1
fi
echo "slurm-test: single-node cluster up ($(sinfo -h -o '%P %D %T %c'))" >&2

RUN="$T/run"
"$RATIO" sweep --model "$MODEL" --data mnist --ratios 1:1,2:1 --policies last,first --seeds 2 \
  --steps convert,inspect,bench "--step-args=bench=--iters 20 --warmup 2" --run-dir "$RUN" \
  --emit slurm --tasks 3 "--sbatch=--time=00:10:00" >/dev/null
echo "slurm-test: submitting $RUN/sweep.sbatch" >&2
JOB=$(cd "$T" && timeout 600 sbatch --parsable --wait "$RUN/sweep.sbatch") || {
  echo "slurm-test: the array job failed; task logs:" >&2
  tail -n 20 "$RUN"/slurm/*.out >&2 || true
  exit 1
}
JOB=${JOB%%;*}
echo "slurm-test: array job $JOB finished" >&2

"$RATIO" report "$RUN" >&2
python3 - "$RUN" "$JOB" <<'PY'
import json, sys, glob, os
run, job = sys.argv[1], sys.argv[2]
s = json.load(open(os.path.join(run, "summary.json")))["body"]
assert (s["steps_ok"], s["steps_failed"], s["steps_missing"]) == (18, 0, 0), s
tasks = set()
for f in glob.glob(os.path.join(run, "variants", "*", "*.json")):
    p = json.load(open(f))["provenance"].get("extra", {})
    assert p.get("slurm_job_id") and p.get("slurm_array_task_id") is not None, (f, p)
    tasks.add(p["slurm_array_task_id"])
assert tasks == {"0", "1", "2"}, tasks
assert all(c["metrics"]["latency_p50_ms/b1/t1"]["n"] == 2 for c in s["cells"]), s["cells"]
assert {(l["ratio"], l["policy"]) for l in s["latency_ratios"]} == {("1:1", "none"), ("2:1", "last"), ("2:1", "first")}, s["latency_ratios"]
print(f"slurm-test: OK — {s['steps_ok']} step records from array tasks {sorted(tasks)} of job {job} merged by `ratio report`")
PY
ls "$RUN/report/index.html" >/dev/null
