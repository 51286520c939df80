#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run cosim's main job on the embedded default (no download):
#   1. characterize the default card's circuits in ngspice (quick sweeps) -> surrogate library
#   2. train the digits MLP with global W4A3 quantization
#   3. evaluate it in ideal mode (bit-exact check) and with every non-ideality on 3 chips,
#      re-checking 40 random MAC operations against ngspice, every output of each (about
#      1200 ADC codes: enough for the identical rate's 95 % interval to mean something)
#   4. print one summary. Everything lands in ./cosim-run/ (or $COSIM_RUN_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh plots
out="${COSIM_RUN_DIR:-cosim-run}"
mkdir -p "$out"
jobs="$(python3 -c 'import os; print(max(1, min(8, os.cpu_count() or 1)))')"
cosim=.venv/bin/cosim
$cosim characterize --quick --jobs "$jobs" --out "$out/library" --json "$out/characterize.json"
$cosim train --dataset digits --model mlp --scheme global --w-bits 4 --a-bits 3 \
  --out "$out/digits-mlp-w4a3.npz" --json "$out/train.json"
$cosim evaluate --model "$out/digits-mlp-w4a3.npz" --library "$out/library" --ideal \
  --json "$out/evaluate-ideal.json"
$cosim evaluate --model "$out/digits-mlp-w4a3.npz" --library "$out/library" --chips 3 \
  --verify-spice 40 --jobs "$jobs" --json "$out/evaluate.json"
.venv/bin/python -m cosim.summary "$out"
