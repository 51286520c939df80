"""The arguments ``cosim train`` and ``cosim import`` share, defined once.

Each function adds its options where the caller stands, so both commands keep the order of
their ``--help``; the flags, validation and (where the commands agree) defaults and help live
here. Only argparse and :mod:`cosim.argcheck` are imported (no NumPy): ``configure`` stays light.
"""

from __future__ import annotations

import argparse

from cosim import argcheck as ac


def add_bit_widths(parser: argparse.ArgumentParser) -> None:
    """``--w-bits``, ``--a-bits``, ``--in-bits`` and ``--b-bits``: the grids' bit widths."""
    bits = ac.integer(1, 8)
    parser.add_argument("--w-bits", type=bits, default=4, help="weight bits 1..8 (default 4)")
    parser.add_argument("--a-bits", type=bits, default=3, help="activation bits 1..8 (default 3)")
    parser.add_argument("--in-bits", type=bits, default=8, help="input DAC bits 1..8 (default 8)")
    parser.add_argument(
        "--b-bits",
        type=ac.integer(2, 16),
        default=None,
        help="bias bits 2..16, sign included (default w-bits + 2)",
    )


def add_unipolar_fraction(parser: argparse.ArgumentParser, filters: str) -> None:
    """``--unipolar-fraction`` (0..1, default 0) of ``filters`` (``"the hidden filters"``)."""
    parser.add_argument(
        "--unipolar-fraction",
        type=ac.fraction,
        default=0.0,
        help=f"fraction of {filters} made unipolar, 0..1 (default 0)",
    )


def add_lr(parser: argparse.ArgumentParser, default: float | None, help_text: str) -> None:
    """``--lr``: the peak learning rate, in (0, 10]; the commands differ in default and help."""
    parser.add_argument(
        "--lr", type=ac.real(0.0, 10.0, lo_open=True), default=default, help=help_text
    )


def add_seed(parser: argparse.ArgumentParser) -> None:
    """``--seed``: the random seed, 0..2^32-1 (default 0)."""
    parser.add_argument(
        "--seed", type=ac.seed, default=0, help="random seed, 0..2^32-1 (default 0)"
    )
