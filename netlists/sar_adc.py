"""Charge-redistribution SAR ADC (1–8 bits) with a sparsity-aware MSB skip, for ngspice.

Circuit
-------
A binary-weighted capacitor array (McCreary & Gray bottom-plate sampling):

* capacitors ``C_i = 2**i C_u`` for bits ``i = 0 .. N-1`` (LSB first), a termination
  (dummy) capacitor ``C_d = C_u`` and a half-LSB capacitor ``C_h = C_u / 2``; a parasitic
  ``C_p`` from the top plate to ground;
* **sample** (cycle 0): the top plate is reset to ground; the bottom plates of the bit and
  dummy capacitors sit on the input, the half-LSB capacitor's on ``V_ref``. The top-plate
  switch opens one gate delay before the bottom plates leave the input (bottom-plate
  sampling), so the charge ``-C_s V_in - C_h V_ref`` (``C_s = sum C_i + C_d``) is trapped on
  the floating top plate at the first rising clock edge after sampling;
* **search** (cycles 1..N): each bottom plate switches to ``V_ref`` (bit set) or ground; the
  half-LSB and dummy capacitors are grounded. The top plate then sits at ::

      V_top = (V_ref * sum_i b_i C_i - C_s V_in - C_h V_ref) / C_tot,
      C_tot = sum_i C_i + C_d + C_h + C_p

  and the comparator keeps the trial bit when ``-V_top > V_os``. With nominal capacitors
  this is ``V_in > (code - 1/2) LSB``, ``LSB = V_ref / 2**N``: the ideal transfer
  ``code = clip(floor(V_in / LSB + 1/2), 0, 2**N - 1)`` of :mod:`cosim.quant`, the ReLU
  included (negative inputs give 0, inputs above full scale ``2**N - 1``). A top-plate
  parasitic only attenuates the comparator input; capacitor mismatch and the comparator
  offset move the transitions.

Every switch is an ngspice ``S`` element with ``r_switch_ohm`` on-resistance (``1e12`` ohm
off) and break-before-make thresholds (on above 0.8 V, off below 0.7 V of a 0/1 V control),
so the reference source ``vref`` supplies every coulomb the array takes: its current is
real and measured. The input source charges the sampling capacitors (that energy belongs to
the circuit driving the ADC and is reported separately by the testbench).

The comparator is a B-source ``V_dd/2 (1 + tanh(2 G (-V_top - V_os) / V_dd))`` (small-signal
gain ``G`` = ``comparator_gain_v_per_v``, instance offset ``V_os``) read by an
``adc_bridge`` at ``V_dd/2``, so its trip point is exactly ``V_os``; the finite gain only
blurs decisions within ``V_dd / (2 G)`` (5 µV at the default card) of the trip point. The
SAR logic is XSPICE digital (``d_dff``, ``d_dlatch``, gates, ``adc_bridge``/``dac_bridge``).

Energy model
------------
B-sources and XSPICE bridges draw no current, so every energy-consuming part is a real
element on a real source:

* **reference** (``vref`` pin): the capacitor array's switching charge, measured;
* **comparator** (``vdd`` pin): a capacitor ``c_comparator_f`` charged from ``vdd`` through a
  switch during the second half of every cycle in which a comparison is performed, and
  discharged to ground otherwise: ``c_comparator_f * V_dd**2`` per comparison (a dynamic
  latch reset to ``V_dd`` and discharged on every decision);
* **logic** (``vdd`` pin): a capacitor ``c_logic_f`` charged the same way in every *active*
  SAR cycle — the sample cycle and every bit cycle that is not skipped:
  ``c_logic_f * V_dd**2`` each. Skipped cycles are clock-gated and cost nothing.

So ``E_vdd = (n_comparisons * c_comparator_f + (n_active_bits + 1) * c_logic_f) V_dd**2``
with ``n_comparisons = n_active_bits = N - k``; the testbench measures it rather than
assuming it. These switches use an on-resistance giving a time constant of 1/40 of a clock
period so that they settle fully (the energy ``C V**2`` does not depend on it).

Timing and pins
---------------
One conversion takes ``N + 2`` clock cycles, counted from the rising clock edge ``E_0`` at
which ``start`` is sampled high: cycle 0 samples, cycle ``j = 1..N`` tries bit ``N - j``
(decided at the next rising edge), cycle ``N + 1`` ("done") holds the result. The subcircuit
(:func:`sar_adc_subckt`) has the pins, in order::

    vin clk start vref vdd skip1 .. skip{N-1} b{N-1} .. b0 done

``vin``
    Analog input (V); tracked during cycle 0 (it drives the sampling capacitance
    ``C_s ≈ 2**N C_u`` through ``r_switch_ohm``) and sampled at the rising clock edge that
    ends cycle 0; it may change freely afterwards.
``clk``, ``start``
    0/``V_dd`` logic levels (threshold ``V_dd/2``). ``start`` is sampled on rising ``clk``
    edges: make it high for one clock period around the edge that begins a conversion and
    low for the following ``N + 1`` edges.
``vref``, ``vdd``
    Reference and supply pins; connect them to real voltage sources to measure energy.
``skip1 .. skip{N-1}``
    Sparsity-aware MSB skip (0/``V_dd`` levels). ``skip{m}`` high forces bit ``N - m`` to 0
    and suppresses its cycle: no DAC switching, no comparison, no logic activity. A
    thermometer code (``skip1 .. skip{k}`` high) skips the ``k`` MSBs, so the search starts
    at bit ``N - 1 - k`` — exactly what the sense-row comparators produce (``skip{m}`` high
    when the column output is proved below ``2**(N-m)`` LSB). The pins are latched while
    ``start`` is high (transparent latch) and held until the next ``start``; a skipped bit
    reads 0, so skipping is only lossless when the true code is below ``2**(N-k)``. There
    are no skip pins for ``N = 1``.
``b{N-1} .. b0``
    Output bits (MSB first) as 0/``V_dd`` analog voltages (``dac_bridge``), valid from the
    start of the done cycle to the end of the next conversion's sample cycle.
``done``
    High (``V_dd``) during the done cycle.

Measured ngspice cost (ngspice 39, 2-core machine class): about 25 ms of wall time per
8-bit conversion in a 100-conversion testbench (22–37 ms depending on the machine's load;
about 1000 time points per conversion, most of them right after clock edges), about 17 ms
per 4-bit conversion. :data:`MEASURED_S_PER_CONVERSION_8BIT` records it.

Examples
--------
>>> from cosim.card import load_card
>>> from cosim.circuits import sar_adc_params
>>> p = sar_adc_params(load_card())
>>> p.bits, p.conversion_time_s
(8, 1e-07)
>>> ".subckt" in sar_adc_subckt(p)
True
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, fields, replace
from typing import TypedDict

import numpy as np

from netlists.common import num, pwl_steps
from netlists.mismatch import SarMismatch, sar_mismatch_units

#: Wall time of one 8-bit conversion in ngspice 39 inside a 100-conversion testbench (s),
#: measured on the 2-core machine class (see the module docstring).
MEASURED_S_PER_CONVERSION_8BIT = 0.025

MIN_BITS = 1
MAX_BITS = 8

# Fractions of the clock period used for the timing of the netlist.
_GATE_DELAY_FRAC = 1 / 250  # delay of one XSPICE gate
_DFF_DELAY_FRAC = 2 / 250  # clock-to-output delay of a d_dff (longer than a gate)
_CTRL_EDGE_FRAC = 1 / 500  # rise/fall of the 0/1 V switch controls (dac_bridge)
_CLK_EDGE_FRAC = 1 / 100  # rise/fall of the clock, start, input and skip sources
_ENERGY_TAU_FRAC = 1 / 40  # time constant of the comparator/logic energy switches
_R_OFF_OHM = 1e12


def _check_pos(name: str, value: float, lo_open: bool = True) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 0 or (lo_open and v == 0):
        want = "> 0" if lo_open else ">= 0"
        raise ValueError(f"SarAdcParams.{name} = {value!r} must be finite and {want}")
    return v


@dataclass(frozen=True)
class SarAdcParams:
    """One SAR ADC instance: design values from the card plus its capacitor/offset draws.

    Parameters
    ----------
    bits
        Resolution N, 1..8.
    v_ref_v
        Reference voltage = full scale (V).
    v_dd_v
        Logic/comparator supply (V).
    clock_hz
        SAR clock (Hz); a conversion takes ``bits + 2`` periods.
    r_switch_ohm
        On-resistance of every DAC switch (ohm).
    c_parasitic_f
        Top-plate parasitic capacitance to ground (F).
    comparator_gain_v_per_v
        Small-signal gain of the comparator (V/V).
    c_comparator_f
        Capacitance switched per comparison (F).
    c_logic_f
        Logic capacitance switched per active SAR cycle (F).
    c_unit_f
        Nominal unit capacitor (F); used by :meth:`with_bits` and for the ideal LSB.
    c_bits_f
        Realized bit capacitors, LSB first, ``bits`` values (F).
    c_dummy_f
        Realized termination (dummy) capacitor, nominally ``c_unit_f`` (F).
    c_half_f
        Realized half-LSB shift capacitor, nominally ``c_unit_f / 2`` (F).
    comparator_offset_v
        Comparator offset of this instance (V): it keeps a bit when
        ``-V_top > comparator_offset_v``.
    """

    bits: int
    v_ref_v: float
    v_dd_v: float
    clock_hz: float
    r_switch_ohm: float
    c_parasitic_f: float
    comparator_gain_v_per_v: float
    c_comparator_f: float
    c_logic_f: float
    c_unit_f: float
    c_bits_f: tuple[float, ...]
    c_dummy_f: float
    c_half_f: float
    comparator_offset_v: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, int | np.integer):
            raise ValueError(f"SarAdcParams.bits must be an integer, got {self.bits!r}")
        if not MIN_BITS <= int(self.bits) <= MAX_BITS:
            raise ValueError(
                f"SarAdcParams.bits = {self.bits} is out of range [{MIN_BITS}, {MAX_BITS}]"
            )
        object.__setattr__(self, "bits", int(self.bits))
        for name in ("v_ref_v", "v_dd_v", "clock_hz", "r_switch_ohm", "c_unit_f"):
            object.__setattr__(self, name, _check_pos(name, getattr(self, name)))
        for name in ("c_parasitic_f", "c_comparator_f", "c_logic_f"):
            object.__setattr__(self, name, _check_pos(name, getattr(self, name), lo_open=False))
        g = _check_pos("comparator_gain_v_per_v", self.comparator_gain_v_per_v)
        if g < 1.0:
            raise ValueError(f"SarAdcParams.comparator_gain_v_per_v = {g!r} must be >= 1")
        object.__setattr__(self, "comparator_gain_v_per_v", g)
        caps = tuple(float(c) for c in np.asarray(self.c_bits_f, dtype=float).reshape(-1))
        if len(caps) != self.bits:
            raise ValueError(
                f"SarAdcParams.c_bits_f has {len(caps)} values; bits = {self.bits} needs "
                f"{self.bits} (LSB first)"
            )
        for i, c in enumerate(caps):
            _check_pos(f"c_bits_f[{i}]", c)
        object.__setattr__(self, "c_bits_f", caps)
        object.__setattr__(self, "c_dummy_f", _check_pos("c_dummy_f", self.c_dummy_f))
        object.__setattr__(self, "c_half_f", _check_pos("c_half_f", self.c_half_f))
        vos = float(self.comparator_offset_v)
        if not math.isfinite(vos) or abs(vos) > self.v_ref_v:
            raise ValueError(
                f"SarAdcParams.comparator_offset_v = {self.comparator_offset_v!r} must be "
                f"finite and within +-v_ref_v = {self.v_ref_v:g} V"
            )
        object.__setattr__(self, "comparator_offset_v", vos)

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def binary_weighted(
        cls,
        bits: int,
        c_unit_f: float,
        *,
        v_ref_v: float,
        v_dd_v: float,
        clock_hz: float,
        r_switch_ohm: float,
        c_parasitic_f: float,
        comparator_gain_v_per_v: float,
        c_comparator_f: float,
        c_logic_f: float,
        comparator_offset_v: float,
    ) -> SarAdcParams:
        """The design without mismatch: bit capacitors ``2**i c_unit_f``, dummy
        ``c_unit_f``, half-LSB ``c_unit_f / 2`` (F); the other values as the fields.
        :func:`cosim.circuits.sar_adc_params` gives the card's.

        Examples
        --------
        >>> p = SarAdcParams.binary_weighted(
        ...     3, 50e-15, v_ref_v=1.0, v_dd_v=1.0, clock_hz=1e8, r_switch_ohm=1e3,
        ...     c_parasitic_f=0.0, comparator_gain_v_per_v=1e3, c_comparator_f=0.0,
        ...     c_logic_f=0.0, comparator_offset_v=0.0)
        >>> p.c_bits_f[-1] / p.c_unit_f, p.c_half_f / p.c_unit_f
        (4.0, 0.5)
        """
        return cls(
            bits=bits,
            v_ref_v=v_ref_v,
            v_dd_v=v_dd_v,
            clock_hz=clock_hz,
            r_switch_ohm=r_switch_ohm,
            c_parasitic_f=c_parasitic_f,
            comparator_gain_v_per_v=comparator_gain_v_per_v,
            c_comparator_f=c_comparator_f,
            c_logic_f=c_logic_f,
            c_unit_f=c_unit_f,
            c_bits_f=tuple(c_unit_f * 2.0**i for i in range(int(bits))),
            c_dummy_f=c_unit_f,
            c_half_f=c_unit_f / 2,
            comparator_offset_v=comparator_offset_v,
        )

    def with_mismatch(self, draw: SarMismatch) -> SarAdcParams:
        """This design's nominal capacitors of ``c_unit_f`` with the relative errors of
        ``draw``, and its comparator offset plus ``draw.offset_delta_v``.

        Raises
        ------
        ValueError
            ``draw`` is for another resolution, or makes a capacitor non-positive.
        """
        units = sar_mismatch_units(self.bits)
        if draw.cap_rel_err.shape != units.shape:
            raise ValueError(
                f"a mismatch draw for {draw.bits} bits cannot apply to a {self.bits}-bit ADC"
            )
        caps = units * self.c_unit_f * (1.0 + draw.cap_rel_err)
        if np.any(caps <= 0):  # only for absurd sigmas; keep the error explicit
            raise ValueError(
                "adc.cap_mismatch_sigma_rel is so large that a sampled capacitor is <= 0"
            )
        return replace(
            self,
            c_bits_f=tuple(float(c) for c in caps[: self.bits]),
            c_dummy_f=float(caps[-2]),
            c_half_f=float(caps[-1]),
            comparator_offset_v=self.comparator_offset_v + draw.offset_delta_v,
        )

    def with_bits(self, bits: int) -> SarAdcParams:
        """The same design at another resolution: nominal capacitors of ``c_unit_f``
        (mismatch draws do not carry over), same offset, clock and energy capacitors."""
        cu = self.c_unit_f
        return replace(
            self,
            bits=bits,
            c_bits_f=tuple(cu * 2.0**i for i in range(int(bits))),
            c_dummy_f=cu,
            c_half_f=cu / 2,
        )

    def with_offset(self, comparator_offset_v: float) -> SarAdcParams:
        """The same instance with another comparator offset (V)."""
        return replace(self, comparator_offset_v=comparator_offset_v)

    # -- derived quantities -------------------------------------------------------------
    @property
    def period_s(self) -> float:
        """Clock period (s)."""
        return 1.0 / self.clock_hz

    @property
    def cycles_per_conversion(self) -> int:
        """Clock cycles of one conversion: sample, ``bits`` trials, done."""
        return self.bits + 2

    @property
    def conversion_time_s(self) -> float:
        """Duration of one conversion (s)."""
        return self.cycles_per_conversion * self.period_s

    @property
    def lsb_v(self) -> float:
        """Ideal LSB, ``v_ref_v / 2**bits`` (V)."""
        return self.v_ref_v / 2**self.bits

    @property
    def c_sample_f(self) -> float:
        """Capacitance that samples the input: bit capacitors + dummy (F)."""
        return float(sum(self.c_bits_f) + self.c_dummy_f)

    @property
    def c_total_f(self) -> float:
        """Total top-plate capacitance (F)."""
        return self.c_sample_f + self.c_half_f + self.c_parasitic_f

    def analytic_weights(self) -> AnalyticWeights:
        """Top-plate weights implied by the capacitor values (the fitter measures them).

        Returns ``bit_weights_v`` (``V_ref C_i / C_tot``, LSB first), ``shift_v``
        (``-V_ref C_h / C_tot``) and ``input_gain`` (``C_s / C_tot``): the comparator sees
        ``V_top = sum b_i w_i + shift - gain * V_in``.
        """
        ct = self.c_total_f
        return {
            "bit_weights_v": self.v_ref_v * np.asarray(self.c_bits_f) / ct,
            "shift_v": -self.v_ref_v * self.c_half_f / ct,
            "input_gain": self.c_sample_f / ct,
        }

    def key(self) -> str:
        """Short stable hash of every parameter (names the subcircuit)."""
        text = repr(tuple((f.name, getattr(self, f.name)) for f in fields(self)))
        return hashlib.sha256(text.encode()).hexdigest()[:10]


class AnalyticWeights(TypedDict):
    """What :meth:`SarAdcParams.analytic_weights` returns."""

    bit_weights_v: np.ndarray  # (bits,) V, LSB first
    shift_v: float  # V
    input_gain: float


# ---------------------------------------------------------------------------------------
# netlist text
# ---------------------------------------------------------------------------------------
def subckt_name(params: SarAdcParams) -> str:
    """Name of the subcircuit :func:`sar_adc_subckt` writes for ``params``."""
    return f"sar{params.bits}_{params.key()}"


def subckt_pins(bits: int) -> list[str]:
    """The pin names of the SAR subcircuit, in order (see the module docstring)."""
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


def comparator_expr(params: SarAdcParams, v_top: str) -> str:
    """The comparator's B-source expression of the top-plate voltage expression ``v_top``."""
    vdd = params.v_dd_v
    k = 2.0 * params.comparator_gain_v_per_v / vdd
    return f"{num(vdd / 2)}*(1+tanh({num(k)}*(-({v_top})-({num(params.comparator_offset_v)}))))"


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
    dg = t * _GATE_DELAY_FRAC
    dff = t * _DFF_DELAY_FRAC
    te = t * _CTRL_EDGE_FRAC
    vdd = p.v_dd_v
    L: list[str] = [f".subckt {name} " + " ".join(subckt_pins(n))]
    a = L.append
    a(f"* {n}-bit charge-redistribution SAR ADC (cosim netlists.sar_adc)")
    # -- models (local to this subcircuit)
    a(f".model sw_dac sw(vt=0.75 vh=0.05 ron={num(p.r_switch_ohm)} roff={num(_R_OFF_OHM)})")
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
    for g in ("and", "or", "nand", "nor", "inverter", "buffer"):
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
    # -- inputs to the digital domain
    skips = [f"skip{m}" for m in range(1, n)]
    ins = ["clk", "start", *skips]
    a(f"ain [{' '.join(ins)}] [{' '.join('d_' + s for s in ins)}] adc_in")
    a("ancl d_clk d_nclk g_inverter")
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
        r = t * _ENERGY_TAU_FRAC / c
        a(f".model sw_{tag} sw(vt=0.75 vh=0.05 ron={num(r)} roff={num(_R_OFF_OHM)})")
        a(f"C{tag} e{tag} 0 {num(c)}")
        a(f"S{tag}c vdd e{tag} {on} 0 sw_{tag}")
        a(f"S{tag}d e{tag} 0 {off} 0 sw_{tag}")
    # -- outputs
    outs = [f"d_q{i}" for i in range(n - 1, -1, -1)] + [tok[-1]]
    pins = [f"b{i}" for i in range(n - 1, -1, -1)] + ["done"]
    a(f"aout [{' '.join(outs)}] [{' '.join(pins)}] dac_out")
    a(f".ends {name}")
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------------------------------
# testbench: a sequence of conversions in one transient
# ---------------------------------------------------------------------------------------
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
    tr = t * _CLK_EDGE_FRAC
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
