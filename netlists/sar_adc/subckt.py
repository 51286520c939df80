"""The SAR ADC sub-circuit as ngspice text (see :mod:`netlists.sar_adc` for the circuit and
its pins)."""

from __future__ import annotations

from netlists.adc_common import (
    R_OFF_OHM,
    digital_inputs,
    digital_models,
    energy_switch,
    subckt_pins,
    tanh_comparator,
)
from netlists.common import num
from netlists.sar_adc.params import SarAdcParams

__all__ = ["comparator_expr", "sar_adc_subckt", "subckt_name", "subckt_pins"]


def subckt_name(params: SarAdcParams) -> str:
    """Name of the subcircuit :func:`sar_adc_subckt` writes for ``params``."""
    return f"sar{params.bits}_{params.key()}"


def comparator_expr(params: SarAdcParams, v_top: str) -> str:
    """The comparator's B-source expression of the top-plate voltage expression ``v_top``."""
    return tanh_comparator(params, f"-({v_top})", params.comparator_offset_v)


def sar_adc_subckt(params: SarAdcParams, name: str | None = None) -> str:
    """``.subckt`` text of one SAR ADC instance (pins: :func:`subckt_pins`).

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
    >>> from cosim.circuits import sar_adc_params
    >>> text = sar_adc_subckt(sar_adc_params(load_card()).with_bits(2))
    >>> text.splitlines()[0].split()[2:]
    ['vin', 'clk', 'start', 'vref', 'vdd', 'skip1', 'b1', 'b0', 'done']
    """
    p = params
    n = p.bits
    t = p.period_s
    name = name or subckt_name(p)
    L: list[str] = [f".subckt {name} " + " ".join(subckt_pins(n))]
    a = L.append
    a(f"* {n}-bit charge-redistribution SAR ADC (cosim netlists.sar_adc)")
    # -- models (local to this subcircuit)
    a(f".model sw_dac sw(vt=0.75 vh=0.05 ron={num(p.r_switch_ohm)} roff={num(R_OFF_OHM)})")
    L.extend(digital_models(p, ("and", "or", "nand", "nor", "inverter", "buffer")))
    # -- inputs to the digital domain
    L.extend(digital_inputs(n))
    # skip latches: transparent while start is high; en_i = not skip_{N-i}
    en: dict[int, str | None] = {0: None}
    for m in range(1, n):
        a(f"alat{m} d_skip{m} d_start NULL NULL d_sk{m} d_en{n - m} g_latch")
        en[n - m] = f"d_en{n - m}"
    # -- token chain: s (sample), t1..tN (bit trials), t{N+1} (done)
    tok = ["d_s"] + [f"d_t{j}" for j in range(1, n + 2)]
    a("ats d_start d_clk NULL NULL d_s d_ns0 g_dff")
    for j in range(1, n + 2):
        a(f"at{j} {tok[j - 1]} d_clk NULL NULL {tok[j]} d_nt{j} g_dff")
    a("ans d_s d_ns g_inverter")
    # -- comparator
    a(f"Bcmp cmp 0 V={comparator_expr(p, 'v(top)')}")
    a("acmp [cmp] [d_cmp] adc_in")
    # -- one register per bit
    act_terms = []
    for i in range(n - 1, -1, -1):
        j = n - i  # trial cycle of bit i
        set_sig, dec_sig = tok[j - 1], tok[j]
        if en[i] is None:
            se, ae = set_sig, dec_sig
        else:
            se, ae = f"d_se{i}", f"d_ae{i}"
            a(f"ase{i} [{set_sig} {en[i]}] {se} g_and")
            a(f"aae{i} [{dec_sig} {en[i]}] {ae} g_and")
        act_terms.append(ae)
        a(f"akc{i} [{ae} d_cmp] d_kc{i} g_and")
        nor_in = ["d_s", dec_sig] if set_sig == "d_s" else ["d_s", set_sig, dec_sig]
        a(f"anh{i} [{' '.join(nor_in)}] d_nh{i} g_nor")
        a(f"ahq{i} [d_q{i} d_nh{i}] d_hq{i} g_and")
        a(f"ad{i} [{se} d_kc{i} d_hq{i}] d_d{i} g_or")
        a(f"aq{i} d_d{i} d_clk NULL NULL d_q{i} d_qb{i} g_dff")
        a(f"acr{i} [d_ns d_q{i}] d_cref{i} g_and")
        a(f"acg{i} [d_ns d_qb{i}] d_cgnd{i} g_and")
    # sample controls: top plate opens one gate delay before the bottom plates move
    a("atop d_s d_ctop g_buffer")
    a("asb1 d_s d_sb1 g_buffer")
    a("asb2 d_sb1 d_csamp g_buffer")
    a("ahg d_ns d_chgnd g_buffer")
    # activity: a comparison in every enabled trial cycle; logic in those and the sample
    if len(act_terms) == 1:
        a(f"aact {act_terms[0]} d_act g_buffer")
    else:
        a(f"aact [{' '.join(act_terms)}] d_act g_or")
    a("alg [d_s d_act] d_lact g_or")
    a("afc [d_act d_nclk] d_fc g_and")
    a("anfc [d_act d_nclk] d_nfc g_nand")
    a("afl [d_lact d_nclk] d_fl g_and")
    a("anfl [d_lact d_nclk] d_nfl g_nand")
    # -- digital -> switch controls (0/1 V)
    ctl = ["ctop", "csamp", "chgnd", "fc", "nfc", "fl", "nfl"]
    for i in range(n):
        ctl += [f"cref{i}", f"cgnd{i}"]
    a(f"actl [{' '.join('d_' + c for c in ctl)}] [{' '.join('a_' + c for c in ctl)}] dac_ctl")
    # -- capacitor array
    a("Srst top 0 a_ctop 0 sw_dac")
    if p.c_parasitic_f > 0:
        a(f"Cpar top 0 {num(p.c_parasitic_f)}")
    for i, c in enumerate(p.c_bits_f):
        a(f"C{i} top bp{i} {num(c)}")
        a(f"Sin{i} bp{i} vin a_csamp 0 sw_dac")
        a(f"Sref{i} bp{i} vref a_cref{i} 0 sw_dac")
        a(f"Sgnd{i} bp{i} 0 a_cgnd{i} 0 sw_dac")
    a(f"Cd top bpd {num(p.c_dummy_f)}")
    a("Sind bpd vin a_csamp 0 sw_dac")
    a("Sgndd bpd 0 a_chgnd 0 sw_dac")
    a(f"Ch top bph {num(p.c_half_f)}")
    a("Srefh bph vref a_csamp 0 sw_dac")
    a("Sgndh bph 0 a_chgnd 0 sw_dac")
    # -- energy of the comparator and the logic, from vdd
    for tag, c, on, off in (
        ("cmp", p.c_comparator_f, "a_fc", "a_nfc"),
        ("lgc", p.c_logic_f, "a_fl", "a_nfl"),
    ):
        if c <= 0:
            continue
        L.extend(energy_switch(tag, c, on, off, t))
    # -- outputs
    outs = [f"d_q{i}" for i in range(n - 1, -1, -1)] + [tok[-1]]
    pins = [f"b{i}" for i in range(n - 1, -1, -1)] + ["done"]
    a(f"aout [{' '.join(outs)}] [{' '.join(pins)}] dac_out")
    a(f".ends {name}")
    return "\n".join(L) + "\n"
