"""The op-amp offsets see the devices at their operating point (issue 14, item 4).

A TIA input held at its offset ``v_os`` moves every device of its column from ``V_i`` to
``V_i + v_os``: a sinh device biased at the row voltage conducts ``g·s'(V_i)·v_os`` more,
not the zero-bias ``g·s'(0)·v_os`` of the TIA model's Norton conductance (4.5 % more at
0.2 V on the default card). The engine carries the excess through its two drive terms
(:meth:`cosim.surrogates.crossbar.CrossbarModel.bias_slope_fit`); here its column currents
are checked against the exact nonlinear solve of the same programmed tile with every TIA
node at its drawn offset (:meth:`cosim.nodal.CrossbarNetwork.solve`, Newton), wires off so
that only the offsets' operating point is left to disagree.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cosim.engine.config import EngineConfig
from cosim.engine.core import Engine
from cosim.library import load_library
from cosim.nodal import CrossbarNetwork

from .engine_models import trained


@pytest.fixture(scope="module")
def library(committed_library):
    return load_library(committed_library.path)


class _ZeroExcess:
    """A crossbar surrogate whose operating-point excess is switched off."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def bias_slope_fit(self, v):
        return 0.0, 0.0


def test_bias_slope_fit_is_the_excess_within_its_stated_residual(library):
    """The fitted ``c_s·s(V) + c_q·q(V)`` is ``s'(V) − s'(0)`` within 5 % of its largest
    value over the DAC's 8-bit voltages, and exactly 0 for ohmic devices."""
    xb = library.block("crossbar")
    v = np.arange(256) * xb.v_read_v / 255
    c_s, c_q = xb.bias_slope_fit(v)
    slope = xb.v_read_v * xb.iv_alpha_per_v / np.sinh(xb.iv_alpha_per_v * xb.v_read_v)
    excess = slope * (np.cosh(xb.iv_alpha_per_v * v) - 1.0)
    fit = c_s * xb.drive(v) + c_q * xb.quad_drive(v)
    assert excess.max() > 0.03  # the card's sinh: a few percent at full scale
    assert np.max(np.abs(fit - excess)) <= 0.05 * excess.max()
    assert replace(xb, iv_alpha_per_v=0.0).bias_slope_fit(v) == (0.0, 0.0)


@pytest.mark.parametrize("bias_slope", [True, False])
def test_engine_currents_against_the_exact_solve_with_offsets(library, bias_slope):
    """The engine's column currents at the TIA inputs, with the zero-bias Norton term added
    as the TIA model adds it, against Newton on the tile with its nodes at the offsets:
    with the operating-point excess the error falls below 10 % of the excess itself; the
    zero-bias model misses the whole excess."""
    eng = Engine(
        trained("digits-global"),
        library,
        EngineConfig(
            programming_noise=False, read_noise=False, stuck_faults=False, ir_drop=False, seed=3
        ),
    )
    if not bias_slope:
        eng.crossbar = _ZeroExcess(eng.crossbar)
    chip = eng.chip(0)
    st = chip[0]
    lm = st.lmap
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 1 << lm.periphery.in_bits, size=(30, lm.fan_in))
    ts = st.tiles[0]
    t = ts.tile
    cur = eng.column_currents(lm, [ts], codes)  # (30, lines), bias rows and reference in
    # the exact solve: every row of the tile at its DAC voltage (bias rows at ±v_read)
    v_rows = np.zeros((codes.shape[0], ts.g.shape[0]))
    v_rows[:, t.data_rows] = codes[:, t.f0 : t.f1] * lm.periphery.v_in_lsb
    v_rows[:, t.bias_rows] = t.bias_polarity * eng.card.dac.v_read_v
    xb = library.block("crossbar")
    device = eng.device
    net = CrossbarNetwork(ts.g, 0.0, 0.0, 0.0, sense_first=eng.card.sense_row.enabled)
    exact = net.solve(v_rows, device, v_tia=ts.tia_offset_v)
    # the zero-bias Norton part the TIA model adds, and the reference line's mirror
    model = cur + ts.g_norton * ts.tia_offset_v
    exact_tia = exact.copy()
    if ts.ref_g is not None:
        uni = [p for _, p, q in t.outputs if q is None]
        ref = (xb.drive(np.abs(v_rows)) * np.sign(v_rows)) @ ts.ref_g
        exact_tia[:, uni] -= ref[:, None]
    # the excess the offsets add through the devices' operating point
    slope = xb.v_read_v * xb.iv_alpha_per_v / np.sinh(xb.iv_alpha_per_v * xb.v_read_v)
    excess = (slope * (np.cosh(xb.iv_alpha_per_v * v_rows) - 1.0)) @ (ts.g * ts.tia_offset_v)
    err = np.abs(model - exact_tia)
    scale = np.max(np.abs(excess))
    assert scale > 1e-10  # offsets of ~0.5 mV on 64 devices: a nanoampere or more
    if bias_slope:
        assert np.max(err) <= 0.1 * scale
    else:
        assert np.max(err) >= 0.8 * scale
