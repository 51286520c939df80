#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite, SPICE tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
export COSIM_PROGRESS=0
exec .venv/bin/python -m pytest -q "$@"
