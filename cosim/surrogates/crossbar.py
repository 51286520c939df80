"""Crossbar surrogate: column currents under IR drop and device nonlinearity.

The model is a correction of the ideal ``I = s(V) @ G`` (``s`` the device I–V shape, so
``s(V) @ G`` is what an array without wire resistance would give)::

    I = s(V) @ G + w(V) @ C,      C = M(κ·G) − κ·G,      w(V) = s(V)·(a + b·(V/v_read)²)

``M(κ·G)`` is the exact linear transfer matrix of the tile's resistive network (wires,
drivers; the card's resistances) with devices replaced by conductances ``κ·G`` (computed by
block elimination in :class:`cosim.nodal.CrossbarNetwork`: ~2.5 ms for 64×64 with the sense
line alone, ~1.8 ms per tile when a layer's 52 such tiles are solved as one stack
(:meth:`transfer_parts_stack`); nested dissection for large tiles: ~0.02 s at 128, ~0.08 s
at 256, ~0.46 s at 512), so ``C`` is
the IR-drop correction of a linear array. A sinh device sees its own voltage drop through
its small-signal conductance, which grows with the voltage across it: the correction's
drive ``w(V)`` carries that dependence to second order. For ohmic devices (``κ = a = 1``,
``b = 0``) the model is exact. ``C`` depends only on the programmed conductances, so the
engine computes it once per tile and chip instance and every MAC is two matrix products
(one when ``b = 0``): ``s(V) @ (G + a·C) + s(V)·(V/v_read)² @ (b·C)``.

Fitted parameters (least squares against SPICE, :class:`CrossbarFitter`): ``κ``, ``a`` and
``b``. The wire and driver resistances stay the card's — fitting them too lets them absorb
the nonlinearity and generalize worse to other sizes. The fitted model is validated on
held-out arrays, sizes and inputs that were never used for fitting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cosim.nodal import CrossbarNetwork
from cosim.surrogates.base import as_float_array, check_fitted, require_keys
from device_models.iv import sinh_current, sinh_slope


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
        Scale factors applied to the card's resistances (wl, bl, driver), for the record.
    drive_a, drive_b
        The correction's drive ``w(V) = s(V)·(a + b·(V/v_read)²)``.
    """

    r_wire_wl_ohm: float
    r_wire_bl_ohm: float
    r_driver_ohm: float
    kappa: float = 1.0
    iv_alpha_per_v: float = 0.0
    v_read_v: float = 0.2
    scales: tuple[float, float, float] = (1.0, 1.0, 1.0)
    drive_a: float = 1.0
    drive_b: float = 0.0

    kind = "crossbar"

    def drive(self, v: np.ndarray) -> np.ndarray:
        """Nonlinear effective drive ``s(V)`` (V) of input magnitudes ``v`` (V): the device
        I–V shape of :func:`device_models.iv.sinh_current`."""
        return sinh_current(1.0, v, self.v_read_v, self.iv_alpha_per_v)

    def quad_drive(self, v: np.ndarray) -> np.ndarray:
        """``s(V)·(V/v_read)²`` (V): the drive of the correction's second-order term."""
        v = np.asarray(v, dtype=float)
        return self.drive(v) * (v / self.v_read_v) ** 2

    def network(self, g: np.ndarray, sense_first: bool) -> CrossbarNetwork:
        return CrossbarNetwork(
            g, self.r_wire_wl_ohm, self.r_wire_bl_ohm, self.r_driver_ohm, sense_first
        )

    def transfer_parts(
        self, g: np.ndarray, sense_first: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """``(M_main, M_quad, Y)`` of a tile with conductances ``g`` (rows, n_lines) (S).

        Column currents are ``drive(V) @ M_main + quad_drive(V) @ M_quad`` (``M_quad`` is
        None when ``b = 0``); ``Y`` (n_lines, n_lines) is the admittance between the TIA
        nodes: TIA inputs at ``v`` instead of 0 change the column currents by ``Y @ v`` (its
        diagonal is each column's Norton conductance, the op-amp offsets' noise gain).

        ``Y`` is a small-signal quantity: a TIA input a millivolt off ground sees each device
        at its zero-bias slope ``g·s'(0)``, not at the fitted large-signal ``kappa·g`` of the
        IR-drop network. It is the network's admittance scaled by ``s'(0)/kappa``, exact to
        first order in wire/device conductance (against SPICE with Monte-Carlo op-amp
        offsets, the unscaled admittance mispredicted offset-driven outputs by up to
        1.4 LSB; scaled, 0.08 LSB; a second exact solve at ``g·s'(0)``, 0.01 LSB, for twice
        the cost).
        """
        g = np.asarray(g, dtype=float)
        m, quad, y = self.transfer_parts_stack(g[None], sense_first)
        return m[0], None if quad is None else quad[0], y[0]

    def transfer_parts_stack(
        self, g: np.ndarray, sense_first: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """:meth:`transfer_parts` of a stack of same-shape tiles ``g`` (T, rows, n_lines)
        (S), in one stacked solve (:meth:`cosim.nodal.CrossbarNetwork.transfer_stack`):
        ``(M_main, M_quad, Y)`` with a leading tile axis."""
        g = np.asarray(g, dtype=float)
        if g.ndim != 3 or g.shape[0] == 0:
            raise ValueError(f"g must be a non-empty stack (T, rows, n_lines), got {g.shape}")
        m, y = self.network(g[0], sense_first).transfer_stack(self.kappa * g)
        corr = m - self.kappa * g
        quad = self.drive_b * corr if self.drive_b != 0.0 else None
        return g + self.drive_a * corr, quad, y * (self.zero_bias_slope() / self.kappa)

    def zero_bias_slope(self) -> float:
        """``s'(0)``: a device's small-signal conductance at 0 V over its chord conductance
        at ``v_read`` (dimensionless; 1 for ohmic devices)."""
        return float(sinh_slope(1.0, 0.0, self.v_read_v, self.iv_alpha_per_v))

    def bias_slope_fit(self, v: np.ndarray) -> tuple[float, float]:
        """``(c_s, c_q)``: the operating-point slope excess in the two drive terms.

        A device biased at ``V`` conducts the small signal ``g·s'(V)``, not the zero-bias
        ``g·s'(0)`` that the TIA model's Norton conductance holds: with its TIA input at an
        offset ``v_os`` the column draws ``Σ_i g_i·(s'(V_i) − s'(0))·v_os`` more than the
        zero-bias model says (4.5 % of the slope at 0.2 V for the default card's sinh).
        This is that excess ``s'(V) − s'(0)`` as the least-squares combination
        ``c_s·s(V) + c_q·s(V)·(V/v_read)²`` of the two drives the engine already forms, over
        the DAC voltages ``v`` (V) a layer applies, so that adding ``c_s·G_os`` to the main
        transfer and ``c_q·G_os`` to the second-order one (``G_os = g·v_os`` per column)
        costs no extra product. Both are 0 for ohmic devices. Against the exact excess, the
        fit's largest residual is 4 % of the excess at full scale for the default card
        (``a = 1.5 /V``, 8-bit inputs).
        """
        v = np.asarray(v, dtype=float).ravel()
        if self.iv_alpha_per_v == 0.0 or v.size < 2:
            return 0.0, 0.0
        excess = sinh_slope(1.0, v, self.v_read_v, self.iv_alpha_per_v) - self.zero_bias_slope()
        basis = np.stack([self.drive(v), self.quad_drive(v)], axis=1)
        (c_s, c_q), *_ = np.linalg.lstsq(basis, excess, rcond=None)
        return float(c_s), float(c_q)

    def transfer(self, g: np.ndarray, sense_first: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(M_main, g_norton)``: the transfer of the main drive and the Norton conductances.

        Exact with :meth:`drive` when ``drive_b = 0``; otherwise :meth:`column_currents`
        (or :meth:`transfer_parts`) adds the second-order term.
        """
        m_main, _, y = self.transfer_parts(g, sense_first)
        return m_main, np.diagonal(y).copy()

    def transfer_full(
        self, g: np.ndarray, sense_first: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(M_main, Y)``: :meth:`transfer` with the full TIA-node admittance matrix."""
        m_main, _, y = self.transfer_parts(g, sense_first)
        return m_main, y

    def column_currents(
        self, g: np.ndarray, v: np.ndarray, sense_first: bool = False
    ) -> np.ndarray:
        """Column currents (A) for inputs ``v`` (..., rows) (V)."""
        m_main, m_quad, _ = self.transfer_parts(g, sense_first)
        return self.currents(v, m_main, m_quad)

    def currents(self, v: np.ndarray, m_main: np.ndarray, m_quad: np.ndarray | None) -> np.ndarray:
        """Column currents (A) from precomputed :meth:`transfer_parts` matrices."""
        i = self.drive(v) @ m_main
        if m_quad is not None:
            i = i + self.quad_drive(v) @ m_quad
        return i

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
            "drive_a": self.drive_a,
            "drive_b": self.drive_b,
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
        extra = {
            k: float(as_float_array(d[k], f"crossbar.{k}"))
            for k in ("drive_a", "drive_b")
            if k in d
        }
        # vals/extra: the float fields by name (mypy cannot match **dict to named fields)
        return cls(**vals, scales=scales, **extra)  # type: ignore[arg-type]


@dataclass
class CrossbarCase:
    """One SPICE-simulated array: conductances (rows, n_lines), inputs (n, rows), currents."""

    g: np.ndarray
    v: np.ndarray
    i_spice: np.ndarray
    sense_first: bool
    label: str = ""


class CrossbarFitter:
    """Fit κ and the correction's drive ``(a, b)`` of :class:`CrossbarModel` to SPICE cases.

    Parameters
    ----------
    r_wire_wl_ohm, r_wire_bl_ohm, r_driver_ohm
        Card (nominal) resistances (ohm), kept as they are.
    iv_alpha_per_v, v_read_v
        Device I–V shape (from the device model).
    """

    def __init__(
        self,
        r_wire_wl_ohm: float,
        r_wire_bl_ohm: float,
        r_driver_ohm: float,
        iv_alpha_per_v: float,
        v_read_v: float,
    ) -> None:
        self.r = (r_wire_wl_ohm, r_wire_bl_ohm, r_driver_ohm)
        self.iv_alpha_per_v = iv_alpha_per_v
        self.v_read_v = v_read_v

    def _model(self, theta: np.ndarray) -> CrossbarModel:
        quad = self.iv_alpha_per_v > 0
        return CrossbarModel(
            *self.r,
            kappa=float(theta[0]),
            iv_alpha_per_v=self.iv_alpha_per_v,
            v_read_v=self.v_read_v,
            drive_a=float(theta[1]),
            drive_b=float(theta[2]) if quad else 0.0,
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

        sol = least_squares(
            resid,
            np.array([1.0, 1.0, 0.0]),
            bounds=([0.5, 0.5, -1.0], [2.0, 2.0, 1.0]),
            x_scale=0.05,
            diff_step=1e-4,
        )
        self.theta_ = sol.x
        self.model_ = self._model(sol.x)
        self.rms_fit_ = float(np.sqrt(np.mean(sol.fun**2))) * i_scale_a
        self.n_cases_ = len(cases)
        return self

    @property
    def model(self) -> CrossbarModel:
        check_fitted(self, "model_")
        return self.model_
