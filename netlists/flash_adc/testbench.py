"""Flash ADC testbenches (a sequence of conversions in one transient; the comparators' trip
sweep) and their decoders."""

from __future__ import annotations

from typing import Any

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
)
from netlists.common import num
from netlists.flash_adc.params import FlashAdcParams
from netlists.flash_adc.subckt import comparator_expr, flash_adc_subckt, subckt_name

_TB_DECIDE_CYCLES = 0.95  # taps read this many periods after E_0 (just before the latch)


class FlashTestbenchTiming(ConversionTiming):
    """Times of a testbench with ``n`` conversions (s); ``E_0(f) = t0 + f * frame``."""


def flash_testbench_timing(params: FlashAdcParams, n: int) -> FlashTestbenchTiming:
    """Timing of :func:`flash_testbench_netlist` for ``n`` conversions."""
    return conversion_timing(FlashTestbenchTiming, params, n)


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
    v, k = check_conversions(v_in, skip, params.bits)
    name = subckt_name(params)
    return conversion_testbench(
        "flash ADC",
        flash_adc_subckt(params, name),
        name,
        params,
        flash_testbench_timing(params, v.size),
        v,
        k,
        meters=("Vref", "Vdd"),
        # the meters start at 0 V, since the ladder's static current would otherwise hold
        # them at I * 1e15 ohm
        tail=(".ic v(qref)=0 v(qdd)=0",),
        vectors=flash_testbench_vectors(params.bits),
    )


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
    codes = decode_codes("flash", t, result["code"], e0, tp)
    edges = e0 + TB_WINDOW_CYCLES * tp
    out: dict[str, np.ndarray] = {"codes": codes, **meter_energies(result, p, t, edges)}
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
    lo = trip_sweep_low(float(np.max(np.abs(params.comparator_offsets_v))), span_v, step_v)
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
        out[k - 1] = first_crossing(x, y, f"comparator {k}")
    return out
