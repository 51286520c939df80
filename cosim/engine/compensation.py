"""Drift compensation: a calibration read after drift gives digital scales for the codes.

PCM conductances drift as ``G(t) = G0·(t/t0)^-nu`` (:mod:`device_models`): every column's
current, and so every converted code, shrinks by about ``(t/t0)^-nu_mean``; the spread of
``nu`` between devices adds a part that no scale can undo. As on real chips (IBM's global
drift compensation, Joshi et al., Nat. Commun. 11, 2473 (2020); aihwkit's
``GlobalDriftCompensation``), each layer of a chip is read once with a fixed set of known
input vectors right after programming (at ``t0``: the same chip without drift) and again at
evaluation time ``t``, through the same analog chain and conversions the inference uses
(:meth:`cosim.engine.core.Engine._analog_layer`, recorded as a trace). The ratio of the two
readings is the scale:

* ``global``: one scale per layer, ``Σ|r0| / Σ|rt|`` over every output and vector;
* ``column``: one per output column, the same ratio over that column's vectors (a column
  with fewer than :data:`MIN_VALID` usable readings takes the layer's scale).

Readings where any conversion sits at its lowest or highest code are left out: a clipped
code no longer scales with the current (the final conversion's lowest code is the ReLU).

**Where it applies** (:func:`apply_scale`): digitally, on the codes after conversion and
before they are re-quantized onto the output grid, since a scale before the ADC would need
an analog gain per column. With digital partial sums the scale multiplies the *summed*
signed partial-sum code (each row tile's code less half scale, added) before its rounding
to the output grid; with one conversion per column (a single row tile, or analog partial
sums) it multiplies the converted code before it is re-expressed on the output grid.
Integer-friendly: the code times the float64 scale (times the grid's power of two), then
``floor(· + 1/2)`` once, clipped to the grid; exact for codes far below 2**53, and a chip
would store the scale as a fixed-point multiplier.

**Calibration inputs**: :data:`N_CALIBRATION` vectors per layer from the chip's keyed
stream :attr:`~cosim.engine.streams.Effect.DRIFT_CAL_INPUTS` (each vector a random density
of nonzero inputs, each nonzero input a uniform code): varied densities put some readings
of nearly every column inside the converter's range, where a single all-full-scale vector
reads zero on every column whose weights sum negative. Their read noise is drawn from
:attr:`~cosim.engine.streams.Effect.DRIFT_CAL_READ` (index 0 at ``t0``, 1 at ``t``), so the
inference's own draws are unchanged. **Energy**: the calibration reads are not counted in
the evaluation's energy (once per chip, not per inference).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from cosim.engine.blocks import VectorRows
from cosim.engine.chip import LayerState
from cosim.engine.config import EngineConfig
from cosim.engine.energy import LayerStats
from cosim.engine.mapping import LayerMap
from cosim.engine.streams import ChipStreams, Effect
from cosim.engine.trace import TraceRecorder

#: calibration input vectors per layer
N_CALIBRATION = 1024
#: usable readings a column needs for a scale of its own (``column``)
MIN_VALID = 16
#: where a chip layer keeps its scales (:attr:`LayerState.derived`)
SCALE_KEY = ("drift_scale",)


def calibration_vectors(
    lm: LayerMap, rng: np.random.Generator, n: int = N_CALIBRATION
) -> np.ndarray:
    """``n`` known input vectors ``(n, fan_in)`` (int64 codes) for layer ``lm``: vector
    ``j`` has each input nonzero with probability ``d_j ~ U(0, 1)``, a nonzero input a
    uniform code in ``1 .. 2**in_bits - 1``."""
    fan_in = max(t.f1 for t in lm.tiles)
    full = 1 << lm.periphery.in_bits
    density = rng.random((n, 1))
    codes = rng.integers(1, full, size=(n, fan_in))
    return np.where(rng.random((n, fan_in)) < density, codes, 0).astype(np.int64)


def drift_scales(ref: np.ndarray, drifted: np.ndarray, valid: np.ndarray, mode: str) -> np.ndarray:
    """Per-output scales ``(n_out,)`` from calibration readings ``(n, n_out)`` at ``t0``
    (``ref``) and ``t`` (``drifted``); ``valid``: the readings to use.

    ``global``: ``Σ|ref| / Σ|drifted|`` over every valid reading, the same for every
    output; ``column``: the same ratio per output, the global one where an output has fewer
    than :data:`MIN_VALID` valid readings. 1 where nothing is valid.

    Examples
    --------
    >>> ref = np.array([[4.0, 6.0], [2.0, 3.0]])
    >>> valid = np.ones((2, 2), bool)
    >>> drift_scales(ref, ref / 2, valid, "global").tolist()
    [2.0, 2.0]
    """
    a = np.where(valid, np.abs(ref), 0.0).sum(axis=0)
    b = np.where(valid, np.abs(drifted), 0.0).sum(axis=0)
    glob = float(a.sum() / b.sum()) if b.sum() > 0 else 1.0
    out = np.full(ref.shape[1], glob)
    if mode == "column":
        ok = (valid.sum(axis=0) >= MIN_VALID) & (b > 0)
        out[ok] = a[ok] / b[ok]
    return out


def apply_scale(codes: np.ndarray, scale: np.ndarray, factor: float) -> np.ndarray:
    """``floor(codes·scale·factor + 1/2)`` (int64): the compensated codes, before the
    caller clips them to its grid. ``scale``: one per output (the last axis); ``factor``:
    the grid change the caller would apply anyway (a power of two, or the partial sums'
    ``psum_range·2**shift``), folded in so that there is one rounding."""
    return np.floor(codes.astype(np.float64) * (scale * factor) + 0.5).astype(np.int64)


class DriftCompensation:
    """The calibration read and its scales (a part of :class:`cosim.engine.core.Engine`)."""

    cfg: EngineConfig
    maps: list[LayerMap]

    if TYPE_CHECKING:  # defined by another part of the engine

        def _build_chip(self, k: int, cfg: EngineConfig) -> list[LayerState]: ...

        def _analog_layer(self, *args: Any, **kw: Any) -> np.ndarray: ...

    def compensates(self) -> bool:
        """Whether this evaluation compensates drift (a mode, drift, not ideal)."""
        cfg = self.cfg
        return cfg.drift_compensation != "none" and cfg.drift_t_s is not None and not cfg.ideal

    def calibrate(self, k: int, chip: list[LayerState]) -> None:
        """Read every layer of drifted chip ``k`` and of the same chip at ``t0`` with the
        calibration vectors; keep each layer's scales in its ``derived[SCALE_KEY]``."""
        streams = ChipStreams(self.cfg.seed, k)
        ref_chip = self._build_chip(k, self.cfg.with_(drift_t_s=None))
        for st, st0 in zip(chip, ref_chip, strict=True):
            lm = st.lmap
            x = calibration_vectors(lm, streams.rng(Effect.DRIFT_CAL_INPUTS, lm.index))
            r0, ok0 = self.calibration_read(st0, x, streams.rng(Effect.DRIFT_CAL_READ, lm.index))
            rt, okt = self.calibration_read(
                st, x, streams.rng(Effect.DRIFT_CAL_READ, lm.index, index=1)
            )
            st.derived[SCALE_KEY] = drift_scales(r0, rt, ok0 & okt, self.cfg.drift_compensation)

    def calibration_read(
        self, st: LayerState, x: np.ndarray, noise: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Readings ``(n, n_out)`` of chip layer ``st`` for MAC vectors ``x`` (float64, in
        the units the scale applies to: the summed signed partial-sum code, or the final
        conversion's code) and which of them no conversion clipped. The inference's own
        path, recorded group by group; no scale is applied and no energy kept."""
        lm = st.lmap
        rec = TraceRecorder()
        rec.inputs(lm.index, x)
        y = self._analog_layer(
            lm, st, x, lambda a: a, noise, LayerStats("calibration"), VectorRows(0, 1), rec
        )
        rec.outputs(lm.index, y)
        n = x.shape[0]
        value = np.zeros((n, lm.n_out))
        valid = np.ones((n, lm.n_out), dtype=bool)
        halves = np.zeros(lm.n_out)
        for g in rec.done[lm.index].groups:
            outs = next(t.outputs for t in lm.tiles if t.col_tile == g.col_tile)
            o = np.array([o for o, _, _ in outs])
            c = g.codes.astype(np.float64)
            value[:, o] += c
            valid[:, o] &= (c > 0) & (c < (1 << g.bits) - 1)
            if g.offset_binary:  # a partial sum or signed operand: the code less half
                halves[o] += 1 << (g.bits - 1)
        return value - halves, valid
