"""ADC surrogates: the fitted SAR emulation, its Monte-Carlo instances, fitter and metrics.

One module per idea:

* :mod:`~cosim.surrogates.adc.sar`: :class:`SarAdcModel`, the fitted SAR instance (an exact
  emulation of its binary search, energy tables, storage);
* :mod:`~cosim.surrogates.adc.lookup`: the exact table-lookup kernel its fast conversion
  runs on;
* :mod:`~cosim.surrogates.adc.mismatch`: Monte-Carlo instances around the fitted nominal
  (:func:`sample_instance`, :func:`with_mismatch`, :func:`mismatch_units`);
* :mod:`~cosim.surrogates.adc.by_bits`: the nominal at every resolution, as the library
  stores it (:func:`models_by_bits`);
* :mod:`~cosim.surrogates.adc.fit`: :class:`SarAdcFitter` and its helpers;
* :mod:`~cosim.surrogates.adc.behavioural`: :class:`ThresholdAdc`, :class:`SarLevelAdc`,
  :func:`comparison_level_variation` (Bao et al. 2022);
* :mod:`~cosim.surrogates.adc.metrics`: :func:`ideal_codes`, INL/DNL;
* :mod:`~cosim.surrogates.adc.architecture`: the SAR as a plug-in of
  :mod:`cosim.converters` (registered as ``"sar"``).

Every name a caller imported from the former single module is importable from here.

Examples
--------
>>> m = SarAdcModel.ideal(bits=3, v_ref_v=1.0)
>>> m.convert([0.06, 0.07, 0.5, 2.0, -1.0]).tolist()
[0, 1, 4, 7, 0]
"""

from __future__ import annotations

from cosim.surrogates.adc import behavioural, checks, lookup
from cosim.surrogates.adc.behavioural import (
    SarLevelAdc,
    ThresholdAdc,
    comparison_level_variation,
)
from cosim.surrogates.adc.by_bits import models_by_bits
from cosim.surrogates.adc.checks import MAX_BITS, MIN_BITS
from cosim.surrogates.adc.fit import SarAdcFitter, dac_states, uniform_bit_means
from cosim.surrogates.adc.lookup import ExactTables
from cosim.surrogates.adc.metrics import ideal_codes, inl_dnl_from_thresholds
from cosim.surrogates.adc.mismatch import mismatch_units, sample_instance, with_mismatch
from cosim.surrogates.adc.sar import SarAdcModel

# private names of the former single module, kept importable
check_bits = checks.check_bits
skip_array = checks.skip_array
_Lookup = lookup._Lookup
_level_table = behavioural._level_table
_inl_dnl_from_thresholds = inl_dnl_from_thresholds

__all__ = [
    "MAX_BITS",
    "MIN_BITS",
    "ExactTables",
    "SarAdcFitter",
    "SarAdcModel",
    "SarLevelAdc",
    "ThresholdAdc",
    "comparison_level_variation",
    "dac_states",
    "ideal_codes",
    "inl_dnl_from_thresholds",
    "mismatch_units",
    "models_by_bits",
    "sample_instance",
    "uniform_bit_means",
    "with_mismatch",
]
