"""SAR ADC testbenches (a sequence of conversions in one transient; the comparator trip
sweep) and their decoders."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from netlists.common import num, pwl_steps
from netlists.sar_adc.params import CLK_EDGE_FRAC, SarAdcParams
from netlists.sar_adc.subckt import comparator_expr, sar_adc_subckt, subckt_name, subckt_pins

_TB_T0_CYCLES = 1.0  # first conversion starts one clock period after t = 0
_TB_CHANGE_CYCLES = -0.8  # input/skip change this many periods from the next E_0
_TB_READ_CYCLES = -0.5  # output bits are read here (in the done cycle)
_TB_WINDOW_CYCLES = -0.25  # energy windows start/end here (a quiet instant)
_TB_DECIDE_CYCLES = -0.05  # top plate read this many periods before a deciding edge
_Q_METER_F = 1e-12  # capacitance of the charge meters (1 V = 1 pC)


@dataclass(frozen=True)
class SarTestbenchTiming:
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


def sar_testbench_timing(params: SarAdcParams, n: int) -> SarTestbenchTiming:
    """Timing of :func:`sar_testbench_netlist` for ``n`` conversions."""
    t = params.period_s
    return SarTestbenchTiming(_TB_T0_CYCLES * t, t, params.cycles_per_conversion * t, int(n))


def sar_testbench_netlist(
    params: SarAdcParams, v_in: np.ndarray, skip: np.ndarray | int = 0
) -> str:
    """One transient converting every ``v_in[f]`` with ``skip[f]`` skipped MSB cycles.

    Parameters
    ----------
    params
        The ADC instance.
    v_in
        Input voltages (V), one per conversion; held by a PWL source that changes once per
        conversion period, in the previous conversion's done cycle.
    skip
        Skipped MSB cycles per conversion (``0 .. bits-1``), scalar or one per input; drives
        the ``skip`` pins as a thermometer code.

    Returns
    -------
    str
        Netlist text; decode its run with :func:`decode_testbench`. Saved vectors:
        :func:`sar_testbench_vectors`.

    Examples
    --------
    >>> from cosim.card import load_card
    >>> from cosim.circuits import sar_adc_params
    >>> p = sar_adc_params(load_card()).with_bits(3)
    >>> net = sar_testbench_netlist(p, np.array([0.1, 0.5]), np.array([0, 1]))
    >>> net.splitlines()[0]
    '* cosim SAR ADC testbench: 3 bits, 2 conversions'
    """
    p = params
    n_bits = p.bits
    v = np.asarray(v_in, dtype=float).reshape(-1)
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError("v_in must hold at least one finite voltage")
    k = np.broadcast_to(np.asarray(skip), v.shape).astype(int)
    if np.any(k < 0) or np.any(k > n_bits - 1):
        raise ValueError(f"skip counts must lie in 0..{n_bits - 1} for a {n_bits}-bit ADC")
    tm = sar_testbench_timing(p, v.size)
    t = p.period_s
    tr = t * CLK_EDGE_FRAC
    vdd = p.v_dd_v
    f = np.arange(v.size)
    t_change = tm.start_s(f[1:]) + _TB_CHANGE_CYCLES * t
    name = subckt_name(p)
    L = [f"* cosim SAR ADC testbench: {n_bits} bits, {v.size} conversions"]
    a = L.append
    a(sar_adc_subckt(p, name).rstrip("\n"))
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
    pins = subckt_pins(n_bits)
    a(f"Xadc {' '.join(pins)} {name}")
    # charge meters: a CCCS copies each source's current into a 1 pF capacitor, so that
    # v(q*) = charge / 1 pF integrated by ngspice's own method (exact charge bookkeeping)
    for src in ("Vref", "Vdd", "Vin"):
        a(f"Fq{src[1:]} q{src[1:]} 0 {src} 1")
        a(f"Cq{src[1:]} q{src[1:]} 0 {num(_Q_METER_F)}")
        a(f"Rq{src[1:]} q{src[1:]} 0 1e15")
    weights = "+".join(f"v(b{i})*{2**i}" for i in range(n_bits))
    a(f"Bcode code 0 V=({weights})/{num(vdd)}")
    a(f".save {' '.join(sar_testbench_vectors())}")
    a(f".tran {num(t / 4)} {num(tm.t_stop_s)}")
    a(".end")
    return "\n".join(L) + "\n"


def sar_testbench_vectors() -> tuple[str, ...]:
    """Vectors :func:`decode_testbench` needs from a testbench run."""
    return ("time", "code", "xadc.top", "qref", "qdd", "qin")


def _interp(t: np.ndarray, y: np.ndarray, at: np.ndarray) -> np.ndarray:
    return np.interp(at, t, y)


def decode_testbench(result, params: SarAdcParams, n: int) -> dict[str, np.ndarray]:
    """Codes, energies and decision-instant probes of a :func:`sar_testbench_netlist` run.

    Parameters
    ----------
    result
        The :class:`~cosim.spice.runner.SpiceResult` of the testbench (vectors
        :func:`sar_testbench_vectors`).
    params
        The instance the testbench was written for.
    n
        Number of conversions in the testbench.

    Returns
    -------
    dict
        ``codes`` (int64, ``(n,)``); ``e_ref_j``, ``e_dd_j``: energy drawn from the
        reference and the supply per conversion (J, ``(n,)``); ``q_in_c``: charge drawn
        from the input source per conversion (C; its energy is ``v_in * q_in_c``, paid by
        the circuit driving the ADC);
        ``v_top_v``: top-plate voltage just before each bit's deciding clock edge,
        ``(n, bits)`` with column ``i`` = bit ``i`` (LSB first); ``v_top_done_v``: the
        top-plate voltage in the done cycle, with the final code on the DAC (``(n,)``, read
        at the quiet instant a quarter period before the next conversion; with one bit it
        separates the bit weight from the half-LSB shift, which every trial applies
        together); ``t_conv_s``: the conversion time (s).
    """
    p = params
    tm = sar_testbench_timing(p, n)
    t = np.asarray(result["time"], dtype=float)
    t_period = p.period_s
    e0 = tm.start_s(np.arange(n + 1))
    code_v = _interp(t, result["code"], e0[1:] + _TB_READ_CYCLES * t_period)
    codes = np.rint(code_v).astype(np.int64)
    if np.any(np.abs(code_v - codes) > 0.05):
        bad = int(np.argmax(np.abs(code_v - codes)))
        raise ValueError(
            f"SAR testbench output of conversion {bad} is not a valid logic word "
            f"({code_v[bad]:.3f}); the run did not finish or the netlist is broken"
        )
    edges = e0 + _TB_WINDOW_CYCLES * t_period
    out: dict[str, np.ndarray] = {"codes": codes}
    for key, meter, volt in (
        ("e_ref_j", "qref", p.v_ref_v),
        ("e_dd_j", "qdd", p.v_dd_v),
    ):
        charge = np.diff(_interp(t, result[meter], edges)) * _Q_METER_F
        out[key] = volt * charge
    # the input source only conducts while sampling, at the conversion's own input
    # voltage: its energy is v_in * q_in_c
    out["q_in_c"] = np.diff(_interp(t, result["qin"], edges)) * _Q_METER_F
    # top plate before each deciding edge: trial cycle j = N - i ends at E_0 + (j + 1) T
    bits = np.arange(p.bits)
    t_dec = e0[:-1, None] + ((p.bits - bits + 1) + _TB_DECIDE_CYCLES)[None, :] * t_period
    out["v_top_v"] = _interp(t, result["xadc.top"], t_dec.reshape(-1)).reshape(n, p.bits)
    out["v_top_done_v"] = _interp(t, result["xadc.top"], edges[1:])
    out["t_conv_s"] = np.asarray(p.conversion_time_s)
    return out


# ---------------------------------------------------------------------------------------
# comparator trip point
# ---------------------------------------------------------------------------------------
def comparator_trip_netlist(
    params: SarAdcParams, span_v: float = 0.01, step_v: float = 1e-6
) -> str:
    """DC sweep of the instance's comparator over top-plate voltages around its trip point.

    The sweep covers ``[-|V_os| - span_v, |V_os| + span_v]`` in ``step_v`` steps; decode it
    with :func:`decode_trip`.

    Examples
    --------
    >>> from cosim.card import load_card
    >>> from cosim.circuits import sar_adc_params
    >>> comparator_trip_netlist(sar_adc_params(load_card())).splitlines()[-2][:8]
    '.dc Vtop'
    """
    if span_v <= 0 or step_v <= 0:
        raise ValueError("span_v and step_v must be > 0")
    lim = abs(params.comparator_offset_v) + span_v
    lo = -math.ceil(lim / step_v) * step_v
    return (
        "\n".join(
            [
                f"* cosim SAR comparator trip point ({subckt_name(params)})",
                "Vtop top 0 0",
                f"Bcmp cmp 0 V={comparator_expr(params, 'v(top)')}",
                "Rload cmp 0 1e9",
                f".dc Vtop {num(lo)} {num(-lo)} {num(step_v)}",
                ".end",
            ]
        )
        + "\n"
    )


def decode_trip(result, params: SarAdcParams) -> float:
    """Top-plate voltage at which the comparator output crosses ``V_dd/2`` (V).

    The comparator keeps a bit below this voltage, so the comparator offset is its
    negative.
    """
    x = np.asarray(result["v-sweep"], dtype=float)
    y = np.asarray(result["cmp"], dtype=float) - params.v_dd_v / 2
    s = np.flatnonzero(np.diff(np.sign(y)) != 0)
    if s.size == 0:
        raise ValueError("the comparator output never crossed V_dd/2 in the trip sweep")
    j = s[0]
    return float(x[j] - y[j] * (x[j + 1] - x[j]) / (y[j + 1] - y[j]))
