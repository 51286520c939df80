"""SAR ADC testbenches (a sequence of conversions in one transient; the comparator trip
sweep) and their decoders."""

from __future__ import annotations

import numpy as np

from netlists.adc_common import (
    TB_WINDOW_CYCLES,
    ConversionTiming,
    check_conversions,
    conversion_testbench,
    conversion_timing,
    decode_codes,
    first_crossing,
    meter_energies,
    trip_sweep_low,
    window_charges,
)
from netlists.common import num
from netlists.sar_adc.params import SarAdcParams
from netlists.sar_adc.subckt import comparator_expr, sar_adc_subckt, subckt_name

_TB_DECIDE_CYCLES = -0.05  # top plate read this many periods before a deciding edge


class SarTestbenchTiming(ConversionTiming):
    """Times of a testbench with ``n`` conversions (s); ``E_0(f) = t0 + f * frame``."""


def sar_testbench_timing(params: SarAdcParams, n: int) -> SarTestbenchTiming:
    """Timing of :func:`sar_testbench_netlist` for ``n`` conversions."""
    return conversion_timing(SarTestbenchTiming, params, n)


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
    v, k = check_conversions(v_in, skip, params.bits)
    name = subckt_name(params)
    return conversion_testbench(
        "SAR ADC",
        sar_adc_subckt(params, name),
        name,
        params,
        sar_testbench_timing(params, v.size),
        v,
        k,
        meters=("Vref", "Vdd", "Vin"),
        tail=(),
        vectors=sar_testbench_vectors(),
    )


def sar_testbench_vectors() -> tuple[str, ...]:
    """Vectors :func:`decode_testbench` needs from a testbench run."""
    return ("time", "code", "xadc.top", "qref", "qdd", "qin")


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
    codes = decode_codes("SAR", t, result["code"], e0, t_period)
    edges = e0 + TB_WINDOW_CYCLES * t_period
    out: dict[str, np.ndarray] = {"codes": codes, **meter_energies(result, p, t, edges)}
    # the input source only conducts while sampling, at the conversion's own input
    # voltage: its energy is v_in * q_in_c
    out["q_in_c"] = window_charges(result, "qin", t, edges)
    # top plate before each deciding edge: trial cycle j = N - i ends at E_0 + (j + 1) T
    bits = np.arange(p.bits)
    t_dec = e0[:-1, None] + ((p.bits - bits + 1) + _TB_DECIDE_CYCLES)[None, :] * t_period
    top = result["xadc.top"]
    out["v_top_v"] = np.interp(t_dec.reshape(-1), t, top).reshape(n, p.bits)
    out["v_top_done_v"] = np.interp(edges[1:], t, top)
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
    lo = trip_sweep_low(params.comparator_offset_v, span_v, step_v)
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
    return first_crossing(x, y, "the comparator output")
