"""Op-amp macro-model used by the TIA, the subtractor and the sense-row TIA.

Topology (one subcircuit per parameter set, named by a hash of its parameters)::

    inp ─Vos─┐                          ┌─ D_hi ─ V_ch       Eout (×1)
             Gm·(v+ − v−) → n1 ─ R1 ∥ C1                    ──── Rout ── out
    inn ─────┘                          └─ D_lo ─ V_cl

* finite DC gain ``A = Gm·R1`` and a single pole at ``GBW / A`` (R1·C1);
* input offset ``Vos`` in series with the non-inverting input;
* output saturation by diode clamps on the internal node (the classic Boyle approach): the
  output is linear until it nears ``v_out_max``/``v_out_min`` and then stops there (the
  clamp's knee is sharp, ``n·V_T = 2.6 mV``). Diodes are used rather than a smooth
  B-source clamp because ngspice limits junction voltages during Newton iterations: with a
  B-source clamp, arrays with many clipping TIAs took hundreds of iterations per point;
* an ideal unity buffer and the output resistance ``Rout``;
* a quiescent current ``Iq`` flows between the supply pins, so supply sources see the
  op-amp's static power.

:func:`clamp_current` evaluates the same clamp in NumPy for the surrogates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from netlists.common import num

_R1_OHM = 1e6
CLAMP_IS_A = 1e-14  # clamp diode saturation current (A)
CLAMP_N = 0.1  # clamp diode emission coefficient: a sharp knee
VT_V = 0.025864186  # thermal voltage at ngspice's default 27 °C (V)
# the clamp sources sit this far inside the saturation levels, so the output stops at
# v_out_max / v_out_min when the clamp carries 1 mA
KNEE_V = CLAMP_N * VT_V * float(np.log(1e-3 / CLAMP_IS_A))


@dataclass(frozen=True)
class OpampParams:
    """Parameters of one op-amp instance.

    Parameters
    ----------
    dc_gain_v_per_v
        Open-loop DC gain (V/V).
    gbw_hz
        Gain-bandwidth product (Hz).
    v_out_min_v, v_out_max_v
        Output saturation levels (V).
    input_offset_v
        Input offset of this instance (V), added to the non-inverting input.
    r_out_ohm
        Open-loop output resistance (ohm).
    i_quiescent_a
        Static supply current (A).
    """

    dc_gain_v_per_v: float
    gbw_hz: float
    v_out_min_v: float
    v_out_max_v: float
    input_offset_v: float = 0.0
    r_out_ohm: float = 0.0
    i_quiescent_a: float = 0.0

    def __post_init__(self) -> None:
        if self.dc_gain_v_per_v <= 1:
            raise ValueError("OpampParams.dc_gain_v_per_v must exceed 1")
        if self.gbw_hz <= 0:
            raise ValueError("OpampParams.gbw_hz must be positive")
        if self.v_out_min_v >= self.v_out_max_v:
            raise ValueError("OpampParams.v_out_min_v must be below v_out_max_v")
        if self.r_out_ohm < 0 or self.i_quiescent_a < 0:
            raise ValueError("OpampParams.r_out_ohm and i_quiescent_a must be >= 0")

    @property
    def subckt_name(self) -> str:
        """Name of the subcircuit; the offset is an instance parameter, not part of it."""
        key = repr(
            (
                self.dc_gain_v_per_v,
                self.gbw_hz,
                self.v_out_min_v,
                self.v_out_max_v,
                self.r_out_ohm,
                self.i_quiescent_a,
            )
        )
        return "opamp_" + hashlib.sha256(key.encode()).hexdigest()[:10]

    def instance(
        self,
        name: str,
        inp: str,
        inn: str,
        out: str,
        vdd: str,
        vss: str,
        offset_v: float | None = None,
    ) -> str:
        """An instance line; ``offset_v`` overrides this instance's input offset (V)."""
        vos = self.input_offset_v if offset_v is None else offset_v
        return f"X{name} {inp} {inn} {out} {vdd} {vss} {self.subckt_name} vos={num(vos)}"


def opamp_subckt(p: OpampParams) -> str:
    """``.subckt <p.subckt_name> inp inn out vdd vss vos=<offset>`` text of the macro-model."""
    gm = p.dc_gain_v_per_v / _R1_OHM
    f_pole = p.gbw_hz / p.dc_gain_v_per_v
    c1 = 1.0 / (2 * np.pi * f_pole * _R1_OHM)
    lines = [
        f".subckt {p.subckt_name} inp inn out vdd vss vos={num(p.input_offset_v)}",
        "Vos inpo inp {vos}",
        f"Gin 0 n1 inpo inn {num(gm)}",
        f"R1 n1 0 {num(_R1_OHM)}",
        f"C1 n1 0 {num(c1)}",
        "Dhi n1 nch dclamp",
        f"Vch nch 0 {num(p.v_out_max_v - KNEE_V)}",
        "Dlo ncl n1 dclamp",
        f"Vcl ncl 0 {num(p.v_out_min_v + KNEE_V)}",
        f".model dclamp D(IS={num(CLAMP_IS_A)} N={num(CLAMP_N)})",
        "Eout nbuf 0 n1 0 1",
    ]
    if p.r_out_ohm > 0:
        lines.append(f"Rout nbuf out {num(p.r_out_ohm)}")
    else:
        lines.append("Vout nbuf out 0")
    if p.i_quiescent_a > 0:
        lines.append(f"Iq vdd vss {num(p.i_quiescent_a)}")
    else:
        lines.append("Rq vdd vss 1e15")
    lines.append(f".ends {p.subckt_name}")
    return "\n".join(lines)


def clamp_current(
    v_internal: np.ndarray, v_out_min_v: float, v_out_max_v: float
) -> tuple[np.ndarray, np.ndarray]:
    """Current (A) the clamp diodes draw from the internal node, and its derivative (S)."""
    nvt = CLAMP_N * VT_V
    v = np.asarray(v_internal, dtype=float)
    eh = np.exp(np.minimum((v - (v_out_max_v - KNEE_V)) / nvt, 600.0))
    el = np.exp(np.minimum(((v_out_min_v + KNEE_V) - v) / nvt, 600.0))
    i = CLAMP_IS_A * (eh - 1.0) - CLAMP_IS_A * (el - 1.0)
    di = CLAMP_IS_A * (eh + el) / nvt
    return i, di


def internal_resistance_ohm() -> float:
    """R1 of the gain stage (ohm): the clamp current is compared with ``n1 / R1``."""
    return _R1_OHM
