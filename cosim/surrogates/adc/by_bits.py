"""The nominal ADC model at every resolution, as the library stores it.

The characterization fits the nominal SAR instance at every resolution ``1 ..
card.adc.bits`` and stores them in the ``sar_adc`` block's ``extra["by_bits"]``;
:func:`models_by_bits` decodes and checks that table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cosim.errors import LibraryError
from cosim.surrogates.adc.checks import MAX_BITS, MIN_BITS, check_bits
from cosim.surrogates.adc.sar import SarAdcModel


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
    if not isinstance(extra, Mapping) or "by_bits" not in extra:
        raise LibraryError(
            "the sar_adc block of the surrogate library has no per-resolution ADC models "
            "(extra.by_bits); it predates them — re-run cosim characterize"
        )
    table = extra["by_bits"]
    if not isinstance(table, Mapping) or not table:
        raise LibraryError("the sar_adc block's by_bits entry is not a non-empty table")
    models: dict[int, SarAdcModel] = {}
    for key, d in table.items():
        try:
            n = int(key)
        except (TypeError, ValueError):
            raise LibraryError(
                f"the sar_adc block's by_bits table has a key {key!r} that is not a resolution"
            ) from None
        if not MIN_BITS <= n <= MAX_BITS or str(n) != str(key).strip():
            raise LibraryError(
                f"the sar_adc block's by_bits table has a key {key!r}; keys are resolutions "
                f"{MIN_BITS}..{MAX_BITS}"
            )
        try:
            m = SarAdcModel.from_dict(d)
        except LibraryError as exc:
            raise LibraryError(f"the {n}-bit ADC model (by_bits): {exc}") from None
        if m.bits != n:
            raise LibraryError(f"the by_bits entry '{key}' holds a {m.bits}-bit ADC model")
        models[n] = m
    top = max(models) if bits is None else check_bits(bits, "bits")
    missing = [n for n in range(MIN_BITS, top + 1) if n not in models]
    if missing:
        have = ", ".join(str(n) for n in sorted(models))
        need = ", ".join(str(n) for n in missing)
        raise LibraryError(
            f"the sar_adc block's by_bits table lacks the {need}-bit ADC model (it has "
            f"{have}); re-run cosim characterize"
        )
    refs = {m.v_ref_v for m in models.values()}
    if len(refs) > 1:
        raise LibraryError(f"the by_bits ADC models disagree on v_ref_v: {sorted(refs)}")
    return dict(sorted(models.items()))
