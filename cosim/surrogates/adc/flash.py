"""The fitted flash ADC surrogate: one instance's comparator thresholds and energy table.

:class:`FlashAdcModel` is the converter of :mod:`netlists.flash_adc` reduced to what
decides its codes: comparator ``k`` reads 1 when the input reaches its threshold
``t_k = tap_k + offset_k`` (the ladder tap measured in SPICE plus the comparator's trip
offset), and the encoder counts the ones, so ::

    code(v, s) = #{k <= 2**(N-s) - 1 : v >= t_k}

with ``s`` the skip count (the comparators above ``2**(N-s) - 1`` are power-gated and read
0). Where the thresholds are in ladder order (offsets far below an LSB, as on every
practical card) this is ``min(searchsorted(t, v), 2**(N-s) - 1)``; otherwise each
comparator is counted. Energy per conversion is a table per skip count (reference: the
ladder's static energy; supply: the enabled comparators and the logic), fitted on SPICE.
:class:`FlashAdcFitter` builds a model from SPICE measurements; :func:`with_ladder_mismatch`
and :func:`sample_flash_instance_draw` give Monte-Carlo instances around a fitted nominal.

Examples
--------
>>> m = FlashAdcModel.ideal(bits=3, v_ref_v=1.0)
>>> m.convert([0.06, 0.07, 0.5, 2.0, -1.0]).tolist()
[0, 1, 4, 7, 0]
>>> m.convert([0.5, 0.9], skip=[0, 1]).tolist()
[4, 3]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from cosim.surrogates.adc.checks import check_bits, skip_array
from cosim.surrogates.adc.metrics import inl_dnl_from_thresholds
from cosim.surrogates.adc.storage import (
    check_codes,
    model_from_dict,
    model_to_dict,
    models_by_bits_table,
    pick_nominal,
)
from cosim.surrogates.base import check_fitted
from netlists.flash_adc import MAX_BITS, MIN_BITS, FlashMismatch, draw_flash_mismatch
from netlists.flash_adc import ladder_units as _ladder_units

__all__ = [
    "FlashAdcFitter",
    "FlashAdcModel",
    "flash_models_by_bits",
    "sample_flash_instance_draw",
    "with_ladder_mismatch",
]


def check_flash_bits(bits: Any, what: str) -> int:
    """``bits`` as an int in ``1 .. 4`` (:data:`netlists.flash_adc.MAX_BITS`), else a
    ValueError naming ``what``."""
    return check_bits(bits, what, MAX_BITS, " for a flash ADC")


@dataclass(frozen=True)
class FlashAdcModel:
    """A fitted flash ADC instance.

    Parameters
    ----------
    bits
        Resolution N, 1..4.
    v_ref_v
        Reference = full scale (V); ``LSB = v_ref_v / 2**bits``.
    tap_v
        Ladder tap voltage of each comparator, ``(2**bits - 1,)``, comparator ``k`` at
        index ``k - 1`` (V).
    comparator_offsets_v
        Each comparator's trip offset (V): it reads 1 when ``v - tap >= offset``.
    energy_ref_j, energy_dd_j
        Mean energy per conversion from the reference (ladder) and from the supply
        (comparators and logic), per skip count ``0 .. bits-1``, ``(bits,)`` (J).
    conversion_time_s
        Duration of one conversion, 2 clock periods (s).
    """

    kind: ClassVar[str] = "flash_adc"

    bits: int
    v_ref_v: float
    tap_v: np.ndarray
    comparator_offsets_v: np.ndarray
    energy_ref_j: np.ndarray
    energy_dd_j: np.ndarray
    conversion_time_s: float

    def __post_init__(self) -> None:
        n = check_flash_bits(self.bits, "FlashAdcModel.bits")
        object.__setattr__(self, "bits", n)
        for name in ("v_ref_v", "conversion_time_s"):
            v = float(getattr(self, name))
            if not math.isfinite(v) or v <= 0:
                raise ValueError(f"FlashAdcModel.{name} = {v!r} must be finite and > 0")
            object.__setattr__(self, name, v)
        m = 2**n - 1
        shapes = {
            "tap_v": (m,),
            "comparator_offsets_v": (m,),
            "energy_ref_j": (n,),
            "energy_dd_j": (n,),
        }
        for name, shape in shapes.items():
            arr = np.array(getattr(self, name), dtype=float)
            if arr.shape != shape:
                raise ValueError(f"FlashAdcModel.{name} must have shape {shape}, got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"FlashAdcModel.{name} holds NaN or inf")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        t = self.tap_v + self.comparator_offsets_v
        t.setflags(write=False)
        object.__setattr__(self, "_t", t)
        object.__setattr__(self, "_ordered", bool(np.all(np.diff(t) >= 0)))

    # -- construction -------------------------------------------------------------------
    @classmethod
    def ideal(
        cls,
        bits: int,
        v_ref_v: float,
        conversion_time_s: float = 2e-8,
        energy_ref_j: Any = None,
        energy_dd_j: Any = None,
    ) -> FlashAdcModel:
        """An ideal flash ADC: taps at ``(k - 1/2) LSB``, no offsets; its transfer is
        :func:`~cosim.surrogates.adc.ideal_codes`; energies default to zero (J)."""
        n = check_flash_bits(bits, "bits")
        lsb = v_ref_v / 2**n
        m = 2**n - 1
        return cls(
            bits=n,
            v_ref_v=v_ref_v,
            tap_v=(np.arange(1, m + 1) - 0.5) * lsb,
            comparator_offsets_v=np.zeros(m),
            energy_ref_j=np.zeros(n) if energy_ref_j is None else energy_ref_j,
            energy_dd_j=np.zeros(n) if energy_dd_j is None else energy_dd_j,
            conversion_time_s=conversion_time_s,
        )

    @property
    def lsb_v(self) -> float:
        """Ideal LSB, ``v_ref_v / 2**bits`` (V)."""
        return self.v_ref_v / 2**self.bits

    @property
    def comparator_thresholds_v(self) -> np.ndarray:
        """Trip input voltage of each comparator, ``tap_v + comparator_offsets_v`` (V),
        comparator ``k`` at index ``k - 1`` (read-only)."""
        t: np.ndarray = self._t  # type: ignore[attr-defined]
        return t

    # -- conversion ---------------------------------------------------------------------
    def convert(self, v: Any, skip: Any = 0) -> np.ndarray:
        """Codes of input voltages ``v`` (V, any shape) with ``skip`` MSBs known to be 0.

        Parameters
        ----------
        v
            Input voltages (V), any shape; NaN converts to 0 (every comparison false).
        skip
            Skip counts ``0 .. bits-1``, broadcastable against ``v``: the comparators above
            code ``2**(bits - skip) - 1`` are gated, so the code saturates there.

        Returns
        -------
        numpy.ndarray
            int64 codes of the broadcast shape.

        Examples
        --------
        >>> m = FlashAdcModel.ideal(2, 1.0)
        >>> m.convert([[0.3], [0.9]], skip=[0, 1]).tolist()
        [[1, 1], [3, 1]]
        """
        x = np.asarray(v)
        if x.dtype.kind != "f":
            x = x.astype(float)
        t = self.comparator_thresholds_v
        k = skip_array(skip, self.bits)
        if self._ordered:  # type: ignore[attr-defined]
            code = np.searchsorted(t, x, side="right").astype(np.int64)
            if x.size and np.isnan(x).any():
                code[np.isnan(x)] = 0  # searchsorted sorts NaN last
            if k.ndim == 0 and int(k) == 0:
                return code
            return np.minimum(code, np.left_shift(1, self.bits - k) - 1)
        # thresholds out of ladder order: count each enabled comparator
        cap = np.left_shift(1, self.bits - k) - 1
        x, cap = np.broadcast_arrays(x, cap)
        code = np.zeros(x.shape, dtype=np.int64)
        for j, tj in enumerate(t):
            code += (x >= tj) & (cap > j)
        return code

    __call__ = convert

    def thresholds(self, skip: int = 0) -> np.ndarray:
        """Code transition voltages (V): entry ``k - 1`` is the lowest input giving a code
        ``>= k``, ``k = 1 .. 2**(bits-skip) - 1``: the enabled comparators' thresholds,
        sorted (the encoder counts ones)."""
        k = int(skip_array(skip, self.bits))
        return np.sort(self.comparator_thresholds_v[: 2 ** (self.bits - k) - 1])

    def inl_dnl(self) -> dict[str, Any]:
        """INL and DNL in LSB from :meth:`thresholds` (the keys of
        :func:`~cosim.surrogates.adc.inl_dnl_from_thresholds`)."""
        return inl_dnl_from_thresholds(self.thresholds(), self.bits, self.v_ref_v)

    # -- energy -------------------------------------------------------------------------
    def energy_per_conversion_j(self, skip: Any = 0, codes: Any = None) -> np.ndarray:
        """Energy per conversion from the reference and the supply (J), per skip count.

        ``codes`` (broadcastable) only shapes the result and is range-checked: a flash
        conversion costs the same whatever its code (the ladder is static, every enabled
        comparator decides).

        Examples
        --------
        >>> m = FlashAdcModel.ideal(2, 1.0, energy_ref_j=[1e-13, 1e-13], energy_dd_j=[4e-14, 2e-14])
        >>> (m.energy_per_conversion_j([0, 1]) * 1e15).round(3).tolist()
        [140.0, 120.0]
        """
        k = skip_array(skip, self.bits)
        e = np.asarray(self.energy_ref_j[k] + self.energy_dd_j[k], dtype=float)
        if codes is None:
            return e
        c = check_codes(codes, self.bits)
        return np.broadcast_to(e, np.broadcast_shapes(e.shape, c.shape)).copy()

    # -- storage ------------------------------------------------------------------------
    _KEYS: ClassVar[tuple[str, ...]] = (
        "bits",
        "v_ref_v",
        "tap_v",
        "comparator_offsets_v",
        "energy_ref_j",
        "energy_dd_j",
        "conversion_time_s",
    )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able values and arrays (see :mod:`cosim.surrogates.base`)."""
        return model_to_dict(self, self._KEYS)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FlashAdcModel:
        """Rebuild from :meth:`to_dict` output; :class:`LibraryError` on a bad entry."""
        return model_from_dict(cls, d, cls._KEYS)


