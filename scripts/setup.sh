#!/usr/bin/env bash
# Install everything cosim needs on a Debian machine (idempotent):
#   system: ngspice + libngspice0-dev (PySpice loads libngspice.so), python3-venv,
#           dataset-fashion-mnist (Fashion-MNIST IDX files, used by tests and benchmarks)
#   python: a virtual environment in .venv with cosim and its pinned lower bounds.
# Usage: scripts/setup.sh [EXTRA]   (EXTRA = pip extra to install: dev (default: every tool,
#        onnx included), plots, notebooks, onnx)
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-dev}"

SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "setup: not root and no sudo; install ngspice libngspice0-dev python3-venv yourself" >&2
  fi
fi
pkgs=(ngspice libngspice0-dev dataset-fashion-mnist)
if ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then pkgs+=(python3-venv); fi
if [ -n "$SUDO" ] || [ "$(id -u)" = "0" ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[${extra}]"
echo "setup: ready (.venv, extra '${extra}')"
