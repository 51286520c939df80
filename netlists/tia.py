"""Transimpedance amplifier: an op-amp with feedback resistor holding its input at virtual
ground. The testbench drives it with the Norton equivalent of a crossbar column.

A column draws ``I_N + G_N·x`` out of the TIA input node ``x`` (``I_N``: current at 0 V,
``G_N``: the column's conductance to the wordline drivers). The op-amp's offset lifts ``x``
to ``V_os`` and the column's conductance turns that into current: this *noise gain*
``1 + R_f·G_N`` is why offsets matter far more in a crossbar than with an ideal current
source, and why the testbench sweeps ``G_N`` too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netlists.common import TIGHT_OPTIONS, index_sweep, num, pwl_of_index
from netlists.opamp import OpampParams, opamp_subckt


@dataclass(frozen=True)
class TiaParams:
    """A TIA: feedback resistance (ohm) and its op-amp."""

    r_feedback_ohm: float
    opamp: OpampParams

    def __post_init__(self) -> None:
        if self.r_feedback_ohm <= 0:
            raise ValueError("TiaParams.r_feedback_ohm must be positive")

    @property
    def subckt_name(self) -> str:
        return f"tia_{round(self.r_feedback_ohm)}_{self.opamp.subckt_name[6:]}"


def tia_subckt(p: TiaParams) -> str:
    """``.subckt <name> in out vdd vss vos=<offset>``: inverting TIA, + input grounded."""
    return "\n".join(
        [
            f".subckt {p.subckt_name} in out vdd vss vos={num(p.opamp.input_offset_v)}",
            f"X1 0 in out vdd vss {p.opamp.subckt_name} vos={{vos}}",
            f"Rf in out {num(p.r_feedback_ohm)}",
            f".ends {p.subckt_name}",
        ]
    )


def tia_testbench_netlist(
    p: TiaParams, i_norton_a: np.ndarray, g_norton_s: np.ndarray, offset_v: float | None = None
) -> str:
    """DC sweep of a TIA driven by Norton sources ``(I_N, G_N)``, one pair per point.

    Vectors: ``out`` (V) and ``in`` (the virtual-ground node, V).
    """
    i_n = np.asarray(i_norton_a, dtype=float).reshape(-1)
    g_n = np.asarray(g_norton_s, dtype=float).reshape(-1)
    if i_n.shape != g_n.shape:
        raise ValueError("i_norton_a and g_norton_s must have the same length")
    if not (np.all(np.isfinite(i_n)) and np.all(np.isfinite(g_n))):
        raise ValueError("i_norton_a and g_norton_s must be finite (no NaN or inf)")
    if np.any(g_n < 0):
        raise ValueError("g_norton_s must be >= 0")
    src, analysis = index_sweep(i_n.size)
    vos = p.opamp.input_offset_v if offset_v is None else offset_v
    lines = [
        "cosim tia testbench",
        TIGHT_OPTIONS,
        opamp_subckt(p.opamp),
        tia_subckt(p),
        f"Vdd vdd 0 {num(p.opamp.v_out_max_v + 0.1)}",
        f"Vss vss 0 {num(p.opamp.v_out_min_v - 0.1)}",
        src,
        f"Xtia in out vdd vss {p.subckt_name} vos={num(vos)}",
        f"Bcol in 0 I={pwl_of_index(i_n)}+v(in)*{pwl_of_index(g_n)}",
        ".save out in",
        analysis,
        ".end",
    ]
    return "\n".join(lines) + "\n"
