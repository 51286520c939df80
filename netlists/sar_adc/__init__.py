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

from netlists.sar_adc.params import (
    MAX_BITS,
    MEASURED_S_PER_CONVERSION_8BIT,
    MIN_BITS,
    AnalyticWeights,
    SarAdcParams,
)
from netlists.sar_adc.subckt import comparator_expr, sar_adc_subckt, subckt_name, subckt_pins
from netlists.sar_adc.testbench import (
    SarTestbenchTiming,
    comparator_trip_netlist,
    decode_testbench,
    decode_trip,
    sar_testbench_netlist,
    sar_testbench_timing,
    sar_testbench_vectors,
)

__all__ = [
    "MAX_BITS",
    "MEASURED_S_PER_CONVERSION_8BIT",
    "MIN_BITS",
    "AnalyticWeights",
    "SarAdcParams",
    "SarTestbenchTiming",
    "comparator_expr",
    "comparator_trip_netlist",
    "decode_testbench",
    "decode_trip",
    "sar_adc_subckt",
    "sar_testbench_netlist",
    "sar_testbench_timing",
    "sar_testbench_vectors",
    "subckt_name",
    "subckt_pins",
]
