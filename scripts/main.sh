#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run cosim's main job on the embedded default (no download):
# characterize the default card's circuits in ngspice (quick sweeps), train the digits MLP
# with global quantization, and summarize. Results land in ./cosim-run/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh plots
out="${COSIM_RUN_DIR:-cosim-run}"
mkdir -p "$out"
jobs="$(python3 -c 'import os; print(max(1, min(8, os.cpu_count() or 1)))')"
.venv/bin/cosim characterize --quick --jobs "$jobs" --out "$out/library" --json "$out/characterize.json"
.venv/bin/cosim train --dataset digits --model mlp --scheme global --w-bits 4 --a-bits 3 \
  --out "$out/digits-mlp-w4a3.npz" --json "$out/train.json"
echo "main: results in $out/"
