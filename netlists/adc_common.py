"""Pieces the ADC netlist packages (:mod:`netlists.sar_adc`, :mod:`netlists.flash_adc`)
share: the timing fractions, the parameter checks, the pin order, the XSPICE models and
energy switches of the sub-circuits, the conversion testbench's sources and meters, and the
decoders of their runs.

Each architecture keeps its own public names (``subckt_pins``, ``SarTestbenchTiming``, ...);
they are these functions, so the two packages write byte-for-byte the text they wrote when
each had its own copy.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol, TypeVar

import numpy as np

from netlists.common import num, pwl_steps

# Fractions of the clock period used for the timing of the netlists.
GATE_DELAY_FRAC = 1 / 250  # delay of one XSPICE gate
DFF_DELAY_FRAC = 2 / 250  # clock-to-output delay of a d_dff (longer than a gate)
CTRL_EDGE_FRAC = 1 / 500  # rise/fall of the 0/1 V switch controls (dac_bridge)
CLK_EDGE_FRAC = 1 / 100  # rise/fall of the clock, start, input and skip sources
ENERGY_TAU_FRAC = 1 / 40  # time constant of the comparator/logic energy switches
R_OFF_OHM = 1e12

# Testbench timing, in clock periods from a conversion's first rising edge E_0.
TB_T0_CYCLES = 1.0  # first conversion starts one clock period after t = 0
TB_CHANGE_CYCLES = -0.8  # input/skip change this many periods from the next E_0
TB_READ_CYCLES = -0.5  # output bits are read here (in the done cycle)
TB_WINDOW_CYCLES = -0.25  # energy windows start/end here (a quiet instant)
Q_METER_F = 1e-12  # capacitance of the charge meters (1 V = 1 pC)


# ---------------------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------------------
def check_pos(owner: str, name: str, value: float, lo_open: bool = True) -> float:
    """``value`` as a float, finite and > 0 (``>= 0`` with ``lo_open=False``); the error
    names ``owner.name``."""
    v = float(value)
    if not math.isfinite(v) or v < 0 or (lo_open and v == 0):
        want = "> 0" if lo_open else ">= 0"
        raise ValueError(f"{owner}.{name} = {value!r} must be finite and {want}")
    return v


def check_bits(owner: str, bits: object, lo: int, hi: int) -> int:
    """``bits`` as an int in ``[lo, hi]``; the error names ``owner.bits``."""
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer):
        raise ValueError(f"{owner}.bits must be an integer, got {bits!r}")
    if not lo <= int(bits) <= hi:
        raise ValueError(f"{owner}.bits = {bits} is out of range [{lo}, {hi}]")
    return int(bits)


def check_gain(owner: str, gain: float) -> float:
    """A comparator gain: finite and ``>= 1`` V/V."""
    g = check_pos(owner, "comparator_gain_v_per_v", gain)
    if g < 1.0:
        raise ValueError(f"{owner}.comparator_gain_v_per_v = {g!r} must be >= 1")
    return g


class AdcParamsBase:
    """Derived quantities every ADC parameter dataclass has (mixed into a frozen dataclass
    holding ``bits``, ``v_ref_v`` and ``clock_hz``)."""

    bits: int
    v_ref_v: float
    clock_hz: float

    @property
    def period_s(self) -> float:
        """Clock period (s)."""
        return 1.0 / self.clock_hz

    @property
    def lsb_v(self) -> float:
        """Ideal LSB, ``v_ref_v / 2**bits`` (V)."""
        return self.v_ref_v / 2**self.bits

    def key(self) -> str:
        """Short stable hash of every parameter (names the subcircuit)."""
        text = repr(tuple((f.name, getattr(self, f.name)) for f in fields(self)))  # type: ignore[arg-type]
        return hashlib.sha256(text.encode()).hexdigest()[:10]


class AdcParams(Protocol):
    """What the shared testbench and sub-circuit pieces read of an ADC's parameters."""

    @property
    def bits(self) -> int: ...
    @property
    def v_ref_v(self) -> float: ...
    @property
    def v_dd_v(self) -> float: ...
    @property
    def comparator_gain_v_per_v(self) -> float: ...
    @property
    def period_s(self) -> float: ...
    @property
    def cycles_per_conversion(self) -> int: ...


# ---------------------------------------------------------------------------------------
# sub-circuit pieces
# ---------------------------------------------------------------------------------------
def subckt_pins(bits: int) -> list[str]:
    """The pin names every ADC subcircuit has, in order:
    ``vin clk start vref vdd skip1 .. skip{N-1} b{N-1} .. b0 done``."""
    return [
        "vin",
        "clk",
        "start",
        "vref",
        "vdd",
        *[f"skip{m}" for m in range(1, bits)],
        *[f"b{i}" for i in range(bits - 1, -1, -1)],
        "done",
    ]


def tanh_comparator(params: AdcParams, diff: str, offset_v: float) -> str:
    """B-source expression ``V_dd/2 (1 + tanh(2 G (diff - offset) / V_dd))`` of the
    comparator input expression ``diff``: it trips exactly at ``diff = offset_v``."""
    vdd = params.v_dd_v
    g = 2.0 * params.comparator_gain_v_per_v / vdd
    return f"{num(vdd / 2)}*(1+tanh({num(g)}*({diff}-({num(offset_v)}))))"


