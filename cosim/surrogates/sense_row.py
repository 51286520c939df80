"""Sense-row surrogate: the output bound from the sparsity-sensing line and its thresholds.

The sense line has a device of conductance ``g_s`` on every row and its own TIA (``R_s``),
so ``V_sense ≈ R_s·g_s·Σ s(V_i)``. No column can carry more than ``g_max·Σ s(V_i)``, hence
every output obeys ``V_out ≤ β·V_sense + γ`` with ``β = R_f·g_max/(R_s·g_s)``; SPICE runs on
worst-case arrays set ``β`` and the offset allowance ``γ``. The ADC may skip its top ``k``
cycles when the bound proves ``code < 2**(N−k)``, i.e. when ``V_sense < V_th,k``::

    V_th,k = (T(2**(N−k)) − m_lsb·LSB − γ) / β · (1 − margin_rel)

with ``T(c)`` the ADC's transition voltage to code ``c`` and ``m_lsb`` a one-LSB allowance
for the ADC's INL at that transition. ``γ`` holds what SPICE showed for the nominal op-amp
offsets; the *random* offsets of a chip instance (σ per op-amp) are covered by
:func:`offset_budget_v`, which depends on the tile's column conductances (an op-amp offset
reaches the output multiplied by the noise gain ``1 + R_f·G_N``) and is subtracted from
every threshold of that tile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cosim.surrogates.base import as_float_array, require_keys
from cosim.surrogates.periphery import TiaModel


@dataclass(frozen=True)
class SenseRowModel:
    """Fitted sense row: sense TIA, bound ``(β, γ)`` and thresholds ``V_th,k`` (V).

    ``thresholds_v[k-1]`` is ``V_th,k`` for skipping ``k`` MSB cycles (non-increasing in
    ``k``; 0 means that many cycles can never be skipped).
    """

    g_sense_s: float
    tia: TiaModel
    beta: float
    gamma_v: float
    thresholds_v: np.ndarray
    adc_bits: int

    kind = "sense_row"

    def bound(self, v_sense: np.ndarray) -> np.ndarray:
        """Upper bound (V) on any output voltage of the tile given ``V_sense`` (V)."""
        return self.beta * np.asarray(v_sense, dtype=float) + self.gamma_v

    def skip_bits(self, v_sense: np.ndarray) -> np.ndarray:
        """MSB cycles each conversion may skip: the largest ``k`` with ``V_sense < V_th,k``."""
        return skips(v_sense, self.thresholds_v)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "g_sense_s": self.g_sense_s,
            "tia": self.tia.to_dict(),
            "beta": self.beta,
            "gamma_v": self.gamma_v,
            "thresholds_v": np.asarray(self.thresholds_v, dtype=float),
            "adc_bits": self.adc_bits,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SenseRowModel:
        keys = ("g_sense_s", "tia", "beta", "gamma_v", "thresholds_v", "adc_bits")
        require_keys(d, keys, "the sense-row surrogate")
        th = as_float_array(d["thresholds_v"], "sense_row.thresholds_v").reshape(-1)
        if np.any(np.diff(th) > 0):
            from cosim.errors import LibraryError

            raise LibraryError("sense_row.thresholds_v must be non-increasing in k")
        return cls(
            g_sense_s=float(as_float_array(d["g_sense_s"], "sense_row.g_sense_s")),
            tia=TiaModel.from_dict(d["tia"]),
            beta=float(as_float_array(d["beta"], "sense_row.beta")),
            gamma_v=float(as_float_array(d["gamma_v"], "sense_row.gamma_v")),
            thresholds_v=th,
            adc_bits=int(d["adc_bits"]),
        )


def skips(v_sense: np.ndarray, thresholds_v: np.ndarray) -> np.ndarray:
    """MSB cycles to skip: the number of thresholds ``V_th,k`` above ``V_sense``.

    A threshold of 0 means "never skip that many": with op-amp offsets ``V_sense`` can be
    slightly negative, and must not then count as below it.
    """
    th = np.asarray(thresholds_v, dtype=float).reshape(-1)
    v = np.asarray(v_sense, dtype=float)
    out = np.zeros(v.shape, dtype=np.int64)
    for t in th[th > 0]:  # one pass per threshold (at most bits - 1 of them)
        out += v < t
    return out


def offset_budget_v(
    sigma_os_v: float,
    r_t_ohm: float,
    sub_gain: float,
    g_norton_s: np.ndarray,
    layout: list[tuple[int, int | None]],
    r_sense_ohm: float,
    g_norton_sense_s: float,
    beta: float,
    n_sigma: float = 4.0,
) -> float:
    """Allowance (V, at the ADC input) for random op-amp offsets between an output and the
    sense-line bound: ``n_sigma`` standard deviations of their worst-case difference.

    A pair output carries ``gain·σ·sqrt((1 + R_f·G_p)² + (1 + R_f·G_n)²)`` from its two TIAs
    (``R_f = R_t/gain``) and ``(1 + gain)·σ`` from its subtractor; a unipolar output
    ``σ·(1 + R_t·G)``; the sense line ``β·σ·(1 + R_s·G_s)``.
    """
    g = np.asarray(g_norton_s, dtype=float)
    r_f = r_t_ohm / sub_gain
    worst = 0.0
    for p, q in layout:
        if q is None:
            var = (1 + r_t_ohm * g[p]) ** 2
        else:
            var = sub_gain**2 * ((1 + r_f * g[p]) ** 2 + (1 + r_f * g[q]) ** 2)
            var += (1 + sub_gain) ** 2
        worst = max(worst, var)
    var_sense = (beta * (1 + r_sense_ohm * g_norton_sense_s)) ** 2
    return float(n_sigma * sigma_os_v * np.sqrt(worst + var_sense))


def thresholds(
    beta: float,
    gamma_v: float,
    adc_transitions_v: np.ndarray,
    adc_bits: int,
    k_max: int,
    lsb_v: float,
    margin_rel: float,
    lsb_margin: float = 1.0,
) -> np.ndarray:
    """``V_th,k`` for ``k = 1..k_max`` (V); see the module docstring.

    ``adc_transitions_v[c-1]`` is the input voltage at which the ADC's code reaches ``c``.
    """
    out = np.zeros(k_max)
    for k in range(1, k_max + 1):
        code = 2 ** (adc_bits - k)
        t = float(adc_transitions_v[code - 1])
        out[k - 1] = max((t - lsb_margin * lsb_v - gamma_v) / beta * (1.0 - margin_rel), 0.0)
    return np.minimum.accumulate(out)
