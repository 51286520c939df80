"""The flash ADC sub-circuit as ngspice text (see :mod:`netlists.flash_adc` for the circuit
and its pins)."""

from __future__ import annotations

from netlists.common import num
from netlists.flash_adc.params import (
    CTRL_EDGE_FRAC,
    DFF_DELAY_FRAC,
    ENERGY_TAU_FRAC,
    GATE_DELAY_FRAC,
    R_OFF_OHM,
    FlashAdcParams,
)


def subckt_name(params: FlashAdcParams) -> str:
    """Name of the subcircuit :func:`flash_adc_subckt` writes for ``params``."""
    return f"flash{params.bits}_{params.key()}"


def subckt_pins(bits: int) -> list[str]:
    """The pin names of the flash subcircuit, in order: the shared ADC pin order
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
    vdd = params.v_dd_v
    g = 2.0 * params.comparator_gain_v_per_v / vdd
    vos = params.comparator_offsets_v[k - 1]
    return f"{num(vdd / 2)}*(1+tanh({num(g)}*(({v_in})-({v_tap})-({num(vos)}))))"


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
    dg = t * GATE_DELAY_FRAC
    dff = t * DFF_DELAY_FRAC
    te = t * CTRL_EDGE_FRAC
    vdd = p.v_dd_v
    L: list[str] = [f".subckt {name} " + " ".join(subckt_pins(n))]
    a = L.append
    a(f"* {n}-bit flash ADC: resistor ladder, {m_cmp} comparators (cosim netlists.flash_adc)")
    # -- models (local to this subcircuit)
    a(
        f".model adc_in adc_bridge(in_low={num(vdd / 2)} in_high={num(vdd / 2)} "
        f"rise_delay={num(dg)} fall_delay={num(dg)})"
    )
    a(
        f".model dac_ctl dac_bridge(out_low=0 out_high=1 out_undef=0.5 input_load=1e-15 "
        f"t_rise={num(te)} t_fall={num(te)})"
    )
    a(
        f".model dac_out dac_bridge(out_low=0 out_high={num(vdd)} out_undef={num(vdd / 2)} "
        f"input_load=1e-15 t_rise={num(te)} t_fall={num(te)})"
    )
    gate = f"rise_delay={num(dg)} fall_delay={num(dg)} input_load=1e-15"
    for g in ("and", "or", "nand", "inverter", "buffer"):
        a(f".model g_{g} d_{g}({gate})")
    a(
        f".model g_dff d_dff(clk_delay={num(dff)} set_delay={num(dg)} reset_delay={num(dg)} "
        f"ic=0 rise_delay={num(dg)} fall_delay={num(dg)} data_load=1e-15 clk_load=1e-15)"
    )
    a(
        f".model g_latch d_dlatch(data_delay={num(dg)} enable_delay={num(dg)} "
        f"set_delay={num(dg)} reset_delay={num(dg)} ic=0 rise_delay={num(dg)} "
        f"fall_delay={num(dg)} data_load=1e-15 enable_load=1e-15)"
    )
    # -- resistor ladder from vref to ground: tap k between resistors k-1 and k
    taps = ["0"] + [f"tap{k}" for k in range(1, m_cmp + 1)] + ["vref"]
    for i, r in enumerate(p.r_ladder_ohm):
        a(f"Rl{i} {taps[i]} {taps[i + 1]} {num(r)}")
    # -- inputs to the digital domain
    skips = [f"skip{m}" for m in range(1, n)]
    ins = ["clk", "start", *skips]
    a(f"ain [{' '.join(ins)}] [{' '.join('d_' + s for s in ins)}] adc_in")
    a("ancl d_clk d_nclk g_inverter")
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
        r = t * ENERGY_TAU_FRAC / c
        a(f".model sw_{tag} sw(vt=0.75 vh=0.05 ron={num(r)} roff={num(R_OFF_OHM)})")
        a(f"C{tag} e{tag} 0 {num(c)}")
        a(f"S{tag}c vdd e{tag} {on} 0 sw_{tag}")
        a(f"S{tag}d e{tag} 0 {off} 0 sw_{tag}")
    a(f".ends {name}")
    return "\n".join(L) + "\n"
