"""Surrogates of the TIA and the subtractor: op-amp loops with resistive feedback.

Both blocks are one op-amp closing a loop through resistors. With the op-amp's fitted DC
gain ``A``, offset ``V_os``, output saturation (the same diode clamp as the macro-model,
:func:`netlists.opamp.clamp_current`) and output resistance ``R_out``, the DC output solves a
scalar monotone equation in ``V`` (the output voltage)::

    A·(v⁺ + V_os − x(V)) − n1 − R1·I_clamp(n1) = 0,   n1 = V + R_out·I_o(V),
    x = α + β·V,  I_o = γ + δ·V

where ``x`` is the inverting-input voltage and ``I_o`` the op-amp output current, both
affine in ``V`` for a resistive network. The TIA and subtractor surrogates only differ in
``α, β, γ, δ, v⁺``; :func:`solve_loop` solves it (safeguarded Newton, vectorized) with the
macro-model's diode clamp as the saturation.

Inside the linear range the loop is affine in its inputs; :meth:`TiaModel.linear` and
:meth:`SubtractorModel.linear` give the exact affine coefficients the engine uses as its
fast path, and the full solve is used only where an op-amp nears its rails.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from cosim.surrogates.base import as_float_array, check_fitted, require_keys
from netlists.opamp import clamp_current, internal_resistance_ohm


def solve_loop(
    a: float,
    v_plus: np.ndarray | float,
    alpha: np.ndarray,
    beta: np.ndarray,
    gamma: np.ndarray,
    delta: np.ndarray,
    r_out: float,
    v_min: float,
    v_max: float,
    iters: int = 80,
) -> np.ndarray:
    """Output voltage (V) of an op-amp loop (see module docstring), elementwise.

    With the macro-model's diode clamp, the internal node ``n1 = V + R_out·I_o`` obeys
    ``A·(v⁺ − x) − n1 − R1·I_clamp(n1) = 0``. That residual is strictly decreasing in ``V``,
    so a Newton iteration safeguarded by bisection always converges.
    """
    v_plus, alpha, beta, gamma, delta = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (v_plus, alpha, beta, gamma, delta))
    )
    r1 = internal_resistance_ohm()

    def f_and_fp(v):
        n1 = v + r_out * (gamma + delta * v)
        ic, dic = clamp_current(n1, v_min, v_max)
        f = a * (v_plus - alpha - beta * v) - n1 - r1 * ic
        fp = -a * beta - (1.0 + r1 * dic) * (1.0 + r_out * delta)
        return f, fp

    pad = 0.5 + 0.5 * (v_max - v_min)
    lo = np.full(v_plus.shape, v_min - pad) - r_out * np.abs(gamma)
    hi = np.full(v_plus.shape, v_max + pad) + r_out * np.abs(gamma)
    denom = 1.0 + a * beta + r_out * delta
    v = np.clip((a * (v_plus - alpha) - r_out * gamma) / denom, v_min, v_max)
    for _ in range(iters):
        fv, fpv = f_and_fp(v)
        lo = np.where(fv > 0, v, lo)  # f decreasing: f > 0 means the root lies above
        hi = np.where(fv < 0, v, hi)
        v_new = v - fv / fpv
        bad = (v_new < lo) | (v_new > hi) | ~np.isfinite(v_new)
        v_new = np.where(bad, 0.5 * (lo + hi), v_new)
        if np.all(np.abs(v_new - v) < 1e-13):
            return v_new
        v = v_new
    return v


@dataclass(frozen=True)
class OpampFit:
    """Fitted op-amp parameters shared by the TIA and subtractor surrogates."""

    dc_gain_v_per_v: float
    offset_v: float
    v_out_min_v: float
    v_out_max_v: float
    r_out_ohm: float

    def to_dict(self) -> dict[str, float]:
        return {
            "dc_gain_v_per_v": self.dc_gain_v_per_v,
            "offset_v": self.offset_v,
            "v_out_min_v": self.v_out_min_v,
            "v_out_max_v": self.v_out_max_v,
            "r_out_ohm": self.r_out_ohm,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], what: str) -> OpampFit:
        keys = ("dc_gain_v_per_v", "offset_v", "v_out_min_v", "v_out_max_v", "r_out_ohm")
        require_keys(d, keys, what)
        return cls(**{k: float(as_float_array(d[k], f"{what}.{k}")) for k in keys})


@dataclass(frozen=True)
class TiaModel:
    """TIA surrogate: output voltage for a column's Norton equivalent ``(I_N, G_N)``.

    ``I_N`` (A) is the current the column draws out of the TIA input at 0 V and ``G_N`` (S)
    its conductance; the output is ``≈ R_f·I_N + V_os·(1 + R_f·G_N)`` until the rails.
    """

    r_feedback_ohm: float
    opamp: OpampFit

    kind = "tia"

    def predict(
        self, i_n: np.ndarray, g_n: np.ndarray, offset_v: np.ndarray | float | None = None
    ) -> np.ndarray:
        """Output voltage (V), broadcast over ``i_n``, ``g_n`` and per-instance ``offset_v``."""
        rf = self.r_feedback_ohm
        i_n = np.asarray(i_n, dtype=float)
        g_n = np.asarray(g_n, dtype=float)
        vos = self.opamp.offset_v if offset_v is None else np.asarray(offset_v, dtype=float)
        k = 1.0 + rf * g_n
        alpha = -rf * i_n / k
        beta = 1.0 / k
        gamma = i_n + g_n * alpha
        delta = g_n * beta
        o = self.opamp
        return solve_loop(
            o.dc_gain_v_per_v,
            vos,
            alpha,
            beta,
            gamma,
            delta,
            o.r_out_ohm,
            o.v_out_min_v,
            o.v_out_max_v,
        )

    def linear(
        self, g_n: np.ndarray | float, offset_v: np.ndarray | float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact affine transfer away from the rails: ``V = gain·I_N + offset`` (ohm, V)."""
        rf = self.r_feedback_ohm
        a = self.opamp.dc_gain_v_per_v
        g_n = np.asarray(g_n, dtype=float)
        vos = self.opamp.offset_v if offset_v is None else np.asarray(offset_v, dtype=float)
        k = 1.0 + rf * g_n
        # V = A(vos - x) - R_out*I_o with x = (V - rf I)/k and I_o = I + g x  (slope-1 clamp)
        ro = self.opamp.r_out_ohm
        denom = 1.0 + a / k + ro * g_n / k
        gain = (a * rf / k - ro * (1.0 - g_n * rf / k)) / denom
        off = a * vos / denom
        return gain, off

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "r_feedback_ohm": self.r_feedback_ohm,
            "opamp": self.opamp.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TiaModel:
        require_keys(d, ("r_feedback_ohm", "opamp"), "the TIA surrogate")
        return cls(
            float(as_float_array(d["r_feedback_ohm"], "tia.r_feedback_ohm")),
            OpampFit.from_dict(d["opamp"], "tia.opamp"),
        )

    def with_offset(self, offset_v: float) -> TiaModel:
        return replace(self, opamp=replace(self.opamp, offset_v=offset_v))


