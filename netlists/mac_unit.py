"""MAC unit: crossbar + per-column TIAs + subtractors (+ sense line and its TIA) [+ ADCs].

The *analog* netlist (:func:`mac_analog_netlist`) is a DC sweep over input vectors that
returns every output voltage the ADCs would sample and the sense TIA's output. The full
*MAC-unit* netlist (:func:`netlists.mac_unit.mac_unit_netlist`) adds the ADCs, as the
sub-circuits of the card's ADC architecture (any object with the three methods of
:class:`AdcSubcircuits`, such as :class:`cosim.converters.AdcArchitecture`; the SAR today),
and the sense comparators.

Outputs are described by a *layout*: a tuple of ``(p, n)`` column pairs for differential
weights (subtractor output ``V(p) − V(n)``) or ``(p, None)`` for a unipolar column (its
TIA output goes straight to the ADC).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from device_models import DeviceModel
from netlists.common import TIGHT_OPTIONS, index_sweep, num, pwl_of_index, pwl_steps
from netlists.crossbar import CrossbarParams, crossbar_elements
from netlists.opamp import opamp_subckt
from netlists.subtractor import SubtractorParams, subtractor_elements
from netlists.tia import TiaParams, tia_subckt

Layout = tuple[tuple[int, int | None], ...]


class AdcSubcircuits(Protocol):
    """What :func:`mac_unit_netlist` needs of an ADC architecture: the sub-circuit of one
    instance's netlist parameters, its name, and its pin order (the shared one of
    :mod:`cosim.converters`). Netlists depend on this shape, not on cosim's registry."""

    def subckt(self, params: Any, name: str | None = None) -> str: ...

    def subckt_name(self, params: Any) -> str: ...

    def subckt_pins(self, bits: int) -> list[str]: ...


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
        assert p.sense_tia is not None  # a sense line has its TIA
        lines.append(
            f"Xtias t{n_cols} vsense vdd vss {p.sense_tia.subckt_name} vos={num(tia_off[n_cols])}"
        )
        outs.append("vsense")
    return lines, outs