def digital_models(params: AdcParams, gates: Iterable[str]) -> list[str]:
    """The XSPICE models of an ADC subcircuit: the bridges in and out of the digital domain,
    the gates ``g_<gate>`` of ``gates``, the register ``g_dff`` and the latch ``g_latch``."""
    t = params.period_s
    dg = t * GATE_DELAY_FRAC
    dff = t * DFF_DELAY_FRAC
    te = t * CTRL_EDGE_FRAC
    vdd = params.v_dd_v
    gate = f"rise_delay={num(dg)} fall_delay={num(dg)} input_load=1e-15"
    return [
        f".model adc_in adc_bridge(in_low={num(vdd / 2)} in_high={num(vdd / 2)} "
        f"rise_delay={num(dg)} fall_delay={num(dg)})",
        f".model dac_ctl dac_bridge(out_low=0 out_high=1 out_undef=0.5 input_load=1e-15 "
        f"t_rise={num(te)} t_fall={num(te)})",
        f".model dac_out dac_bridge(out_low=0 out_high={num(vdd)} out_undef={num(vdd / 2)} "
        f"input_load=1e-15 t_rise={num(te)} t_fall={num(te)})",
        *(f".model g_{g} d_{g}({gate})" for g in gates),
        f".model g_dff d_dff(clk_delay={num(dff)} set_delay={num(dg)} reset_delay={num(dg)} "
        f"ic=0 rise_delay={num(dg)} fall_delay={num(dg)} data_load=1e-15 clk_load=1e-15)",
        f".model g_latch d_dlatch(data_delay={num(dg)} enable_delay={num(dg)} "
        f"set_delay={num(dg)} reset_delay={num(dg)} ic=0 rise_delay={num(dg)} "
        f"fall_delay={num(dg)} data_load=1e-15 enable_load=1e-15)",
    ]


def digital_inputs(bits: int) -> list[str]:
    """``clk``, ``start`` and the skip pins into the digital domain, and the inverted
    clock ``d_nclk``."""
    ins = ["clk", "start", *[f"skip{m}" for m in range(1, bits)]]
    return [
        f"ain [{' '.join(ins)}] [{' '.join('d_' + s for s in ins)}] adc_in",
        "ancl d_clk d_nclk g_inverter",
    ]


def energy_switch(tag: str, c_f: float, on: str, off: str, period_s: float) -> list[str]:
    """A capacitor ``c_f`` charged from ``vdd`` through a switch while ``on`` is high and
    discharged while ``off`` is: ``c_f V_dd**2`` from ``vdd`` per charge."""
    r = period_s * ENERGY_TAU_FRAC / c_f
    return [
        f".model sw_{tag} sw(vt=0.75 vh=0.05 ron={num(r)} roff={num(R_OFF_OHM)})",
        f"C{tag} e{tag} 0 {num(c_f)}",
        f"S{tag}c vdd e{tag} {on} 0 sw_{tag}",
        f"S{tag}d e{tag} 0 {off} 0 sw_{tag}",
    ]


# ---------------------------------------------------------------------------------------
# the conversion testbench
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConversionTiming:
    """Times of a testbench with ``n`` conversions (s); ``E_0(f) = t0 + f * frame``."""

    t0_s: float
    period_s: float
    frame_s: float
    n: int

    def start_s(self, f: np.ndarray | int) -> np.ndarray:
        """Rising edge ``E_0`` that begins conversion ``f``."""
        return self.t0_s + np.asarray(f, dtype=float) * self.frame_s

    @property
    def t_stop_s(self) -> float:
        """End of the transient: in the last conversion's done cycle, after its read-out."""
        return float(self.start_s(self.n)) - 0.2 * self.period_s


_T = TypeVar("_T", bound=ConversionTiming)


def conversion_timing(cls: type[_T], params: AdcParams, n: int) -> _T:
    """Timing of a conversion testbench of ``params`` for ``n`` conversions."""
    t = params.period_s
    return cls(TB_T0_CYCLES * t, t, params.cycles_per_conversion * t, int(n))


def check_conversions(v_in: np.ndarray, skip: np.ndarray | int, bits: int) -> tuple[Any, Any]:
    """The inputs (V) and skip counts of a conversion testbench, one per conversion."""
    v = np.asarray(v_in, dtype=float).reshape(-1)
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError("v_in must hold at least one finite voltage")
    k = np.broadcast_to(np.asarray(skip), v.shape).astype(int)
    if np.any(k < 0) or np.any(k > bits - 1):
        raise ValueError(f"skip counts must lie in 0..{bits - 1} for a {bits}-bit ADC")
    return v, k