@dataclass(frozen=True)
class SubtractorModel:
    """Subtractor surrogate: ``V ≈ V_pos·(R4/(R3+R4))(1+R2/R1) − V_neg·R2/R1`` with the
    op-amp's finite gain, offset and rails. Resistor values are effective (fitted)."""

    r1_ohm: float
    r2_ohm: float
    r3_ohm: float
    r4_ohm: float
    opamp: OpampFit
    v_ref_v: float = 0.0

    kind = "subtractor"

    def _coeffs(self, v_pos, v_neg):
        r1, r2, r3, r4 = self.r1_ohm, self.r2_ohm, self.r3_ohm, self.r4_ohm
        v_plus = (np.asarray(v_pos, dtype=float) * r4 + self.v_ref_v * r3) / (r3 + r4)
        alpha = np.asarray(v_neg, dtype=float) * r2 / (r1 + r2)
        beta = r1 / (r1 + r2)
        gamma = -alpha / r2
        delta = (1.0 - beta) / r2
        return v_plus, alpha, beta, gamma, delta

    def predict(
        self, v_pos: np.ndarray, v_neg: np.ndarray, offset_v: np.ndarray | float | None = None
    ) -> np.ndarray:
        """Output voltage (V), broadcast over the inputs and a per-instance offset."""
        v_plus, alpha, beta, gamma, delta = self._coeffs(v_pos, v_neg)
        vos = self.opamp.offset_v if offset_v is None else np.asarray(offset_v, dtype=float)
        o = self.opamp
        return solve_loop(
            o.dc_gain_v_per_v,
            v_plus + vos,
            alpha,
            beta,
            gamma,
            delta,
            o.r_out_ohm,
            o.v_out_min_v,
            o.v_out_max_v,
        )

    def linear(self, offset_v: float | None = None) -> tuple[float, float, float]:
        """Affine transfer away from the rails: ``V = a_pos·V_pos − a_neg·V_neg + c``."""
        r1, r2, r3, r4 = self.r1_ohm, self.r2_ohm, self.r3_ohm, self.r4_ohm
        a = self.opamp.dc_gain_v_per_v
        ro = self.opamp.r_out_ohm
        vos = self.opamp.offset_v if offset_v is None else offset_v
        beta = r1 / (r1 + r2)
        denom = 1.0 + a * beta + ro * (1.0 - beta) / r2
        k_pos = r4 / (r3 + r4)
        a_pos = a * k_pos / denom
        a_neg = (a * r2 / (r1 + r2) - ro / (r1 + r2)) / denom
        c = a * (vos + self.v_ref_v * r3 / (r3 + r4)) / denom
        return a_pos, a_neg, c

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "r1_ohm": self.r1_ohm,
            "r2_ohm": self.r2_ohm,
            "r3_ohm": self.r3_ohm,
            "r4_ohm": self.r4_ohm,
            "v_ref_v": self.v_ref_v,
            "opamp": self.opamp.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SubtractorModel:
        keys = ("r1_ohm", "r2_ohm", "r3_ohm", "r4_ohm", "v_ref_v", "opamp")
        require_keys(d, keys, "the subtractor surrogate")
        vals = {k: float(as_float_array(d[k], f"subtractor.{k}")) for k in keys[:-1]}
        return cls(**vals, opamp=OpampFit.from_dict(d["opamp"], "subtractor.opamp"))


