"""The flash ADC sub-circuit as ngspice text (see :mod:`netlists.flash_adc` for the circuit
and its pins)."""

from __future__ import annotations

from netlists.adc_common import (
    digital_inputs,
    digital_models,
    energy_switch,
    subckt_pins,
    tanh_comparator,
)
from netlists.common import num
from netlists.flash_adc.params import FlashAdcParams

__all__ = ["comparator_expr", "comparator_group", "flash_adc_subckt", "subckt_name", "subckt_pins"]


def subckt_name(params: FlashAdcParams) -> str:
    """Name of the subcircuit :func:`flash_adc_subckt` writes for ``params``."""
    return f"flash{params.bits}_{params.key()}"


def comparator_group(k: int) -> int:
    """Skip group of comparator ``k`` (1-based): ``j`` with ``2**j <= k < 2**(j + 1)``.

    Group ``j >= 1`` is power-gated when ``skip{N-j}`` or a higher skip pin is high
    (``N - j`` or more MSBs are known to be 0); group 0 (comparator 1) is never gated.

    Examples
    --------
    >>> [comparator_group(k) for k in range(1, 8)]
    [0, 1, 1, 2, 2, 2, 2]
    """
    return int(k).bit_length() - 1


def comparator_expr(params: FlashAdcParams, k: int, v_in: str, v_tap: str) -> str:
    """B-source expression of comparator ``k`` (1-based): ``V_dd/2 (1 + tanh(2 G (v_in -
    v_tap - V_os,k) / V_dd))``, read at ``V_dd/2``, so it trips exactly at
    ``v_in - v_tap = V_os,k``."""
    return tanh_comparator(params, f"({v_in})-({v_tap})", params.comparator_offsets_v[k - 1])


