"""Helpers shared by the netlist generators: number formatting, sweep tables, PWL sources,
hashing.

Numbers are written with 12 significant digits: ngspice stops a transient early (with only a
warning) when PWL times are printed too coarsely, and netlist text must be a pure function of
its inputs so that its hash keys caches and provenance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

# Tolerances for small testbenches whose outputs are compared with surrogates at the
# 0.01-LSB level: ngspice's default reltol=1e-3 stops Newton up to 0.5 mV from the solution.
TIGHT_OPTIONS = ".options reltol=1e-7 abstol=1e-15 vntol=1e-10"

INDEX_NODE = "idx"
INDEX_SOURCE = "Vidx"


def num(x: float) -> str:
    """Format a float for netlist text with full precision (``1.5e-06``).

    Examples
    --------
    >>> num(0.1 + 0.2)
    '0.3'
    >>> num(2.5e-6)
    '2.5e-06'
    """
    return f"{float(x):.12g}"


def pwl_of_index(values: Sequence[float] | np.ndarray, node: str = INDEX_NODE) -> str:
    """``pwl(v(idx), 0, v0, 1, v1, ...)``: a value per sweep index for B-sources.

    A single value is repeated so the table always has two points.
    """
    vals = np.asarray(values, dtype=float).reshape(-1)
    if vals.size == 0:
        raise ValueError("a sweep table needs at least one value")
    if vals.size == 1:
        vals = np.repeat(vals, 2)
    pts = ", ".join(f"{k}, {num(v)}" for k, v in enumerate(vals))
    return f"pwl(v({node}), {pts})"


def index_sweep(n: int) -> tuple[str, str]:
    """(source line, analysis line) of a DC sweep of the index node over ``n`` points.

    A sweep always has at least two points (the second repeats the first when ``n == 1``);
    callers keep the first ``n`` samples.
    """
    if n < 1:
        raise ValueError("a sweep needs at least one point")
    stop = max(n - 1, 1)
    return f"{INDEX_SOURCE} {INDEX_NODE} 0 0", f".dc {INDEX_SOURCE} 0 {stop} 1"


def pwl_steps(times: np.ndarray, values: np.ndarray, edge_s: float, v_start: float) -> str:
    """Transient ``PWL(...)`` text holding ``v_start`` from 0 and ``values[f]`` from
    ``times[f]`` on, each change a ramp of ``edge_s``; a repeated value adds no point.

    Times and values are printed with full precision (:func:`num`): ngspice stops a
    transient early when PWL times are rounded.

    Examples
    --------
    >>> pwl_steps(np.array([1e-6, 2e-6, 3e-6]), np.array([0.5, 0.5, 0.25]), 1e-9, 0.0)
    'PWL(0 0 1e-06 0 1.001e-06 0.5 3e-06 0.5 3.001e-06 0.25)'
    """
    pts = [f"0 {num(v_start)}"]
    prev = v_start
    for tc, v in zip(times, values, strict=True):
        if v == prev:
            continue
        pts.append(f"{num(tc)} {num(prev)} {num(tc + edge_s)} {num(v)}")
        prev = v
    return "PWL(" + " ".join(pts) + ")"


def netlist_hash(text: str) -> str:
    """SHA-256 of netlist text: the key of caches and of provenance records."""
    return hashlib.sha256(text.encode()).hexdigest()


def branch(source: str) -> str:
    """The ngspice vector name of the current through voltage source ``source``."""
    return f"{source.lower()}#branch"
