"""Four-resistor differential amplifier (subtractor) for a differential column pair.

::

    v_neg ─ R1 ─┬─ R2 ─┬─ out          x: inverting input
                x      │               y: non-inverting input
    v_pos ─ R3 ─┬─ R4 ─ v_ref
                y
    out = v_pos·R4/(R3+R4)·(1+R2/R1) − v_neg·R2/R1 + v_ref·R3/(R3+R4)·(1+R2/R1)

With matched resistors (R2/R1 = R4/R3 = gain) and ``v_ref = 0`` it is
``gain·(v_pos − v_neg)``. Each resistor's actual
value is an instance parameter, so Monte-Carlo mismatch is explicit in the netlist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netlists.common import TIGHT_OPTIONS, index_sweep, num, pwl_of_index
from netlists.opamp import OpampParams, opamp_subckt


@dataclass(frozen=True)
class SubtractorParams:
    """Resistor values of one instance (ohm) and its op-amp."""

    r1_ohm: float
    r2_ohm: float
    r3_ohm: float
    r4_ohm: float
    opamp: OpampParams

    def __post_init__(self) -> None:
        for k in ("r1_ohm", "r2_ohm", "r3_ohm", "r4_ohm"):
            if getattr(self, k) <= 0:
                raise ValueError(f"SubtractorParams.{k} must be positive")

    def resistors(self) -> tuple[float, float, float, float]:
        return (self.r1_ohm, self.r2_ohm, self.r3_ohm, self.r4_ohm)


def subtractor_elements(
    p: SubtractorParams,
    name: str,
    v_pos: str,
    v_neg: str,
    out: str,
    vdd: str,
    vss: str,
    v_ref: str = "0",
    offset_v: float | None = None,
) -> list[str]:
    """Netlist lines of one subtractor instance (the op-amp subckt must be defined).

    ``offset_v`` overrides the op-amp offset of this instance (V).
    """
    x, y = f"sx_{name}", f"sy_{name}"
    return [
        f"R1_{name} {v_neg} {x} {num(p.r1_ohm)}",
        f"R2_{name} {x} {out} {num(p.r2_ohm)}",
        f"R3_{name} {v_pos} {y} {num(p.r3_ohm)}",
        f"R4_{name} {y} {v_ref} {num(p.r4_ohm)}",
        p.opamp.instance(f"sub_{name}", y, x, out, vdd, vss, offset_v),
    ]


def subtractor_testbench_netlist(p: SubtractorParams, v_pos: np.ndarray, v_neg: np.ndarray) -> str:
    """DC sweep of one subtractor over input pairs. Vector: ``out`` (V)."""
    vp = np.asarray(v_pos, dtype=float).reshape(-1)
    vn = np.asarray(v_neg, dtype=float).reshape(-1)
    if vp.shape != vn.shape:
        raise ValueError("v_pos and v_neg must have the same length")
    if not (np.all(np.isfinite(vp)) and np.all(np.isfinite(vn))):
        raise ValueError("v_pos and v_neg must be finite (no NaN or inf)")
    src, analysis = index_sweep(vp.size)
    lines = [
        "cosim subtractor testbench",
        TIGHT_OPTIONS,
        opamp_subckt(p.opamp),
        f"Vdd vdd 0 {num(p.opamp.v_out_max_v + 0.1)}",
        f"Vss vss 0 {num(p.opamp.v_out_min_v - 0.1)}",
        src,
        f"Bp inp 0 V={pwl_of_index(vp)}",
        f"Bn inn 0 V={pwl_of_index(vn)}",
        *subtractor_elements(p, "0", "inp", "inn", "out", "vdd", "vss"),
        ".save out",
        analysis,
        ".end",
    ]
    return "\n".join(lines) + "\n"
