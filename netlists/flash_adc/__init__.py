"""Flash ADC (1–4 bits) with sparsity-aware power gating, for ngspice.

Circuit
-------
* **Ladder**: ``2**N`` resistors in series from ``vref`` to ground, bottom first a half
  unit, ``2**N - 2`` units and a unit and a half (``2**N`` units of
  ``r_ladder_total_ohm / 2**N`` in all), so tap ``k = 1 .. 2**N - 1`` sits at
  ``(k - 1/2) LSB``, ``LSB = V_ref / 2**N``: the ideal transfer
  ``code = clip(floor(V_in / LSB + 1/2), 0, 2**N - 1)`` of :mod:`cosim.quant`. Each
  resistor has its own mismatch (a resistor of ``m`` units: relative sigma
  ``ladder_mismatch_sigma_rel / sqrt(m)``). The ladder is static: it draws
  ``V_ref**2 / R_ladder`` from the reference all the time.
* **Comparators**: ``2**N - 1`` behavioural comparators in the style of the SAR's
  (:mod:`netlists.sar_adc`): a B-source ``V_dd/2 (1 + tanh(2 G (V_in - V_tap,k - V_os,k) /
  V_dd))`` read by an ``adc_bridge`` at ``V_dd/2``, so comparator ``k`` trips exactly at
  ``V_in = V_tap,k + V_os,k`` (its own offset) and the finite gain only blurs decisions
  within ``V_dd / (2 G)`` of it. The input draws no current (no kickback or input
  capacitance is modelled).
* **Registers and encoder**: at the rising clock edge that ends the compare cycle each
  comparator's decision is loaded into a register (XSPICE ``d_dff``) and held until the
  next conversion's; the thermometer code goes to 0/``V_dd`` voltages and a B-source
  encoder writes the binary digits of the **number of ones** on ``b{N-1} .. b0``. Counting
  is bubble-tolerant: the code is the number of comparators whose threshold lies below the
  input, so the transfer is monotone and the code transitions are the sorted thresholds,
  even where offsets swap two neighbouring thresholds.

Skip (power gating)
-------------------
The sense row proves that the top ``s`` MSBs of a column's code are 0 (the code is below
``2**(N-s)``). A flash has no MSB cycles to skip; instead the comparators above code
``2**(N-s) - 1`` are **power-gated**: they neither compare nor switch their energy
capacitance, and their registers load 0. Comparator ``k`` belongs to group
``j = floor(log2 k)`` (:func:`comparator_group`); group ``j >= 1`` is gated when
``skip{N-j}`` or any higher skip pin is high (latched while ``start`` is high, as the SAR
latches them). With the thermometer code the sense row produces (``skip1 .. skip{s}``
high) exactly the comparators ``k >= 2**(N-s)`` are gated, so the output **saturates** at
``2**(N-s) - 1``: lossless when the sense row was right (code below it), the top code of
the kept range when it was not. Comparator 1 is never gated.

Energy model
------------
B-sources and bridges draw no current; every energy-consuming part is a real element on a
real source:

* **reference** (``vref`` pin): the ladder's static current. The testbench converts back
  to back, one conversion per :attr:`FlashAdcParams.conversion_time_s`, so a conversion
  costs ``V_ref**2 / R_ladder * t_conv``; a ladder left on between conversions would cost
  its static power over the idle time as well (not counted);
* **comparators** (``vdd`` pin): per group ``j`` a capacitor of ``2**j * c_comparator_f``
  (one ``c_comparator_f`` per comparator of the group), charged from ``vdd`` through a
  switch in the second half of the compare cycle when the group is enabled and discharged
  otherwise: ``c_comparator_f * V_dd**2`` per enabled comparator and conversion;
* **logic** (``vdd`` pin): ``c_logic_f`` charged the same way once per conversion
  (registers and encoder).

So ``E = V_ref**2 t_conv / R_ladder + ((2**(N-s) - 1) c_comparator_f + c_logic_f) V_dd**2``;
the testbench measures it rather than assuming it.

Timing and pins
---------------
A conversion takes 2 clock cycles counted from the rising clock edge ``E_0`` at which
``start`` is sampled high: cycle 0 compares (the input must be settled at the edge ending
it, ``E_0 + T``, where the decisions are latched), cycle 1 ("done") holds the result. The
outputs stay valid until the latching edge of the next conversion, so a caller framing
conversions as the SAR's ``N + 2`` cycles (:func:`netlists.mac_unit.mac_unit_netlist`)
reads valid bits in the SAR's done cycle too. Pins, in the shared order::

    vin clk start vref vdd skip1 .. skip{N-1} b{N-1} .. b0 done

``vin`` is compared continuously and latched at ``E_0 + T``; ``clk``, ``start`` and
``skip*`` are 0/``V_dd`` logic levels (threshold ``V_dd/2``); ``b*`` are 0/``V_dd``
voltages; ``done`` is high during cycle 1. There are no skip pins for ``N = 1``.

Examples
--------
>>> from cosim.card import load_card
>>> from cosim.circuits import flash_adc_params
>>> p = flash_adc_params(load_card(), 3)
>>> p.bits, p.n_comparators, p.conversion_time_s
(3, 7, 2e-08)
>>> ".subckt" in flash_adc_subckt(p)
True
"""

from netlists.flash_adc.params import (
    MAX_BITS,
    MIN_BITS,
    FlashAdcParams,
    FlashMismatch,
    draw_flash_mismatch,
    ladder_units,
)
from netlists.flash_adc.subckt import (
    comparator_expr,
    comparator_group,
    flash_adc_subckt,
    subckt_name,
    subckt_pins,
)
from netlists.flash_adc.testbench import (
    FlashTestbenchTiming,
    comparator_trip_netlist,
    decode_testbench,
    decode_trip,
    flash_testbench_netlist,
    flash_testbench_timing,
    flash_testbench_vectors,
    trip_vectors,
)

__all__ = [
    "MAX_BITS",
    "MIN_BITS",
    "FlashAdcParams",
    "FlashMismatch",
    "FlashTestbenchTiming",
    "comparator_expr",
    "comparator_group",
    "comparator_trip_netlist",
    "decode_testbench",
    "decode_trip",
    "draw_flash_mismatch",
    "flash_adc_subckt",
    "flash_testbench_netlist",
    "flash_testbench_timing",
    "flash_testbench_vectors",
    "ladder_units",
    "subckt_name",
    "subckt_pins",
    "trip_vectors",
]
