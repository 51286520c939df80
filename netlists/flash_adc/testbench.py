"""Flash ADC testbenches (a sequence of conversions in one transient; the comparators' trip
sweep) and their decoders."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from netlists.common import num, pwl_steps
from netlists.flash_adc.params import CLK_EDGE_FRAC, FlashAdcParams
from netlists.flash_adc.subckt import comparator_expr, flash_adc_subckt, subckt_name, subckt_pins

_TB_T0_CYCLES = 1.0  # first conversion starts one clock period after t = 0
_TB_CHANGE_CYCLES = -0.8  # input/skip change this many periods from the next E_0
_TB_READ_CYCLES = -0.5  # output bits are read here (in the done cycle)
_TB_WINDOW_CYCLES = -0.25  # energy windows start/end here (a quiet instant)
_TB_DECIDE_CYCLES = 0.95  # taps read this many periods after E_0 (just before the latch)
_Q_METER_F = 1e-12  # capacitance of the charge meters (1 V = 1 pC)


@dataclass(frozen=True)
class FlashTestbenchTiming:
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


def flash_testbench_timing(params: FlashAdcParams, n: int) -> FlashTestbenchTiming:
    """Timing of :func:`flash_testbench_netlist` for ``n`` conversions."""
    t = params.period_s
    return FlashTestbenchTiming(_TB_T0_CYCLES * t, t, params.cycles_per_conversion * t, int(n))


def flash_testbench_netlist(
    params: FlashAdcParams, v_in: np.ndarray, skip: np.ndarray | int = 0
) -> str:
    """One transient converting every ``v_in[f]`` with ``skip[f]`` MSBs known to be 0.

    Conversions follow back to back, one every :attr:`FlashAdcParams.conversion_time_s`
    (2 clock periods), so the ladder's static current over a conversion window is the
    ladder energy of one conversion.

    Parameters
    ----------
    params
        The ADC instance.
    v_in
        Input voltages (V), one per conversion; held by a PWL source that changes once per
        conversion, in the previous conversion's done cycle.
    skip
        Skip counts per conversion (``0 .. bits-1``), scalar or one per input; drives the
        ``skip`` pins as a thermometer code (``skip1 .. skip{k}`` high).

    Returns
    -------
    str
        Netlist text; decode its run with :func:`decode_testbench`. Saved vectors:
        :func:`flash_testbench_vectors`.

    Examples
    --------
    >>> from cosim.card import load_card
    >>> from cosim.circuits import flash_adc_params
    >>> p = flash_adc_params(load_card(), 3)
    >>> net = flash_testbench_netlist(p, np.array([0.1, 0.5]), np.array([0, 1]))
    >>> net.splitlines()[0]
    '* cosim flash ADC testbench: 3 bits, 2 conversions'
    """
    p = params
    n_bits = p.bits
    v = np.asarray(v_in, dtype=float).reshape(-1)
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError("v_in must hold at least one finite voltage")
    k = np.broadcast_to(np.asarray(skip), v.shape).astype(int)
    if np.any(k < 0) or np.any(k > n_bits - 1):
        raise ValueError(f"skip counts must lie in 0..{n_bits - 1} for a {n_bits}-bit ADC")
    tm = flash_testbench_timing(p, v.size)
    t = p.period_s
    tr = t * CLK_EDGE_FRAC
    vdd = p.v_dd_v
    f = np.arange(v.size)
    t_change = tm.start_s(f[1:]) + _TB_CHANGE_CYCLES * t
    name = subckt_name(p)
    L = [f"* cosim flash ADC testbench: {n_bits} bits, {v.size} conversions"]
    a = L.append
    a(flash_adc_subckt(p, name).rstrip("\n"))
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
    # v(q*) = charge / 1 pF integrated by ngspice's own method; they start at 0 V (.ic),
    # since the ladder's static current would otherwise hold them at I * 1e15 ohm
    for src in ("Vref", "Vdd"):
        a(f"Fq{src[1:]} q{src[1:]} 0 {src} 1")
        a(f"Cq{src[1:]} q{src[1:]} 0 {num(_Q_METER_F)}")
        a(f"Rq{src[1:]} q{src[1:]} 0 1e15")
    a(".ic v(qref)=0 v(qdd)=0")
    weights = "+".join(f"v(b{i})*{2**i}" for i in range(n_bits))
    a(f"Bcode code 0 V=({weights})/{num(vdd)}")
    a(f".save {' '.join(flash_testbench_vectors(n_bits))}")
    a(f".tran {num(t / 4)} {num(tm.t_stop_s)}")
    a(".end")
    return "\n".join(L) + "\n"


def flash_testbench_vectors(bits: int | None = None) -> tuple[str, ...]:
    """Vectors :func:`decode_testbench` needs from a testbench run: codes and energies, and
    with ``bits`` the ``2**bits - 1`` tap voltages too (the characterization measures
    them; the codes need none)."""
    taps = () if bits is None else tuple(f"xadc.tap{k}" for k in range(1, 2**bits))
    return ("time", "code", "qref", "qdd", *taps)


def decode_testbench(result: Any, params: FlashAdcParams, n: int) -> dict[str, np.ndarray]:
    """Codes, energies and tap voltages of a :func:`flash_testbench_netlist` run.

    Parameters
    ----------
    result
        The :class:`~cosim.spice.runner.SpiceResult` of the testbench (vectors
        :func:`flash_testbench_vectors`).
    params
        The instance the testbench was written for.
    n
        Number of conversions in the testbench.

    Returns
    -------
    dict
        ``codes`` (int64, ``(n,)``); ``e_ref_j``, ``e_dd_j``: energy drawn from the
        reference (the ladder) and the supply (comparators, logic) per conversion (J,
        ``(n,)``); ``v_tap_v``: every tap voltage just before each conversion's latching
        edge, ``(n, 2**bits - 1)`` (V), when the run returned the taps
        (``flash_testbench_vectors(bits)``); ``t_conv_s``: the conversion time (s).

    Raises
    ------
    ValueError
        An output word that is not a valid logic word (the run did not finish).
    """
    p = params
    tm = flash_testbench_timing(p, n)
    t = np.asarray(result["time"], dtype=float)
    tp = p.period_s
    e0 = tm.start_s(np.arange(n + 1))
    code_v = np.interp(e0[1:] + _TB_READ_CYCLES * tp, t, np.asarray(result["code"]))
    codes = np.rint(code_v).astype(np.int64)
    if np.any(np.abs(code_v - codes) > 0.05):
        bad = int(np.argmax(np.abs(code_v - codes)))
        raise ValueError(
            f"flash testbench output of conversion {bad} is not a valid logic word "
            f"({code_v[bad]:.3f}); the run did not finish or the netlist is broken"
        )
    edges = e0 + _TB_WINDOW_CYCLES * tp
    out: dict[str, np.ndarray] = {"codes": codes}
    for key, meter, volt in (("e_ref_j", "qref", p.v_ref_v), ("e_dd_j", "qdd", p.v_dd_v)):
        charge = np.diff(np.interp(edges, t, np.asarray(result[meter]))) * _Q_METER_F
        out[key] = volt * charge
    if "xadc.tap1" in result:
        t_dec = e0[:-1] + _TB_DECIDE_CYCLES * tp
        out["v_tap_v"] = np.stack(
            [
                np.interp(t_dec, t, np.asarray(result[f"xadc.tap{k}"]))
                for k in range(1, p.n_comparators + 1)
            ],
            axis=1,
        )
    out["t_conv_s"] = np.asarray(p.conversion_time_s)
    return out


# ---------------------------------------------------------------------------------------
# comparator trip points
# ---------------------------------------------------------------------------------------
def comparator_trip_netlist(
    params: FlashAdcParams, span_v: float = 0.01, step_v: float = 1e-6
) -> str:
    """DC sweep of every comparator of the instance, its tap grounded, over input voltages
    around the trip points; decode it with :func:`decode_trip`.

    The sweep covers ``[-max|V_os| - span_v, max|V_os| + span_v]`` in ``step_v`` steps.

    Examples
    --------
    >>> from cosim.card import load_card
    >>> from cosim.circuits import flash_adc_params
    >>> comparator_trip_netlist(flash_adc_params(load_card(), 2)).splitlines()[-2][:7]
    '.dc Vin'
    """
    if span_v <= 0 or step_v <= 0:
        raise ValueError("span_v and step_v must be > 0")
    lim = float(np.max(np.abs(params.comparator_offsets_v))) + span_v
    lo = -math.ceil(lim / step_v) * step_v
    lines = [f"* cosim flash comparator trip points ({subckt_name(params)})", "Vin vin 0 0"]
    for k in range(1, params.n_comparators + 1):
        lines.append(f"Bc{k} c{k} 0 V={comparator_expr(params, k, 'v(vin)', '0')}")
        lines.append(f"Rl{k} c{k} 0 1e9")
    lines += [f".dc Vin {num(lo)} {num(-lo)} {num(step_v)}", ".end"]
    return "\n".join(lines) + "\n"


def trip_vectors(params: FlashAdcParams) -> tuple[str, ...]:
    """Vectors :func:`decode_trip` needs."""
    return ("v-sweep", *(f"c{k}" for k in range(1, params.n_comparators + 1)))


def decode_trip(result: Any, params: FlashAdcParams) -> np.ndarray:
    """Input-minus-tap voltage at which each comparator's output crosses ``V_dd/2`` (V),
    comparator ``k`` at index ``k - 1``: the comparators' measured offsets."""
    x = np.asarray(result["v-sweep"], dtype=float)
    out = np.empty(params.n_comparators)
    for k in range(1, params.n_comparators + 1):
        y = np.asarray(result[f"c{k}"], dtype=float) - params.v_dd_v / 2
        s = np.flatnonzero(np.diff(np.sign(y)) != 0)
        if s.size == 0:
            raise ValueError(f"comparator {k} never crossed V_dd/2 in the trip sweep")
        j = s[0]
        out[k - 1] = x[j] - y[j] * (x[j + 1] - x[j]) / (y[j + 1] - y[j])
    return out
