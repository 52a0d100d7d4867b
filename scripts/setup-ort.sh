#!/usr/bin/env bash
# Fetch the ONNX Runtime 1.31.1 CPU shared library from its PyPI wheel into .ort/lib (idempotent).
# ort's CDN download cannot work here; PyPI can. The wheel is pinned by sha256.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/.ort/lib"
lib="$dest/libonnxruntime.so.1.31.1"
wheel_name="onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl"
wheel_sha="5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f"

if [ -s "$lib" ]; then
  exit 0
fi
command -v python3 >/dev/null || { echo "setup-ort: python3 (with pip) is needed to fetch the ONNX Runtime wheel" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "setup-ort: fetching $wheel_name from PyPI" >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
  --platform manylinux_2_28_x86_64 -d "$tmp" onnxruntime==1.31.1 >&2
got="$(sha256sum "$tmp/$wheel_name" | cut -d' ' -f1)"
if [ "$got" != "$wheel_sha" ]; then
  echo "setup-ort: sha256 mismatch for $wheel_name: expected $wheel_sha, got $got" >&2
  exit 1
fi
python3 - "$tmp/$wheel_name" "$tmp/x" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extract("onnxruntime/capi/libonnxruntime.so.1.31.1", sys.argv[2])
PY
mkdir -p "$dest"
cp "$tmp/x/onnxruntime/capi/libonnxruntime.so.1.31.1" "$lib.tmp"
mv "$lib.tmp" "$lib"
ln -sf libonnxruntime.so.1.31.1 "$dest/libonnxruntime.so"
echo "setup-ort: installed $lib" >&2
