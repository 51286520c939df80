"""Crossbar surrogate: column currents under IR drop and device nonlinearity.

The model is a correction of the ideal ``I = s(V) @ G`` (``s`` the device I–V shape, so
``s(V) @ G`` is what an array without wire resistance would give)::

    I = s(V) @ M_eff,      M_eff = M(κ·G) − κ·G + G

``M(κ·G)`` is the exact linear transfer matrix of the tile's resistive network (wires,
drivers) with devices replaced by conductances ``κ·G`` (computed by block elimination in
:class:`cosim.nodal.CrossbarNetwork`, ~50 ms for 64×64). For ohmic devices with ``κ = 1``
this is exact; for sinh devices feeding the IR-drop network with the nonlinear drive
``s(V)`` and a small-signal factor ``κ`` captures the interaction to first order.
``M_eff`` depends only on the programmed conductances, so the engine computes it once per
tile and chip instance and every MAC is one matrix product.

Fitted parameters (least squares against SPICE, :class:`CrossbarFitter`): ``κ`` and scale
factors on the wordline, bitline and driver resistances (1.0 when the netlist and the model
agree; they absorb anything the netlist adds, such as contact resistance). The fitted model
is validated on held-out arrays, sizes and inputs that were never used for fitting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cosim.nodal import CrossbarNetwork
from cosim.surrogates.base import as_float_array, check_fitted, require_keys


@dataclass(frozen=True)
class CrossbarModel:
    """Fitted crossbar surrogate (see module docstring).

    Parameters
    ----------
    r_wire_wl_ohm, r_wire_bl_ohm, r_driver_ohm
        Effective resistances (ohm): card values times the fitted scales.
    kappa
        Small-signal factor of the devices inside the IR-drop network.
    iv_alpha_per_v, v_read_v
        The device I–V shape ``s(V) = v_read·sinh(a V)/sinh(a v_read)`` (ohmic if a = 0).
    scales
        The fitted scale factors (wl, bl, driver), for the record.
    """

    r_wire_wl_ohm: float
    r_wire_bl_ohm: float
    r_driver_ohm: float
    kappa: float = 1.0
    iv_alpha_per_v: float = 0.0
    v_read_v: float = 0.2
    scales: tuple[float, float, float] = (1.0, 1.0, 1.0)

    kind = "crossbar"

    def drive(self, v: np.ndarray) -> np.ndarray:
        """Nonlinear effective drive ``s(V)`` (V) of input magnitudes ``v`` (V)."""
        v = np.asarray(v, dtype=float)
        a = self.iv_alpha_per_v
        if a == 0.0:
            return v
        return (self.v_read_v / math.sinh(a * self.v_read_v)) * np.sinh(a * v)

    def network(self, g: np.ndarray, sense_first: bool) -> CrossbarNetwork:
        return CrossbarNetwork(
            g, self.r_wire_wl_ohm, self.r_wire_bl_ohm, self.r_driver_ohm, sense_first
        )

    def transfer(self, g: np.ndarray, sense_first: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(M_eff, g_norton)`` of a tile with conductances ``g`` (rows, n_lines) (S).

        ``I = drive(V) @ M_eff``; ``g_norton`` (S) per column for the TIA composition.
        """
        g = np.asarray(g, dtype=float)
        m, g_n = self.network(g, sense_first).transfer(self.kappa * g)
        return m - self.kappa * g + g, g_n

    def transfer_full(
        self, g: np.ndarray, sense_first: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(M_eff, Y)``: :meth:`transfer` with the full admittance matrix between the TIA
        nodes (S): TIA inputs at ``v`` instead of 0 change the column currents by ``Y @ v``
        (its diagonal is the Norton conductance)."""
        g = np.asarray(g, dtype=float)
        m, y = self.network(g, sense_first).transfer_full(self.kappa * g)
        return m - self.kappa * g + g, y

    def column_currents(
        self, g: np.ndarray, v: np.ndarray, sense_first: bool = False
    ) -> np.ndarray:
        """Column currents (A) for inputs ``v`` (..., rows) (V): ``drive(v) @ M_eff``."""
        m, _ = self.transfer(g, sense_first)
        return self.drive(v) @ m

    def ideal_currents(self, g: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Currents without any wire resistance (A): ``drive(v) @ g``."""
        return self.drive(v) @ np.asarray(g, dtype=float)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "r_wire_wl_ohm": self.r_wire_wl_ohm,
            "r_wire_bl_ohm": self.r_wire_bl_ohm,
            "r_driver_ohm": self.r_driver_ohm,
            "kappa": self.kappa,
            "iv_alpha_per_v": self.iv_alpha_per_v,
            "v_read_v": self.v_read_v,
            "scales": list(self.scales),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CrossbarModel:
        keys = (
            "r_wire_wl_ohm",
            "r_wire_bl_ohm",
            "r_driver_ohm",
            "kappa",
            "iv_alpha_per_v",
            "v_read_v",
            "scales",
        )
        require_keys(d, keys, "the crossbar surrogate")
        vals = {k: float(as_float_array(d[k], f"crossbar.{k}")) for k in keys[:-1]}
        scales = tuple(float(x) for x in as_float_array(d["scales"], "crossbar.scales"))
        return cls(**vals, scales=scales)  # type: ignore[arg-type]


@dataclass
class CrossbarCase:
    """One SPICE-simulated array: conductances (rows, n_lines), inputs (n, rows), currents."""

    g: np.ndarray
    v: np.ndarray
    i_spice: np.ndarray
    sense_first: bool
    label: str = ""


class CrossbarFitter:
    """Fit κ and the resistance scales of :class:`CrossbarModel` to SPICE cases.

    Parameters
    ----------
    r_wire_wl_ohm, r_wire_bl_ohm, r_driver_ohm
        Card (nominal) resistances (ohm).
    iv_alpha_per_v, v_read_v
        Device I–V shape (from the device model).
    fit_scales
        Also fit the three resistance scales (otherwise only κ).
    """

    def __init__(
        self,
        r_wire_wl_ohm: float,
        r_wire_bl_ohm: float,
        r_driver_ohm: float,
        iv_alpha_per_v: float,
        v_read_v: float,
        fit_scales: bool = True,
    ) -> None:
        self.r = (r_wire_wl_ohm, r_wire_bl_ohm, r_driver_ohm)
        self.iv_alpha_per_v = iv_alpha_per_v
        self.v_read_v = v_read_v
        self.fit_scales = fit_scales

    def _model(self, theta: np.ndarray) -> CrossbarModel:
        kappa = float(theta[0])
        sc = tuple(float(x) for x in theta[1:]) if self.fit_scales else (1.0, 1.0, 1.0)
        return CrossbarModel(
            self.r[0] * sc[0],
            self.r[1] * sc[1],
            self.r[2] * sc[2],
            kappa,
            self.iv_alpha_per_v,
            self.v_read_v,
            sc,
        )

    def fit(self, cases: list[CrossbarCase], i_scale_a: float = 1e-7) -> CrossbarFitter:
        """Least-squares fit on ``cases`` (errors weighted by ``1/i_scale_a``); returns self."""
        from scipy.optimize import least_squares

        if not cases:
            raise ValueError("CrossbarFitter.fit needs at least one case")

        def resid(theta):
            m = self._model(theta)
            out = [
                (m.column_currents(c.g, c.v, c.sense_first) - c.i_spice).ravel() / i_scale_a
                for c in cases
            ]
            return np.concatenate(out)

        x0 = np.array([1.0, 1.0, 1.0, 1.0]) if self.fit_scales else np.array([1.0])
        lo = [0.8] + ([0.5] * 3 if self.fit_scales else [])
        hi = [1.2] + ([2.0] * 3 if self.fit_scales else [])
        sol = least_squares(resid, x0, bounds=(lo, hi), x_scale=0.05, diff_step=1e-4)
        self.theta_ = sol.x
        self.model_ = self._model(sol.x)
        self.rms_fit_ = float(np.sqrt(np.mean(sol.fun**2))) * i_scale_a
        self.n_cases_ = len(cases)
        return self

    @property
    def model(self) -> CrossbarModel:
        check_fitted(self, "model_")
        return self.model_
