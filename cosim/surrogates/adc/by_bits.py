"""The nominal ADC model at every resolution, as the library stores it.

The characterization fits the nominal SAR instance at every resolution ``1 ..
card.adc.bits`` and stores them in the ``sar_adc`` block's ``extra["by_bits"]``;
:func:`models_by_bits` decodes and checks that table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cosim.surrogates.adc.checks import MAX_BITS, MIN_BITS, check_bits
from cosim.surrogates.adc.sar import SarAdcModel
from cosim.surrogates.adc.storage import models_by_bits_table


def models_by_bits(extra: Mapping[str, Any], bits: int | None = None) -> dict[int, SarAdcModel]:
    """The nominal ADC model at every resolution, from the ``sar_adc`` block's ``extra``.

    :func:`cosim.characterize.adc.characterize_adc` fits the nominal instance in SPICE at
    every resolution ``1 .. card.adc.bits`` and stores ``extra["by_bits"] =
    {"1": model.to_dict(), ...}`` (the library's ``blocks.sar_adc.extra``; read it back as
    ``load_library(path).extras["sar_adc"]``).

    Parameters
    ----------
    extra
        The block's ``extra`` table (holding ``by_bits``).
    bits
        Highest resolution that must be present (normally ``card.adc.bits``); default the
        highest stored one. Every resolution from 1 up to it must be there.

    Returns
    -------
    dict
        ``{bits: SarAdcModel}`` for every stored resolution, ascending.

    Raises
    ------
    LibraryError
        ``by_bits`` missing (a library from before per-resolution characterization), a
        resolution missing, a malformed model, or a model whose ``bits`` or ``v_ref_v``
        disagrees with its key or the others.

    Examples
    --------
    >>> extra = {"by_bits": {str(n): SarAdcModel.ideal(n, 1.0).to_dict() for n in (1, 2, 3)}}
    >>> sorted(models_by_bits(extra))
    [1, 2, 3]
    >>> models_by_bits(extra, bits=4)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cosim.errors.LibraryError: the sar_adc block's by_bits table lacks the 4-bit ADC model ...
    """
    return models_by_bits_table(
        SarAdcModel,
        extra,
        bits,
        noun="ADC model",
        min_bits=MIN_BITS,
        max_bits=MAX_BITS,
        check_bits=check_bits,
    )
