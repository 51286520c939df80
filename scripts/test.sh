#!/usr/bin/env bash
# Set up (scripts/setup.sh), check lint, formatting, import layers and types, and run the
# whole test suite, SPICE tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
export COSIM_PROGRESS=0
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports
.venv/bin/mypy
exec .venv/bin/python -m pytest -q "$@"