# ---------------------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------------------
class FlashAdcFitter:
    """Fit a :class:`FlashAdcModel` on SPICE runs of one instance (scikit-learn style:
    :meth:`fit` returns ``self``, learned attributes end in ``_``).

    Learned: ``tap_v_`` (each tap's mean SPICE voltage at the latching edges, V),
    ``comparator_offsets_v_`` (the trip sweep's offsets, V), ``energy_ref_j_`` and
    ``energy_dd_j_`` (mean per skip count, J), ``decision_agreement_`` (the fitted model's
    codes against the fit runs' SPICE codes), ``tap_spread_v_`` (largest change of a tap
    between conversions: the ladder is static, so it should be ~0).

    Examples
    --------
    >>> f = FlashAdcFitter(1, 1.0, 2e-8)
    >>> data = {"codes": np.array([0, 1]), "v_tap_v": np.full((2, 1), 0.25),
    ...         "e_ref_j": np.array([1e-13, 1e-13]), "e_dd_j": np.array([2e-14, 2e-14])}
    >>> m = f.fit(np.array([0.1, 0.4]), np.array([0, 0]), data, np.array([0.0])).model()
    >>> m.convert([0.2, 0.3]).tolist(), f.decision_agreement_
    ([0, 1], 1.0)
    """

    def __init__(self, bits: int, v_ref_v: float, conversion_time_s: float) -> None:
        self.bits = check_flash_bits(bits, "bits")
        self.v_ref_v = float(v_ref_v)
        self.conversion_time_s = float(conversion_time_s)

    def fit(
        self,
        v: np.ndarray,
        skip: np.ndarray,
        data: Mapping[str, np.ndarray],
        trip_offsets_v: np.ndarray,
        energy_mask: np.ndarray | None = None,
    ) -> FlashAdcFitter:
        """Fit on conversions ``v`` (V) with skip counts ``skip`` and their SPICE ``data``
        (:func:`netlists.flash_adc.decode_testbench` with the taps), and the comparators'
        trip offsets (:func:`netlists.flash_adc.decode_trip`, V). ``energy_mask`` selects
        the conversions the energy table averages (default all); every skip count must
        occur among them.

        Raises
        ------
        ValueError
            Shapes that do not match, or a skip count without conversions.
        """
        m = 2**self.bits - 1
        v = np.asarray(v, dtype=float).reshape(-1)
        k = np.asarray(skip, dtype=np.int64).reshape(-1)
        taps = np.asarray(data["v_tap_v"], dtype=float)
        if k.shape != v.shape or taps.shape != (v.size, m):
            raise ValueError(
                f"fit needs one skip and {m} taps per conversion; got {k.shape}, {taps.shape}"
            )
        offs = np.asarray(trip_offsets_v, dtype=float).reshape(-1)
        if offs.shape != (m,):
            raise ValueError(f"fit needs {m} trip offsets, got {offs.shape}")
        mask = np.ones(v.size, bool) if energy_mask is None else np.asarray(energy_mask, bool)
        e_ref = np.empty(self.bits)
        e_dd = np.empty(self.bits)
        for s in range(self.bits):
            sel = mask & (k == s)
            if not sel.any():
                raise ValueError(f"no conversion with skip {s} to fit the energy table on")
            e_ref[s] = float(np.mean(np.asarray(data["e_ref_j"])[sel]))
            e_dd[s] = float(np.mean(np.asarray(data["e_dd_j"])[sel]))
        self.tap_v_ = taps.mean(axis=0)
        self.tap_spread_v_ = float(np.max(taps.max(axis=0) - taps.min(axis=0)))
        self.comparator_offsets_v_ = offs
        self.energy_ref_j_ = e_ref
        self.energy_dd_j_ = e_dd
        model = self.model()
        self.decision_agreement_ = float(np.mean(model.convert(v, k) == np.asarray(data["codes"])))
        return self

    def model(self) -> FlashAdcModel:
        """The fitted model (raises :class:`~cosim.surrogates.base.NotFittedError` before
        :meth:`fit`)."""
        check_fitted(self, "tap_v_")
        return FlashAdcModel(
            bits=self.bits,
            v_ref_v=self.v_ref_v,
            tap_v=self.tap_v_,
            comparator_offsets_v=self.comparator_offsets_v_,
            energy_ref_j=self.energy_ref_j_,
            energy_dd_j=self.energy_dd_j_,
            conversion_time_s=self.conversion_time_s,
        )


