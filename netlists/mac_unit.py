"""MAC unit: crossbar + per-column TIAs + subtractors (+ sense line and its TIA) [+ ADCs].

The *analog* netlist (:func:`mac_analog_netlist`) is a DC sweep over input vectors that
returns every output voltage the ADCs would sample and the sense TIA's output. The full
*MAC-unit* netlist (:func:`netlists.mac_unit.mac_unit_netlist`, built with the SAR ADC
subcircuit) adds the ADCs and the sense comparators.

Outputs are described by a *layout*: a tuple of ``(p, n)`` column pairs for differential
weights (subtractor output ``V(p) − V(n)``) or ``(p, None)`` for a unipolar column (its
TIA output goes straight to the ADC).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from device_models import DeviceModel
from netlists.common import index_sweep, num, pwl_of_index
from netlists.crossbar import CrossbarParams, crossbar_elements
from netlists.opamp import opamp_subckt
from netlists.subtractor import SubtractorParams, subtractor_elements
from netlists.tia import TiaParams, tia_subckt

Layout = tuple[tuple[int, int | None], ...]


def pair_layout(cols: int) -> Layout:
    """Differential pairs (0,1), (2,3), ... over ``cols`` columns."""
    return tuple((j, j + 1) for j in range(0, cols - 1, 2))


def unipolar_layout(cols: int) -> Layout:
    """Every column is its own unipolar output."""
    return tuple((j, None) for j in range(cols))


@dataclass(frozen=True)
class MacAnalogParams:
    """Everything analog in one MAC unit.

    Parameters
    ----------
    crossbar
        Array geometry (with ``sense=True`` for the sparsity-sensing line).
    tia
        Column TIA of differential pairs (feedback ``R_t / gain``; its op-amp's offset is the
        default for every op-amp instance).
    sense_tia
        TIA of the sense line (same op-amp, its own feedback resistance).
    subtractor
        Subtractor instance used for every pair (resistor values may carry mismatch).
    layout
        Output definition, see the module docstring.
    tia_unipolar
        Column TIA of unipolar columns (feedback ``R_t``); ``None``: same as ``tia``.
    """

    crossbar: CrossbarParams
    tia: TiaParams
    sense_tia: TiaParams | None
    subtractor: SubtractorParams
    layout: Layout
    tia_unipolar: TiaParams | None = None

    def __post_init__(self) -> None:
        used = [j for pair in self.layout for j in pair if j is not None]
        if any(j < 0 or j >= self.crossbar.cols for j in used):
            raise ValueError("layout refers to a column outside the crossbar")
        if len(set(used)) != len(used):
            raise ValueError("layout uses a column twice")
        if self.crossbar.sense and self.sense_tia is None:
            raise ValueError("a crossbar with a sense line needs sense_tia")

    @classmethod
    def from_card(
        cls, card, layout: Layout, rows: int | None = None, cols: int | None = None
    ) -> MacAnalogParams:
        xb = CrossbarParams.from_card(card, rows, cols)
        sense = TiaParams.from_card(card, card.sense_row.r_feedback_ohm) if xb.sense else None
        r_t = card.tia.r_feedback_ohm
        pair = TiaParams.from_card(card, r_t / card.subtractor.gain_v_per_v)
        return cls(
            xb, pair, sense, SubtractorParams.nominal(card), layout, TiaParams.from_card(card, r_t)
        )

    @property
    def supplies(self) -> tuple[float, float]:
        o = self.tia.opamp
        return o.v_out_max_v + 0.1, o.v_out_min_v - 0.1


def mac_analog_elements(
    p: MacAnalogParams,
    device: DeviceModel,
    g: np.ndarray,
    driver_nodes: list[str],
    tia_offsets_v: np.ndarray | None = None,
    sub_offsets_v: np.ndarray | None = None,
    subtractors: list[SubtractorParams | None] | None = None,
    sub_ref_node: str = "0",
) -> tuple[list[str], list[str]]:
    """Netlist lines of the analog MAC unit and the names of its output nodes.

    Output nodes: ``out{k}`` for layout entry ``k``, ``vsense`` for the sense TIA.
    ``g`` is (rows, cols), or (rows, cols + 1) with a programmed sense column.
    ``subtractors`` gives each layout entry its own instance (resistor mismatch; ``None``
    for unipolar entries); ``sub_ref_node`` is where every R4 returns (ground, or a
    half-scale node for offset-binary partial sums).
    """
    xb = p.crossbar
    n_cols = xb.cols
    tia_off = (
        np.full(xb.n_lines, p.tia.opamp.input_offset_v)
        if tia_offsets_v is None
        else np.asarray(tia_offsets_v, dtype=float)
    )
    sub_off = (
        np.full(len(p.layout), p.subtractor.opamp.input_offset_v)
        if sub_offsets_v is None
        else np.asarray(sub_offsets_v, dtype=float)
    )
    uni_tia = p.tia_unipolar if p.tia_unipolar is not None else p.tia
    lines = [opamp_subckt(p.tia.opamp), tia_subckt(p.tia)]
    defined = {p.tia.subckt_name}
    for extra in (uni_tia, p.sense_tia):
        if extra is not None and extra.subckt_name not in defined:
            lines.append(tia_subckt(extra))
            defined.add(extra.subckt_name)
    ends = [f"t{j}" for j in range(xb.n_lines)]
    lines += crossbar_elements(xb, device, g, driver_nodes, ends)
    used = {j for pair in p.layout for j in pair if j is not None}
    unipolar = {a for a, b in p.layout if b is None}
    for j in range(n_cols):
        if j in used:
            name = (uni_tia if j in unipolar else p.tia).subckt_name
            lines.append(f"Xtia{j} t{j} o{j} vdd vss {name} vos={num(tia_off[j])}")
        else:  # an unused column still needs its virtual ground
            lines.append(f"Vunused{j} t{j} 0 0")
    outs = []
    for k, (a, b) in enumerate(p.layout):
        if b is None:
            lines.append(f"Vbuf{k} o{a} out{k} 0")
        else:
            inst = subtractors[k] if subtractors is not None else None
            lines += subtractor_elements(
                inst if inst is not None else p.subtractor,
                f"{k}",
                f"o{a}",
                f"o{b}",
                f"out{k}",
                "vdd",
                "vss",
                v_ref=sub_ref_node,
                offset_v=float(sub_off[k]),
            )
        outs.append(f"out{k}")
    if xb.sense:
        lines.append(
            f"Xtias t{n_cols} vsense vdd vss {p.sense_tia.subckt_name} vos={num(tia_off[n_cols])}"
        )
        outs.append("vsense")
    return lines, outs


def mac_analog_netlist(
    p: MacAnalogParams,
    device: DeviceModel,
    g: np.ndarray,
    inputs_v: np.ndarray,
    tia_offsets_v: np.ndarray | None = None,
    sub_offsets_v: np.ndarray | None = None,
    title: str = "cosim mac analog",
    subtractors: list[SubtractorParams | None] | None = None,
    sub_ref_v: float = 0.0,
) -> tuple[str, tuple[str, ...]]:
    """DC sweep of the analog MAC unit over input vectors ``inputs_v`` (n, rows) (V).

    Row ``i`` is driven at ``-inputs_v[:, i]`` (a negative entry drives an inverted bias
    row). Returns the netlist and the vectors to read: ``out{k}`` per layout entry (V), then
    ``vsense`` if the sense line is present, then the supply currents.
    """
    xb = p.crossbar
    v = np.asarray(inputs_v, dtype=float)
    if v.ndim != 2 or v.shape[1] != xb.rows:
        raise ValueError(f"inputs_v must have shape (n, {xb.rows}), got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("inputs_v holds NaN or inf")
    src, analysis = index_sweep(v.shape[0])
    vdd, vss = p.supplies
    lines = [title, src, f"Vdd vdd 0 {num(vdd)}", f"Vss vss 0 {num(vss)}"]
    ref_node = "0"
    if sub_ref_v != 0.0:
        lines.append(f"Vhalf vhalf 0 {num(sub_ref_v)}")
        ref_node = "vhalf"
    drivers = []
    for i in range(xb.rows):
        lines.append(f"Bdac{i} drv{i} 0 V=-{pwl_of_index(v[:, i])}")
        drivers.append(f"drv{i}")
    body, outs = mac_analog_elements(
        p, device, g, drivers, tia_offsets_v, sub_offsets_v, subtractors, ref_node
    )
    lines += body
    vectors = (*outs, "vdd#branch", "vss#branch")
    lines.append(".save " + " ".join(vectors))
    lines += [analysis, ".end"]
    return "\n".join(lines) + "\n", vectors
