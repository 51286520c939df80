#!/usr/bin/env bash
# Regenerate the committed test library tests/data/library-quick: the quick characterization
# of the default card, seed 0 (about a minute on 2 cores). Run it when
# tests/test_committed_library.py says the library no longer matches the netlist generators
# or the default card, and commit the result. A fresh SPICE cache makes it simulate with the
# ngspice installed here rather than reuse results from elsewhere.
#   PYTHON=/path/to/python scripts/regen_test_library.sh    (default: .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
cache="$(mktemp -d)"
trap 'rm -rf "$cache"' EXIT
export COSIM_PROGRESS=0
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$python" -m cosim characterize \
  --quick --seed 0 --jobs 2 --cache-dir "$cache" --out tests/data/library-quick
