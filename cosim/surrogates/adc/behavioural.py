"""Behavioural ADCs given by their levels: threshold tables and comparison-level variation.

:class:`ThresholdAdc` is a plain table of code transition voltages converted with
``searchsorted``; :class:`SarLevelAdc` holds the level each SAR trial compares against
and runs the binary search over them, and :func:`comparison_level_variation` builds one
with the comparison-level variation model of Bao et al. 2022 (``nva``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from cosim.errors import LibraryError
from cosim.surrogates.adc.checks import check_bits, skip_array
from cosim.surrogates.adc.metrics import inl_dnl_from_thresholds
from cosim.surrogates.adc.sar import SarAdcModel
from cosim.surrogates.base import as_float_array, require_keys


def _level_table(values: Any, bits: int, what: str) -> np.ndarray:
    """``values`` as a read-only float array of ``2**bits - 1`` finite voltages (V)."""
    t = np.array(values, dtype=float)
    if t.shape != (2**bits - 1,):
        raise ValueError(f"{what} must have shape ({2**bits - 1},)")
    if not np.all(np.isfinite(t)):
        raise ValueError(f"{what} holds NaN or inf")
    t.setflags(write=False)
    return t


@dataclass(frozen=True)
class ThresholdAdc:
    """An ADC given by its code transition voltages: ``code = #thresholds below v``.

    Parameters
    ----------
    bits
        Resolution N.
    v_ref_v
        Full scale (V).
    thresholds_v
        ``2**bits - 1`` transition voltages (V), sorted ascending: code ``k`` for
        ``thresholds_v[k-1] <= v < thresholds_v[k]``.
    """

    kind: ClassVar[str] = "adc_thresholds"

    bits: int
    v_ref_v: float
    thresholds_v: np.ndarray

    def __post_init__(self) -> None:
        n = check_bits(self.bits, "ThresholdAdc.bits")
        object.__setattr__(self, "bits", n)
        t = _level_table(self.thresholds_v, n, "ThresholdAdc.thresholds_v")
        if np.any(np.diff(t) < 0):
            raise ValueError("ThresholdAdc.thresholds_v must be sorted ascending")
        object.__setattr__(self, "thresholds_v", t)

    @classmethod
    def from_model(cls, model: SarAdcModel) -> ThresholdAdc:
        """The threshold table of a fitted SAR instance (full conversions)."""
        return cls(model.bits, model.v_ref_v, model.thresholds())

    def convert(self, v: Any, skip: Any = 0) -> np.ndarray:
        """Codes of ``v`` (any shape): the number of thresholds ``<= v`` (int64).

        With ``skip`` (broadcastable) MSB cycles skipped the code saturates at
        ``2**(bits - skip) - 1``, as a SAR whose skipped bits are forced to 0 does; for a
        legal skip (true code below that) it changes nothing.

        Examples
        --------
        >>> adc = comparison_level_variation(3, 1.0, 0.0, np.random.default_rng(0))
        >>> adc.convert([0.3, 0.9], skip=1).tolist()
        [2, 3]
        """
        x = np.asarray(v, dtype=float)
        code = np.searchsorted(self.thresholds_v, x, side="right").astype(np.int64)
        if np.isscalar(skip) and skip == 0:
            return code
        k = skip_array(skip, self.bits)
        return np.minimum(code, (np.int64(1) << (self.bits - k)) - 1)

    __call__ = convert

    def inl_dnl(self) -> dict[str, Any]:
        """INL/DNL in LSB, as :meth:`SarAdcModel.inl_dnl`."""
        return inl_dnl_from_thresholds(self.thresholds_v, self.bits, self.v_ref_v)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "bits": self.bits,
            "v_ref_v": self.v_ref_v,
            "thresholds_v": np.array(self.thresholds_v),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ThresholdAdc:
        require_keys(dict(d), ("kind", "bits", "v_ref_v", "thresholds_v"), "the ADC table")
        try:
            return cls(
                int(as_float_array(d["bits"], "adc_thresholds.bits")),
                float(as_float_array(d["v_ref_v"], "adc_thresholds.v_ref_v")),
                as_float_array(d["thresholds_v"], "adc_thresholds.thresholds_v"),
            )
        except ValueError as exc:
            raise LibraryError(f"ADC threshold table in the surrogate library: {exc}") from None


@dataclass(frozen=True)
class SarLevelAdc:
    """A SAR ADC given by the comparison level of every trial code.

    The successive approximation tries bit ``b`` by comparing ``v`` with
    ``levels_v[trial - 1]``, ``trial = code | 2**b``, and keeps the bit when ``v`` is at or
    above it. The levels need not be monotone: a level moved past its neighbours changes
    the codes the search can reach (missing codes, non-monotone steps), as the mismatched
    DAC of a real SAR does. With ``levels_v[k - 1] = (k - 1/2)·LSB`` it is the ideal ADC.

    Parameters
    ----------
    bits
        Resolution N.
    v_ref_v
        Full scale (V).
    levels_v
        ``2**bits - 1`` comparison levels (V), indexed by trial code minus one.
    """

    kind: ClassVar[str] = "adc_sar_levels"

    bits: int
    v_ref_v: float
    levels_v: np.ndarray

    def __post_init__(self) -> None:
        n = check_bits(self.bits, "SarLevelAdc.bits")
        object.__setattr__(self, "bits", n)
        object.__setattr__(self, "levels_v", _level_table(self.levels_v, n, "SarLevelAdc.levels_v"))

    def convert(self, v: Any, skip: Any = 0) -> np.ndarray:
        """Codes of ``v`` (any shape, V) by the binary search (int64); ``skip`` MSB cycles
        (broadcastable) are not tried, their bits stay 0.

        Examples
        --------
        >>> adc = comparison_level_variation(3, 1.0, 0.0, np.random.default_rng(0))
        >>> adc.convert([0.06, 0.07, 0.99]).tolist()
        [0, 1, 7]
        """
        x = np.asarray(v, dtype=float)
        k = None if np.isscalar(skip) and skip == 0 else skip_array(skip, self.bits)
        code = np.zeros(x.shape, dtype=np.int64)
        for b in range(self.bits - 1, -1, -1):
            trial = code | (1 << b)
            take = x >= self.levels_v[trial - 1]
            if k is not None:
                take &= b < self.bits - k
            np.copyto(code, trial, where=take)
        return code

    __call__ = convert


def comparison_level_variation(
    bits: int, v_ref_v: float, nva: float, rng: np.random.Generator
) -> SarLevelAdc:
    """A SAR ADC instance with comparison-level variation (Bao et al. 2022).

    Each comparison level of the successive approximation (the ideal transition
    ``(k - 1/2) LSB`` tried for trial code ``k``) is perturbed once per instance by
    ``N(0, nva * v_ref_v)``, and conversions run the SAR's binary search over the perturbed
    levels (:class:`SarLevelAdc`). A level's error moves every decision made against it,
    so the code error grows like ``nva·V_ref / LSB``: at a given ``nva`` a finer converter
    errs by more codes (about the same voltage). Counting the levels below ``v`` instead,
    as a flash converter's thermometer code does, averages the errors of all the levels
    near ``v``: at ``nva = 0.02`` an 8-bit instance then errs by 1.3 codes on average
    instead of 3.0 (3 bits: 0.12 either way).

    Parameters
    ----------
    bits
        Resolution N.
    v_ref_v
        Full scale (V).
    nva
        Relative standard deviation of each comparison level (fraction of ``v_ref_v``).
    rng
        Source of the per-instance draws.

    Examples
    --------
    >>> adc = comparison_level_variation(3, 1.0, 0.0, np.random.default_rng(0))
    >>> adc.convert([0.06, 0.07]).tolist()
    [0, 1]
    """
    n = check_bits(bits, "bits")
    if not math.isfinite(nva) or nva < 0:
        raise ValueError(f"nva = {nva!r} must be finite and >= 0")
    lsb = v_ref_v / 2**n
    levels = (np.arange(1, 2**n) - 0.5) * lsb
    levels = levels + nva * v_ref_v * rng.standard_normal(levels.size)
    return SarLevelAdc(n, v_ref_v, levels)
