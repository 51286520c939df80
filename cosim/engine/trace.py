"""What one forward pass computed, conversion group by conversion group
(:meth:`cosim.engine.core.Engine.trace`).

The trace is recorded by the very path :meth:`~cosim.engine.core.Engine.forward` runs (the
folded products, the exact solve near the rails, the sense skips, the ADC instances), not
by a second evaluation: ``--verify-spice`` compares ngspice with these codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class GroupTrace:
    """One conversion group of a hidden layer: a column tile's outputs converted once, for
    one row tile (digital partial sums) or every row tile joined (``row_tile`` −1)."""

    col_tile: int
    row_tile: int  # −1: every row tile of the column tile together
    r_t_ohm: float  # the transimpedance the group converts at (ohm)
    bits: int  # the ADCs' resolution
    offset_binary: bool  # a partial sum or a signed operand, sampled against V_ref/2
    v_out: np.ndarray  # (n, outputs) float32: the voltages the ADCs sampled (V)
    i_sense: np.ndarray | None  # (n,) the sense-line current (A); None: not read
    skip: np.ndarray | None  # (n,) MSB cycles each conversion skipped; None: no skips
    codes: np.ndarray  # (n, outputs) the ADC codes


@dataclass(frozen=True)
class LayerTrace:
    """A hidden layer of one forward pass (``n`` MAC vectors: samples × output positions)."""

    index: int  # the layer's index in the model
    inputs: np.ndarray  # (n, fan_in) the unrolled input codes, as the DACs apply them
    groups: tuple[GroupTrace, ...]  # every conversion group, in the order they ran
    outputs: np.ndarray  # (n, n_out) the layer's output codes (before reshaping)

    def group(self, col_tile: int, row_tile: int = -1) -> GroupTrace:
        """The conversion group of ``col_tile`` and ``row_tile`` (−1: joined row tiles)."""
        for g in self.groups:
            if g.col_tile == col_tile and g.row_tile == row_tile:
                return g
        raise KeyError(f"layer {self.index} has no conversion group ({row_tile}, {col_tile})")


@dataclass(frozen=True)
class Trace:
    """A forward pass on one chip: the logits and the hidden layers it recorded."""

    logits: np.ndarray  # (samples, classes) float64
    layers: dict[int, LayerTrace]  # by layer index


@dataclass
class TraceRecorder:
    """Collects a :class:`Trace` while the engine runs (``layers``: which to keep)."""

    layers: frozenset[int] | None = None
    done: dict[int, LayerTrace] = field(default_factory=dict)
    _inputs: dict[int, np.ndarray] = field(default_factory=dict)
    _groups: dict[int, list[GroupTrace]] = field(default_factory=dict)

    def wants(self, layer: int) -> bool:
        return self.layers is None or layer in self.layers

    def inputs(self, layer: int, codes: np.ndarray) -> None:
        if self.wants(layer):
            self._inputs[layer] = np.array(codes)
            self._groups[layer] = []

    def group(self, layer: int, g: GroupTrace) -> None:
        if self.wants(layer):
            self._groups[layer].append(g)

    def outputs(self, layer: int, codes: np.ndarray) -> None:
        if self.wants(layer):
            self.done[layer] = LayerTrace(
                layer, self._inputs.pop(layer), tuple(self._groups.pop(layer)), np.array(codes)
            )
