#!/usr/bin/env bash
# Regenerate toolkit/tests/goldens/: tiny torchvision-style nets exported by torch.onnx and their PyTorch
# autograd gradients. Makes a throwaway venv with torch from PyPI (a few GB, minutes); tests only read the
# committed files and never run torch.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${GOLDENS_VENV:-$(mktemp -d)/venv}"
out="$root/toolkit/tests/goldens"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet torch torchvision onnx onnxscript
fi
mkdir -p "$out"
"$venv/bin/python" "$here/gen.py" "$out"
echo "wrote $(ls "$out" | wc -l) files to $out"