def flash_adc_subckt(params: FlashAdcParams, name: str | None = None) -> str:
    """``.subckt`` text of one flash ADC instance (pins: :func:`subckt_pins`).

    Parameters
    ----------
    params
        The instance.
    name
        Subcircuit name; default :func:`subckt_name`.

    Returns
    -------
    str
        The ``.subckt`` ... ``.ends`` block, models included (local to the subcircuit).

    Examples
    --------
    >>> from cosim.card import load_card
    >>> from cosim.circuits import flash_adc_params
    >>> text = flash_adc_subckt(flash_adc_params(load_card(), 2))
    >>> text.splitlines()[0].split()[2:]
    ['vin', 'clk', 'start', 'vref', 'vdd', 'skip1', 'b1', 'b0', 'done']
    """
    p = params
    n = p.bits
    m_cmp = p.n_comparators
    t = p.period_s
    name = name or subckt_name(p)
    vdd = p.v_dd_v
    L: list[str] = [f".subckt {name} " + " ".join(subckt_pins(n))]
    a = L.append
    a(f"* {n}-bit flash ADC: resistor ladder, {m_cmp} comparators (cosim netlists.flash_adc)")
    # -- models (local to this subcircuit)
    L.extend(digital_models(p, ("and", "or", "nand", "inverter", "buffer")))
    # -- resistor ladder from vref to ground: tap k between resistors k-1 and k
    taps = ["0"] + [f"tap{k}" for k in range(1, m_cmp + 1)] + ["vref"]
    for i, r in enumerate(p.r_ladder_ohm):
        a(f"Rl{i} {taps[i]} {taps[i + 1]} {num(r)}")
    # -- inputs to the digital domain
    L.extend(digital_inputs(n))
    # skip latches (transparent while start is high) and the gating of each group:
    # g{m} = skip{m} or a higher skip pin; group j >= 1 is enabled when g{N-j} is low
    for m in range(1, n):
        a(f"alat{m} d_skip{m} d_start NULL NULL d_sk{m} d_nsk{m} g_latch")
    for m in range(n - 1, 0, -1):
        if m == n - 1:
            a(f"ag{m} d_sk{m} d_g{m} g_buffer")
        else:
            a(f"ag{m} [d_sk{m} d_g{m + 1}] d_g{m} g_or")
    en: dict[int, str | None] = {0: None}
    for j in range(1, n):
        a(f"aen{j} d_g{n - j} d_en{j} g_inverter")
        en[j] = f"d_en{j}"
    # -- tokens: s (compare, cycle 0), t1 (done, cycle 1)
    a("ats d_start d_clk NULL NULL d_s d_ns0 g_dff")
    a("at1 d_s d_clk NULL NULL d_t1 d_nt1 g_dff")
    a("ans d_s d_ns g_inverter")
    # -- comparators, each against its own tap with its own offset
    for k in range(1, m_cmp + 1):
        a(f"Bc{k} c{k} 0 V={comparator_expr(p, k, 'v(vin)', f'v(tap{k})')}")
    cs = " ".join(f"c{k}" for k in range(1, m_cmp + 1))
    a(f"acmp [{cs}] [{' '.join(f'd_c{k}' for k in range(1, m_cmp + 1))}] adc_in")
    # -- one register per comparator: loads the (enabled) decision at the edge ending cycle
    #    0, holds it until the next conversion's
    for k in range(1, m_cmp + 1):
        e = en[comparator_group(k)]
        load_in = f"d_s d_c{k}" if e is None else f"d_s {e} d_c{k}"
        a(f"ald{k} [{load_in}] d_ld{k} g_and")
        a(f"ahd{k} [d_ns d_q{k}] d_hd{k} g_and")
        a(f"ad{k} [d_ld{k} d_hd{k}] d_d{k} g_or")
        a(f"aq{k} d_d{k} d_clk NULL NULL d_q{k} d_qb{k} g_dff")
    # -- thermometer code and done to 0/V_dd voltages
    qs = [f"d_q{k}" for k in range(1, m_cmp + 1)]
    qa = [f"qa{k}" for k in range(1, m_cmp + 1)]
    a(f"aout [{' '.join(qs)} d_t1] [{' '.join(qa)} done] dac_out")
    # -- encoder: the count of ones (bubble-tolerant), its binary digits on b{i}
    a(f"Bcnt cnt 0 V=({'+'.join(f'v({q})' for q in qa)})/{num(vdd)}")
    for i in range(n):
        lo, hi = 2.0**i, 2.0 ** (i + 1)
        a(
            f"Bb{i} b{i} 0 V={num(vdd)}*(floor(v(cnt)/{num(lo)}+{num(0.5 / lo)})"
            f"-2*floor(v(cnt)/{num(hi)}+{num(0.5 / hi)}))"
        )
    # -- energy of the comparators (per enabled group) and the logic, from vdd, charged in
    #    the second half of the compare cycle and discharged otherwise
    ctl: list[str] = []
    energy: list[tuple[str, float, str, str]] = []
    for j in range(n):
        c = p.c_comparator_f * 2**j  # group j holds 2**j comparators
        if c <= 0:
            continue
        ins_j = "d_s d_nclk" if en[j] is None else f"d_s {en[j]} d_nclk"
        a(f"afc{j} [{ins_j}] d_fc{j} g_and")
        a(f"anfc{j} [{ins_j}] d_nfc{j} g_nand")
        ctl += [f"fc{j}", f"nfc{j}"]
        energy.append((f"cmp{j}", c, f"a_fc{j}", f"a_nfc{j}"))
    if p.c_logic_f > 0:
        a("afl [d_s d_nclk] d_fl g_and")
        a("anfl [d_s d_nclk] d_nfl g_nand")
        ctl += ["fl", "nfl"]
        energy.append(("lgc", p.c_logic_f, "a_fl", "a_nfl"))
    if ctl:
        a(f"actl [{' '.join('d_' + c for c in ctl)}] [{' '.join('a_' + c for c in ctl)}] dac_ctl")
    for tag, c, on, off in energy:
        L.extend(energy_switch(tag, c, on, off, t))
    a(f".ends {name}")
    return "\n".join(L) + "\n"