def _check_inputs(inputs_v: np.ndarray, rows: int) -> np.ndarray:
    v = np.asarray(inputs_v, dtype=float)
    if v.ndim != 2 or v.shape[1] != rows:
        raise ValueError(f"inputs_v must have shape (n, {rows}), got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("inputs_v holds NaN or inf")
    return v


def _analog_body(
    p: MacAnalogParams,
    device: DeviceModel,
    g: np.ndarray,
    driver_line,
    tia_offsets_v,
    sub_offsets_v,
    subtractors,
    sub_ref_v: float,
) -> tuple[list[str], list[str]]:
    """Supplies, the half-scale reference, the wordline drivers (``driver_line(i)`` writes
    row ``i``'s source onto node ``drv{i}``) and the analog MAC unit."""
    vdd, vss = p.supplies
    lines = [f"Vdd vdd 0 {num(vdd)}", f"Vss vss 0 {num(vss)}"]
    ref_node = "0"
    if sub_ref_v != 0.0:
        lines.append(f"Vhalf vhalf 0 {num(sub_ref_v)}")
        ref_node = "vhalf"
    lines += [driver_line(i) for i in range(p.crossbar.rows)]
    drivers = [f"drv{i}" for i in range(p.crossbar.rows)]
    body, outs = mac_analog_elements(
        p, device, g, drivers, tia_offsets_v, sub_offsets_v, subtractors, ref_node
    )
    return lines + body, outs


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
    v = _check_inputs(inputs_v, xb.rows)
    src, analysis = index_sweep(v.shape[0])
    body, outs = _analog_body(
        p,
        device,
        g,
        lambda i: f"Bdac{i} drv{i} 0 V=-{pwl_of_index(v[:, i])}",
        tia_offsets_v,
        sub_offsets_v,
        subtractors,
        sub_ref_v,
    )
    # outputs are compared with surrogates far below an LSB: the default reltol (1e-3)
    # would leave 0.2 mV on a 0.2 V output
    lines = [title, TIGHT_OPTIONS, src, *body]
    vectors = (*outs, "vdd#branch", "vss#branch")
    lines.append(".save " + " ".join(vectors))
    lines += [analysis, ".end"]
    return "\n".join(lines) + "\n", vectors


def mac_unit_netlist(
    p: MacAnalogParams,
    device: DeviceModel,
    g: np.ndarray,
    inputs_v: np.ndarray,
    adcs: list,
    sense_thresholds_v: np.ndarray | None = None,
    tia_offsets_v: np.ndarray | None = None,
    sub_offsets_v: np.ndarray | None = None,
    subtractors: list[SubtractorParams | None] | None = None,
    sub_ref_v: float = 0.0,
    settle_cycles: int = 6,
    title: str = "cosim mac unit",
    *,
    adc_arch: AdcSubcircuits,
) -> tuple[str, dict]:
    """The whole MAC unit as one transient netlist: crossbar, TIAs, subtractors, sense line
    and its comparators, and one ADC per output, converting every input vector in turn.

    Each input vector is applied for ``settle_cycles`` clock periods before its conversion
    starts (the analog chain settles while the ADCs are idle); the sense comparators turn
    ``V_sense`` against ``sense_thresholds_v`` (k = 1, 2, ...) into each ADC's skip pins,
    which the ADCs latch at the start of the conversion.

    ``adcs[k]`` holds the netlist parameters of layout entry ``k``'s ADC instance in the
    architecture ``adc_arch`` (its ``subckt``, ``subckt_name`` and ``subckt_pins`` write the
    instances; for the SAR a :class:`netlists.sar_adc.SarAdcParams`); each carries ``bits``,
    ``period_s`` (the clock), ``v_dd_v`` and ``v_ref_v``, shared by every ADC of the unit.
    Returns the netlist and a timing dict for :func:`decode_mac_unit`.

    This is the end-to-end reference; it is slow (a transient of the full array), so
    ``cosim evaluate --verify-spice`` simulates the same circuit in two stages joined by an
    ideal sample-and-hold (DC analog MAC unit, then the ADCs), which a test checks against
    this netlist on a small tile.
    """
    xb = p.crossbar
    v = _check_inputs(inputs_v, xb.rows)
    if len(adcs) != len(p.layout):
        raise ValueError("one ADC per layout entry is needed")
    bits = {a.bits for a in adcs}
    periods = {a.period_s for a in adcs}
    if len(bits) != 1 or len(periods) != 1:
        raise ValueError("every ADC of a MAC unit must share its resolution and clock")
    n_bits, t = bits.pop(), periods.pop()
    vdd = adcs[0].v_dd_v
    cycles = settle_cycles + n_bits + 2
    frame = cycles * t
    n = v.shape[0]
    tr = t / 100
    t0 = (settle_cycles + 1) * t  # first conversion starts after the first settling time
    e0 = t0 + np.arange(n) * frame
    change = e0 - settle_cycles * t  # inputs change right after the previous done cycle
    body, _ = _analog_body(
        p,
        device,
        g,
        lambda i: f"Vdac{i} drv{i} 0 {pwl_steps(change[1:], -v[1:, i], tr, -v[0, i])}",
        tia_offsets_v,
        sub_offsets_v,
        subtractors,
        sub_ref_v,
    )
    # the reference must resolve far below an LSB (default reltol: 0.2 mV on 0.2 V)
    lines = [
        title,
        TIGHT_OPTIONS,
        f"Vref vref 0 {num(adcs[0].v_ref_v)}",
        f"Vddd vddd 0 {num(vdd)}",
        *body,
    ]
    lines.append(
        f"Vclk clk 0 PULSE(0 {num(vdd)} {num(t0 - tr / 2)} {num(tr)} {num(tr)} "
        f"{num(t / 2 - tr)} {num(t)})"
    )
    lines.append(
        f"Vstart start 0 PULSE(0 {num(vdd)} {num(t0 - t / 2 - tr / 2)} {num(tr)} {num(tr)} "
        f"{num(t - tr)} {num(frame)})"
    )
    th = np.zeros(0) if sense_thresholds_v is None else np.asarray(sense_thresholds_v, float)
    for m in range(1, n_bits):
        if m <= th.size and th[m - 1] > 0 and xb.sense:
            lines.append(
                f"Bskip{m} skip{m} 0 V={num(vdd / 2)}*(1-tanh(1e5*(v(vsense)-{num(th[m - 1])})))"
            )
        else:
            lines.append(f"Vskip{m} skip{m} 0 0")
    defined = set()
    for k, a in enumerate(adcs):
        name = adc_arch.subckt_name(a)
        if name not in defined:
            lines.append(adc_arch.subckt(a, name).rstrip("\n"))
            defined.add(name)
        pins = adc_arch.subckt_pins(n_bits)
        nodes = {
            "vin": f"out{k}",
            "vref": "vref",
            "vdd": "vddd",
            "clk": "clk",
            "start": "start",
            "done": f"done{k}",
        }
        nodes.update({f"b{i}": f"a{k}b{i}" for i in range(n_bits)})
        lines.append(f"Xadc{k} " + " ".join(nodes.get(pn, pn) for pn in pins) + f" {name}")
        weights = "+".join(f"v(a{k}b{i})*{2**i}" for i in range(n_bits))
        lines.append(f"Bcode{k} code{k} 0 V=({weights})/{num(vdd)}")
    saved = ["time", "vsense"] if xb.sense else ["time"]
    saved += [f"code{k}" for k in range(len(adcs))] + [f"out{k}" for k in range(len(adcs))]
    lines.append(".save " + " ".join(saved))
    t_stop = e0[-1] + (n_bits + 2) * t - 0.2 * t
    lines.append(f".tran {num(t / 4)} {num(t_stop)}")
    lines.append(".end")
    timing = {
        "e0": e0,
        "period": t,
        "bits": n_bits,
        "n": n,
        "outputs": len(adcs),
        "vectors": tuple(saved),
    }
    return "\n".join(lines) + "\n", timing


def decode_mac_unit(result, timing: dict) -> dict[str, np.ndarray]:
    """Codes (n, outputs), sampled output voltages and ``V_sense`` of a
    :func:`mac_unit_netlist` run."""
    t = np.asarray(result["time"], dtype=float)
    tp, nb = timing["period"], timing["bits"]
    read = timing["e0"] + (nb + 1.5) * tp  # in each conversion's done cycle
    sample = timing["e0"] + 0.9 * tp  # just before the edge that ends the sample cycle
    codes = np.stack(
        [np.interp(read, t, np.asarray(result[f"code{k}"])) for k in range(timing["outputs"])],
        axis=1,
    )
    out = {
        "codes": np.rint(codes).astype(np.int64),
        "v_out": np.stack(
            [np.interp(sample, t, np.asarray(result[f"out{k}"])) for k in range(timing["outputs"])],
            axis=1,
        ),
    }
    if "vsense" in timing["vectors"]:
        out["v_sense"] = np.interp(sample, t, np.asarray(result["vsense"]))
    return out