# ---------------------------------------------------------------------------------------
# Monte-Carlo instances
# ---------------------------------------------------------------------------------------
def _tap_fractions(units: np.ndarray) -> np.ndarray:
    return np.cumsum(units)[:-1] / float(np.sum(units))


def with_ladder_mismatch(
    nominal: FlashAdcModel, r_rel_err: np.ndarray, offset_delta_v: np.ndarray
) -> FlashAdcModel:
    """The nominal model with one instance's ladder errors and offset changes applied.

    The ladder is a resistive divider: a tap's voltage is ``V_ref`` times the resistance
    below it over the total, so the instance's taps are the nominal's (SPICE-measured)
    times the ratio of the drawn to the nominal divider fractions; each comparator's
    offset is the nominal's fitted offset plus its drawn change. Energies are the
    nominal's (the total resistance changes by ``sigma / 2**(bits/2)``, a few 1e-3).

    Parameters
    ----------
    nominal
        The fitted nominal model.
    r_rel_err
        Relative error of each ladder resistor, ``(2**bits,)``, in the order of
        :func:`netlists.flash_adc.ladder_units`.
    offset_delta_v
        Added to each comparator's nominal offset, ``(2**bits - 1,)`` (V).

    Examples
    --------
    >>> m = FlashAdcModel.ideal(1, 1.0)  # tap at 0.5 / 2 of the ladder: 0.25 V
    >>> inst = with_ladder_mismatch(m, np.array([0.1, 0.0]), np.array([0.01]))
    >>> inst.thresholds().round(6).tolist()  # 0.55 / 2.05 V, plus 10 mV
    [0.278293]
    """
    units = _ladder_units(nominal.bits)
    e = np.asarray(r_rel_err, dtype=float).reshape(-1)
    d = np.asarray(offset_delta_v, dtype=float).reshape(-1)
    if e.shape != units.shape or d.shape != (units.size - 1,):
        raise ValueError(
            f"a {nominal.bits}-bit flash instance needs {units.size} resistor errors and "
            f"{units.size - 1} offset changes, got {e.size} and {d.size}"
        )
    if not (np.all(np.isfinite(e)) and np.all(np.isfinite(d))):
        raise ValueError("ladder errors and offset changes must be finite")
    drawn = units * (1.0 + e)
    if np.any(drawn <= 0):
        raise ValueError("a resistor error <= -100 % makes a ladder resistor non-positive")
    ratio = _tap_fractions(drawn) / _tap_fractions(units)
    return replace(
        nominal,
        tap_v=nominal.tap_v * ratio,
        comparator_offsets_v=nominal.comparator_offsets_v + d,
    )


