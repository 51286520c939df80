"""Characterize the SAR ADC: fit instances in SPICE, validate on held-out conversions, energy.

:func:`characterize_adc` characterizes the card's ADC through its architecture
(:mod:`cosim.converters`); :func:`characterize_sar_adc` is the SAR's sweep, which the
registered ``"sar"`` architecture runs.

One idea a module: :mod:`~cosim.characterize.adc.sar` (the SAR sweep: what runs, what the
result holds), :mod:`~cosim.characterize.adc.inputs` (input design),
:mod:`~cosim.characterize.adc.batches` (SPICE testbench jobs) and
:mod:`~cosim.characterize.adc.fitting` (fitting an instance, held-out statistics). Every
name a caller imported from the former single module is importable from here.

Examples
--------
>>> result = characterize_adc(ctx)                  # doctest: +SKIP
>>> result.validation["code_agreement"]             # doctest: +SKIP
1.0
"""

from __future__ import annotations

from cosim.characterize.adc.batches import CHUNK
from cosim.characterize.adc.inputs import (
    analytic_model,
    fit_inputs,
    heldout_inputs,
    legal_skip,
    skip_sweep_range,
)
from cosim.characterize.adc.sar import (
    CODE_AGREEMENT_TARGET,
    ENERGY_BITS,
    characterize_sar_adc,
)
from cosim.characterize.context import BlockResult, CharContext
from cosim.converters import adc_architecture

__all__ = [
    "CHUNK",
    "CODE_AGREEMENT_TARGET",
    "ENERGY_BITS",
    "analytic_model",
    "characterize_adc",
    "characterize_sar_adc",
    "fit_inputs",
    "heldout_inputs",
    "legal_skip",
    "skip_sweep_range",
]


def characterize_adc(ctx: CharContext) -> BlockResult:
    """Characterize the ADC of ``ctx.card`` with its architecture's sweep
    (``card.adc.architecture``, :func:`cosim.converters.adc_architecture`): for ``"sar"``,
    :func:`characterize_sar_adc`.

    Raises
    ------
    CosimError
        The card names an architecture that is not registered.
    """
    return adc_architecture(ctx.card.adc.architecture).characterize(ctx)
