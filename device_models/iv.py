"""The device I–V curve: the one place its formula is written.

A programmed conductance ``g`` is the chord conductance at the read voltage ``v_read``; with
nonlinearity ``a`` (1/V)::

    I(V)     = g * v_read * sinh(a V) / sinh(a v_read)       (a > 0)
    I(V)     = g * V                                         (a = 0, ohmic)
    dI/dV(V) = g * a v_read * cosh(a V) / sinh(a v_read)     (a > 0; g when a = 0)

:class:`device_models.DeviceModel` (and through it the nodal solver, :mod:`cosim.nodal`) and
the fitted crossbar surrogate (:mod:`cosim.surrogates.crossbar`, which holds ``a`` and
``v_read`` but no device) both evaluate the curve here, so they cannot drift apart. The
netlist's B-source (:meth:`DeviceModel.spice_element`) writes the same curve as SPICE text.

Examples
--------
>>> round(float(sinh_current(1e-5, 0.2, 0.2, 3.0)) / (1e-5 * 0.2), 12)  # I(v_read) = g v_read
1.0
>>> float(sinh_slope(1.0, 0.0, 0.2, 0.0))  # ohmic: the slope is g
1.0
"""

from __future__ import annotations

import math

import numpy as np


def sinh_current(
    g_s: np.ndarray | float, v: np.ndarray | float, v_read_v: float, iv_alpha_per_v: float
) -> np.ndarray:
    """Device current (A) of conductance ``g_s`` (S) at voltage ``v`` (V), broadcast.

    ``v_read_v`` is the voltage where ``g_s`` is the chord conductance (V), ``iv_alpha_per_v``
    the sinh nonlinearity (1/V; 0 is ohmic). ``g_s = 1`` gives the curve's shape ``I/g`` (V).
    """
    g = np.asarray(g_s, dtype=float)
    v = np.asarray(v, dtype=float)
    a = iv_alpha_per_v
    if a == 0.0:
        return g * v
    return g * (v_read_v / math.sinh(a * v_read_v)) * np.sinh(a * v)


def sinh_slope(
    g_s: np.ndarray | float, v: np.ndarray | float, v_read_v: float, iv_alpha_per_v: float
) -> np.ndarray:
    """Small-signal conductance ``dI/dV`` (S) of :func:`sinh_current` at voltage ``v`` (V).

    At ``v = 0`` and ``g_s = 1`` it is ``a v_read / sinh(a v_read)``: the zero-bias slope over
    the chord conductance (dimensionless, 1 for ohmic devices).
    """
    g = np.asarray(g_s, dtype=float)
    v = np.asarray(v, dtype=float)
    a = iv_alpha_per_v
    if a == 0.0:
        return g * np.ones_like(v)
    return g * (a * v_read_v / math.sinh(a * v_read_v)) * np.cosh(a * v)