def sample_flash_instance_draw(
    nominal: FlashAdcModel | Mapping[int, FlashAdcModel],
    card: Any,
    rng: np.random.Generator,
    bits: int | None = None,
) -> tuple[FlashAdcModel, FlashMismatch]:
    """A Monte-Carlo flash instance around the SPICE-fitted nominal, and its draw.

    The draw is :func:`netlists.flash_adc.draw_flash_mismatch`'s with the card's
    ``adc.ladder_mismatch_sigma_rel`` and ``adc.comparator_offset_sigma_v``, which
    :func:`cosim.circuits.flash_adc_sample` makes too, so the same generator state gives
    the same instance on both sides; the netlist's instance is
    ``flash_adc_params(card, model.bits).with_mismatch(draw)``.

    Parameters
    ----------
    nominal
        The fitted nominal at the wanted resolution, or the table of
        :func:`flash_models_by_bits` (``bits`` picks one; default ``card.adc.bits``).
    card
        The hardware card.
    rng
        Source of the draws (one instance per call).
    bits
        Resolution; with a single model it must be that model's (default).

    Examples
    --------
    >>> from cosim.card import load_card
    >>> nom = FlashAdcModel.ideal(3, 1.0)
    >>> a, d = sample_flash_instance_draw(nom, load_card(), np.random.default_rng(1))
    >>> b, _ = sample_flash_instance_draw(nom, load_card(), np.random.default_rng(1))
    >>> bool(np.all(a.thresholds() == b.thresholds())), a.bits, d.bits
    (True, 3, 3)
    """
    nominal = pick_nominal(
        nominal, card, bits, noun="flash model", hint="", check_bits=check_flash_bits
    )
    a = card.adc
    draw = draw_flash_mismatch(
        rng, nominal.bits, a.ladder_mismatch_sigma_rel, a.comparator_offset_sigma_v
    )
    return with_ladder_mismatch(nominal, draw.r_rel_err, draw.offset_delta_v), draw