class _LoopFitter:
    """Least squares of an op-amp-loop surrogate on SPICE ``(x1, x2) → V_out`` data.

    Parameters ``θ``: the block's own ones (:attr:`_own`: start, bounds, scale), then the
    op-amp's DC-gain scale, offset (mV) and saturation levels (V) around ``opamp_guess``.
    """

    _own: tuple[tuple[float, float, float, float], ...] = ()  # (start, lo, hi, scale)

    def __init__(self, opamp_guess: OpampFit) -> None:
        self.guess = opamp_guess

    def _opamp(self, th: np.ndarray) -> OpampFit:
        g = self.guess
        k = len(self._own)
        return OpampFit(
            g.dc_gain_v_per_v * th[k], th[k + 1] * 1e-3, th[k + 2], th[k + 3], g.r_out_ohm
        )

    def _model(self, th: np.ndarray):  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    def fit(self, x: np.ndarray, y: np.ndarray):
        """``x``: (n, 2) the block's two inputs; ``y``: (n,) output (V). Returns self."""
        from scipy.optimize import least_squares

        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        g = self.guess
        own = np.array(self._own, dtype=float).reshape(-1, 4)
        th0 = np.concatenate([own[:, 0], [1.0, g.offset_v * 1e3, g.v_out_min_v, g.v_out_max_v]])
        lo = np.concatenate([own[:, 1], [0.05, -100.0, g.v_out_min_v - 1, g.v_out_max_v - 1]])
        hi = np.concatenate([own[:, 2], [20.0, 100.0, g.v_out_min_v + 1, g.v_out_max_v + 1]])
        scale = np.concatenate([own[:, 3], [0.1, 0.1, 0.01, 0.01]])

        def resid(th):
            return (self._model(th).predict(x[:, 0], x[:, 1]) - y) * 1e3

        sol = least_squares(resid, th0, bounds=(lo, hi), x_scale=scale)
        self.theta_ = sol.x
        self.model_ = self._model(sol.x)
        return self

    @property
    def model(self):
        check_fitted(self, "model_")
        return self.model_


class TiaFitter(_LoopFitter):
    """Least-squares fit of :class:`TiaModel` to SPICE ``(I_N, G_N) → V_out`` data
    (``x`` columns ``I_N`` (A), ``G_N`` (S)).

    Fitted: feedback resistance, DC gain, offset and the two saturation levels; the output
    resistance is taken from the card (it is divided by the loop gain and barely visible).
    """

    _own = ((1.0, 0.5, 2.0, 0.01),)  # feedback resistance scale

    def __init__(self, r_feedback_ohm: float, opamp_guess: OpampFit) -> None:
        super().__init__(opamp_guess)
        self.r0 = r_feedback_ohm

    def _model(self, th: np.ndarray) -> TiaModel:
        return TiaModel(self.r0 * th[0], self._opamp(th))


class SubtractorFitter(_LoopFitter):
    """Least-squares fit of :class:`SubtractorModel` to SPICE ``(V_pos, V_neg) → V_out``.

    With ``resistors_ohm`` (R1..R4 of the simulated instance, which the netlist generator
    knows) only the op-amp is fitted: DC gain, offset and saturation levels. Without them
    R1 and R3 are held at their nominal value and R2, R4 (around ``gain·R1``) are fitted
    too; DC data then fix only the three affine coefficients, so the DC gain trades off
    against the resistor ratios (measured: 7.8e3 fitted for a 1e4 op-amp) and the op-amp
    does not transfer to other resistor instances.
    """

    _own: tuple[tuple[float, float, float, float], ...] = (
        (1.0, 0.5, 2.0, 1e-3),
        (1.0, 0.5, 2.0, 1e-3),
    )  # R2 and R4 scales

    def __init__(
        self,
        r_nominal_ohm: float,
        opamp_guess: OpampFit,
        gain: float = 1.0,
        resistors_ohm: tuple[float, float, float, float] | None = None,
    ) -> None:
        super().__init__(opamp_guess)
        self.r0 = r_nominal_ohm
        self.gain = gain
        self.resistors: tuple[float, ...] | None = (
            None if resistors_ohm is None else tuple(map(float, resistors_ohm))
        )
        if self.resistors is not None:
            if len(self.resistors) != 4 or min(self.resistors) <= 0:
                raise ValueError("resistors_ohm must be four positive resistances (ohm)")
            self._own = ()

    def _model(self, th: np.ndarray) -> SubtractorModel:
        if self.resistors is not None:
            r1, r2, r3, r4 = self.resistors  # four, checked in __init__
            return SubtractorModel(r1, r2, r3, r4, self._opamp(th))
        r = self.r0
        rg = r * self.gain
        return SubtractorModel(r, rg * th[0], r, rg * th[1], self._opamp(th))