def conversion_testbench(
    title: str,
    subckt: str,
    name: str,
    params: AdcParams,
    tm: ConversionTiming,
    v: np.ndarray,
    k: np.ndarray,
    meters: Sequence[str],
    tail: Sequence[str],
    vectors: Sequence[str],
) -> str:
    """A transient converting ``v[f]`` with ``k[f]`` skip pins high, back to back.

    ``subckt`` (named ``name``) is the ADC; ``meters`` the sources whose charge is metered
    (node ``q<source without its V>``); ``tail`` lines follow the meters; ``vectors`` are
    saved.
    """
    p = params
    n_bits = p.bits
    t = p.period_s
    tr = t * CLK_EDGE_FRAC
    vdd = p.v_dd_v
    f = np.arange(v.size)
    t_change = tm.start_s(f[1:]) + TB_CHANGE_CYCLES * t
    L = [f"* cosim {title} testbench: {n_bits} bits, {v.size} conversions"]
    a = L.append
    a(subckt.rstrip("\n"))
    a(f"Vref vref 0 DC {num(p.v_ref_v)}")
    a(f"Vdd vdd 0 DC {num(vdd)}")
    a(f"Vin vin 0 {pwl_steps(t_change, v[1:], tr, v[0])}")
    a(
        f"Vclk clk 0 PULSE(0 {num(vdd)} {num(tm.t0_s - tr / 2)} {num(tr)} {num(tr)} "
        f"{num(t / 2 - tr)} {num(t)})"
    )
    a(
        f"Vstart start 0 PULSE(0 {num(vdd)} {num(tm.t0_s - t / 2 - tr / 2)} {num(tr)} {num(tr)} "
        f"{num(t - tr)} {num(tm.frame_s)})"
    )
    for m in range(1, n_bits):
        lv = np.where(k >= m, vdd, 0.0)
        a(f"Vskip{m} skip{m} 0 {pwl_steps(t_change, lv[1:], tr, float(lv[0]))}")
    a(f"Xadc {' '.join(subckt_pins(n_bits))} {name}")
    # charge meters: a CCCS copies each source's current into a 1 pF capacitor, so that
    # v(q*) = charge / 1 pF integrated by ngspice's own method (exact charge bookkeeping)
    for src in meters:
        a(f"Fq{src[1:]} q{src[1:]} 0 {src} 1")
        a(f"Cq{src[1:]} q{src[1:]} 0 {num(Q_METER_F)}")
        a(f"Rq{src[1:]} q{src[1:]} 0 1e15")
    L.extend(tail)
    weights = "+".join(f"v(b{i})*{2**i}" for i in range(n_bits))
    a(f"Bcode code 0 V=({weights})/{num(vdd)}")
    a(f".save {' '.join(vectors)}")
    a(f".tran {num(t / 4)} {num(tm.t_stop_s)}")
    a(".end")
    return "\n".join(L) + "\n"


def decode_codes(
    title: str, t: np.ndarray, code: Any, e0: np.ndarray, period_s: float
) -> np.ndarray:
    """The output word of each conversion (int64), read in its done cycle; a word that is
    not a valid logic word is an error naming the ``title`` testbench."""
    code_v = np.interp(e0[1:] + TB_READ_CYCLES * period_s, t, np.asarray(code))
    codes = np.rint(code_v).astype(np.int64)
    if np.any(np.abs(code_v - codes) > 0.05):
        bad = int(np.argmax(np.abs(code_v - codes)))
        raise ValueError(
            f"{title} testbench output of conversion {bad} is not a valid logic word "
            f"({code_v[bad]:.3f}); the run did not finish or the netlist is broken"
        )
    return codes


def window_charges(result: Any, meter: str, t: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Charge through the metered source of node ``meter`` in each window between
    consecutive ``edges`` (C)."""
    return np.diff(np.interp(edges, t, np.asarray(result[meter]))) * Q_METER_F


def meter_energies(
    result: Any, params: AdcParams, t: np.ndarray, edges: np.ndarray
) -> dict[str, np.ndarray]:
    """``e_ref_j`` and ``e_dd_j``: the energy from the reference and the supply in each
    window (J)."""
    return {
        key: volt * window_charges(result, meter, t, edges)
        for key, meter, volt in (
            ("e_ref_j", "qref", params.v_ref_v),
            ("e_dd_j", "qdd", params.v_dd_v),
        )
    }


def first_crossing(x: np.ndarray, y: np.ndarray, what: str) -> float:
    """``x`` where ``y`` first changes sign (linear interpolation); ``what`` names the
    output in the error when it never does."""
    s = np.flatnonzero(np.diff(np.sign(y)) != 0)
    if s.size == 0:
        raise ValueError(f"{what} never crossed V_dd/2 in the trip sweep")
    j = s[0]
    return float(x[j] - y[j] * (x[j + 1] - x[j]) / (y[j + 1] - y[j]))


def trip_sweep_low(offset_v: float, span_v: float, step_v: float) -> float:
    """Start of a comparator trip sweep over ``[-|offset| - span, |offset| + span]`` on the
    ``step_v`` grid (the sweep ends at its negative)."""
    if span_v <= 0 or step_v <= 0:
        raise ValueError("span_v and step_v must be > 0")
    lim = abs(offset_v) + span_v
    return -math.ceil(lim / step_v) * step_v