# ---------------------------------------------------------------------------------------
# the nominal at every resolution, as the library stores it
# ---------------------------------------------------------------------------------------
def flash_models_by_bits(
    extra: Mapping[str, Any], bits: int | None = None
) -> dict[int, FlashAdcModel]:
    """The nominal flash model at every stored resolution, from the ``flash_adc`` block's
    ``extra["by_bits"]`` (``{"1": model.to_dict(), ...}``), ascending.

    Parameters
    ----------
    extra
        The block's ``extra`` table.
    bits
        Highest resolution that must be present (normally ``card.adc.bits``); default the
        highest stored one. Every resolution from 1 up to it must be there.

    Raises
    ------
    LibraryError
        ``by_bits`` missing or malformed, a resolution missing, or a model whose ``bits``
        or ``v_ref_v`` disagrees with its key or the others.

    Examples
    --------
    >>> extra = {"by_bits": {str(n): FlashAdcModel.ideal(n, 1.0).to_dict() for n in (1, 2)}}
    >>> sorted(flash_models_by_bits(extra))
    [1, 2]
    """
    return models_by_bits_table(
        FlashAdcModel,
        extra,
        bits,
        noun="model",
        min_bits=MIN_BITS,
        max_bits=MAX_BITS,
        check_bits=check_flash_bits,
    )
