"""Netlist generators: pure functions from frozen parameter dataclasses to SPICE text.

Conventions shared by every generator:

* Wordlines are driven at **negative** voltages ``-V_i`` (the DAC sinks current), bitlines
  sit at the TIA virtual ground, so a column draws current *out of* its TIA input and the TIA
  output ``+R_f·I`` is positive. Currents reported by the generators are these positive
  magnitudes.
* Many input vectors share one circuit: an index source ``idx`` is swept by ``.dc`` and
  B-sources read their values from ``pwl(v(idx), ...)`` tables.
* The first line of every netlist is its title.
* Random instances are drawn by plain functions of a generator and numbers
  (:mod:`netlists.mismatch`), shared with the surrogates so that SPICE and the engine build
  the same instance from the same generator state.
"""
