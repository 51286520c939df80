"""The fitted SAR ADC surrogate: an exact emulation of one instance's binary search.

:class:`SarAdcModel` replays the successive-approximation search of
:mod:`netlists.sar_adc` with the *realized* DAC: the comparator sees ::

    x = input_gain * v - (sum of the set bits' weights + shift_v)

and keeps a trial bit when ``x > comparator_offset_v``. The weights (top-plate volts per
bit, LSB first), the half-LSB ``shift_v`` and ``input_gain`` include capacitor mismatch and
the parasitic attenuation of the top plate, so the emulation reproduces offset, gain error,
INL/DNL, missing codes and wide codes of one ADC instance, and the sparsity-aware mode
(``skip`` MSB cycles forced to 0). :class:`~cosim.surrogates.adc.fit.SarAdcFitter`
extracts these from SPICE probes. :meth:`SarAdcModel.convert` is a cached lookup table
(:mod:`cosim.surrogates.adc.lookup`) that is bit-exact with the search
(:meth:`SarAdcModel.convert_exact`) and converts 1e8 to 2e8 values per second at any
resolution.

Examples
--------
>>> m = SarAdcModel.ideal(bits=3, v_ref_v=1.0)
>>> m.convert([0.06, 0.07, 0.5, 2.0, -1.0]).tolist()
[0, 1, 4, 7, 0]
>>> m.thresholds()[:2].tolist()
[0.0625, 0.1875]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from cosim.surrogates.adc.checks import check_bits, skip_array
from cosim.surrogates.adc.lookup import ExactTables
from cosim.surrogates.adc.metrics import ideal_codes, inl_dnl_from_thresholds
from cosim.surrogates.adc.storage import check_codes, model_from_dict, model_to_dict

__all__ = ["SarAdcModel", "ideal_codes"]


@dataclass(frozen=True)
class SarAdcModel(ExactTables):
    """A fitted SAR ADC instance: exact emulation of its binary search.

    Parameters
    ----------
    bits
        Resolution N.
    v_ref_v
        Reference = full scale (V); ``LSB = v_ref_v / 2**bits``.
    bit_weights_v
        Top-plate voltage step of each bit, LSB first, shape ``(bits,)`` (V).
    shift_v
        Top-plate shift of the half-LSB capacitor (V; nominally ``-LSB/2`` times the
        attenuation).
    input_gain
        Top-plate volts per input volt (``C_sample / C_total``, < 1 with parasitics).
    comparator_offset_v
        A trial bit is kept when the comparator input exceeds this (V).
    energy_ref_j, energy_dd_j
        Mean energy per conversion from the reference and from the supply, per number of
        skipped MSB cycles ``0 .. bits-1``, shape ``(bits,)`` (J), over conversions where
        that skip is legal (true code ``< 2**(bits - skip)``). A single conversion can
        return charge to the reference (negative energy), so only finiteness is checked.
    energy_ref_bit_j
        Data dependence of the reference energy: extra energy when output bit ``i`` is 1,
        relative to the mean of its skip count, shape ``(bits,)`` (J); zeros when unknown.
    energy_ref_mean_bits
        Mean of each output bit in the data the energy table was fitted on, per skip
        count, shape ``(bits, bits)``: the reference point of ``energy_ref_bit_j``.
    conversion_time_s
        Duration of one conversion, ``(bits + 2)`` clock periods (s).
    """

    kind: ClassVar[str] = "sar_adc"

    bits: int
    v_ref_v: float
    bit_weights_v: np.ndarray
    shift_v: float
    input_gain: float
    comparator_offset_v: float
    energy_ref_j: np.ndarray
    energy_dd_j: np.ndarray
    conversion_time_s: float
    energy_ref_bit_j: np.ndarray | None = None
    energy_ref_mean_bits: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = check_bits(self.bits, "SarAdcModel.bits")
        object.__setattr__(self, "bits", n)
        for name in ("v_ref_v", "input_gain", "conversion_time_s"):
            v = float(getattr(self, name))
            if not math.isfinite(v) or v <= 0:
                raise ValueError(f"SarAdcModel.{name} = {v!r} must be finite and > 0")
            object.__setattr__(self, name, v)
        for name in ("shift_v", "comparator_offset_v"):
            v = float(getattr(self, name))
            if not math.isfinite(v):
                raise ValueError(f"SarAdcModel.{name} must be finite, got {v!r}")
            object.__setattr__(self, name, v)
        if self.energy_ref_bit_j is None:
            object.__setattr__(self, "energy_ref_bit_j", np.zeros(n))
        if self.energy_ref_mean_bits is None:
            object.__setattr__(self, "energy_ref_mean_bits", np.zeros((n, n)))
        shapes = {
            "bit_weights_v": (n,),
            "energy_ref_j": (n,),
            "energy_dd_j": (n,),
            "energy_ref_bit_j": (n,),
            "energy_ref_mean_bits": (n, n),
        }
        for name, shape in shapes.items():
            arr = np.array(getattr(self, name), dtype=float)
            if arr.shape != shape:
                raise ValueError(f"SarAdcModel.{name} must have shape {shape}, got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"SarAdcModel.{name} holds NaN or inf")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        if np.any(self.bit_weights_v <= 0):
            raise ValueError("SarAdcModel.bit_weights_v must all be > 0")
        # conversion tables and the energy table, built on first use
        object.__setattr__(self, "_cache", {})

    # -- construction -------------------------------------------------------------------
    @classmethod
    def ideal(
        cls,
        bits: int,
        v_ref_v: float,
        conversion_time_s: float = 1e-7,
        energy_ref_j: Any = None,
        energy_dd_j: Any = None,
    ) -> SarAdcModel:
        """An ideal ADC: binary weights, half-LSB shift, unit gain, no offset.

        Its transfer is exactly :func:`ideal_codes`; energies default to zero.
        """
        n = check_bits(bits, "bits")
        lsb = v_ref_v / 2**n
        return cls(
            bits=n,
            v_ref_v=v_ref_v,
            bit_weights_v=lsb * 2.0 ** np.arange(n),
            shift_v=-0.5 * lsb,
            input_gain=1.0,
            comparator_offset_v=0.0,
            energy_ref_j=np.zeros(n) if energy_ref_j is None else energy_ref_j,
            energy_dd_j=np.zeros(n) if energy_dd_j is None else energy_dd_j,
            conversion_time_s=conversion_time_s,
        )

    @property
    def lsb_v(self) -> float:
        """Ideal LSB, ``v_ref_v / 2**bits`` (V)."""
        return self.v_ref_v / 2**self.bits

    @property
    def input_referred_weights_v(self) -> np.ndarray:
        """Bit weights referred to the input (V per bit), LSB first."""
        return self.bit_weights_v / self.input_gain

    # -- conversion ---------------------------------------------------------------------
    def convert(self, v: Any, skip: Any = 0) -> np.ndarray:
        """Codes of input voltages ``v`` (any shape), with ``skip`` MSB cycles skipped.

        The fast path: a lookup table of this instance's code transitions, built once per
        skip count and cached (:class:`_Lookup`); its cost does not grow with the
        resolution (5-10 ms per 1e6 values, 6x the bit-by-bit search at 8 bits; a skip
        array adds about 5 ms). It returns exactly what the binary search
        :meth:`convert_exact` returns, for every input (see :meth:`_table`).

        Parameters
        ----------
        v
            Input voltages (V), any shape. NaN converts to 0, as in the search.
        skip
            Skipped MSB cycles, ``0 .. bits-1``, broadcastable against ``v``: those bits are
            forced to 0 and the search starts at bit ``bits - 1 - skip``. With an illegal
            skip (true code ``>= 2**(bits - skip)``) the result is the search over the low
            bits, as in the circuit: ``2**(bits - skip) - 1`` unless that code is missing
            in the low-bit search (a capacitor shortfall of more than 1 LSB).

        Returns
        -------
        numpy.ndarray
            int64 codes of the broadcast shape.

        Examples
        --------
        >>> m = SarAdcModel.ideal(4, 1.0)
        >>> m.convert([[0.3], [0.9]], skip=[0, 1]).tolist()
        [[5, 5], [14, 7]]
        """
        x = np.asarray(v)
        if x.dtype == np.float32 and isinstance(skip, int) and skip == 0:
            # the common case: float32 voltages through the float32 table
            look = self._table32() if self.bits > 1 else None
            if look is not None:
                return look(x)
        x = np.asarray(x, dtype=float)
        if isinstance(skip, int) and skip == 0:  # without the checks
            return self._convert_one_skip(x, 0)
        k = skip_array(skip, self.bits)
        if k.ndim == 0:
            return self._convert_one_skip(x, int(k))
        x, k = np.broadcast_arrays(x, k)
        # a legal skip changes nothing: the full search decides the skipped bits 0 without
        # touching the comparator input, then runs exactly the skipped search
        code = self._convert_one_skip(x, 0)
        cap = np.left_shift(1, self.bits - k)
        illegal = code >= cap
        if not illegal.any():
            return code
        # illegal: the low-bit search saturates from its last transition on
        sat = np.array([self._last_transition(s) for s in range(self.bits)])
        np.copyto(code, cap - 1, where=illegal)
        odd = illegal & (x < sat[k])  # below it: only with a missing major code
        if odd.any():
            xo, ko = x[odd], k[odd]
            sub = np.empty(xo.shape, dtype=np.int64)
            for s in range(1, self.bits):
                m = ko == s
                if m.any():
                    sub[m] = self._convert_one_skip(xo[m], s)
            code[odd] = sub
        return code

    __call__ = convert

    def convert_exact(self, v: Any, skip: Any = 0) -> np.ndarray:
        """Codes by replaying the binary search bit by bit (same contract as :meth:`convert`).

        The reference that :meth:`convert` reproduces; its cost grows with the resolution
        (about 6 ms per bit per 1e6 values).
        """
        x = np.asarray(v, dtype=float)
        k = skip_array(skip, self.bits)
        if k.ndim == 0:
            return self._search(x, int(k))
        x, k = np.broadcast_arrays(x, k)
        return self._search(x, k)

    def _search(self, x: np.ndarray, k: np.ndarray | int) -> np.ndarray:
        """The binary search on float inputs ``x`` with skip counts ``k`` (int or array of
        ``x``'s shape): keep bit ``i`` when the remaining comparator input ``r >= w_i``.

        Every step (multiply by the positive gain, subtract a constant, compare) is
        monotone non-decreasing in IEEE arithmetic, so the code is a non-decreasing
        function of the input: for two inputs, the first decision where they differ sets
        the bit for the larger one, and the bits above agree.
        """
        r = np.array(self.input_gain * x, dtype=float)  # an array, also for 0-d input
        r -= self.shift_v + self.comparator_offset_v
        code = np.zeros(r.shape, dtype=np.int64)
        keep = np.empty(r.shape, dtype=bool)
        if isinstance(k, int):
            top, first_all = self.bits - 1 - k, self.bits
        else:  # bits from first_all down are enabled in every conversion
            top, first_all = self.bits - 1, self.bits - int(np.max(k, initial=0))
        for i in range(top, -1, -1):
            w = self.bit_weights_v[i]
            np.greater_equal(r, w, out=keep)
            if i >= first_all:
                keep &= k < self.bits - i
            np.subtract(r, w, out=r, where=keep)
            code <<= 1
            code += keep
        return code  # with a scalar skip the loop starts below the skipped MSBs (zeros)

    def trial_thresholds(self, skip: int = 0) -> np.ndarray:
        """Input voltage at which each trial code would be accepted (V): entry ``c - 1`` for
        trial code ``c = 1 .. 2**(bits-skip) - 1`` (prefix bits plus the trial bit)."""
        n_codes = 2 ** (self.bits - int(skip_array(skip, self.bits)))
        c = np.arange(1, n_codes)
        bits = (c[:, None] >> np.arange(self.bits)[None, :]) & 1
        dac = bits @ self.bit_weights_v
        return (dac + self.shift_v + self.comparator_offset_v) / self.input_gain

    def thresholds(self, skip: int = 0) -> np.ndarray:
        """Code transition voltages (V): entry ``k - 1`` is the lowest input giving a code
        ``>= k``, for ``k = 1 .. 2**(bits-skip) - 1``.

        A SAR transfer is monotone, so these are non-decreasing; a missing code ``k`` shows
        as ``thresholds[k-1] == thresholds[k]``.
        """
        cand = np.unique(self.trial_thresholds(skip))
        # codes on every interval between consecutive candidate jump points
        mids = np.concatenate(
            ([cand[0] - self.v_ref_v], 0.5 * (cand[1:] + cand[:-1]), [cand[-1] + self.v_ref_v])
        )
        codes = self._search(mids, int(skip))  # codes[j] holds on (cand[j-1], cand[j])
        top = 2 ** (self.bits - int(skip)) - 1
        k = np.arange(1, top + 1)
        # first interval whose code reaches k; its left end is the transition
        first = np.searchsorted(np.maximum.accumulate(codes), k, side="left")
        return cand[first - 1]

    def inl_dnl(self) -> dict[str, Any]:
        """INL and DNL in LSB (``LSB = v_ref_v / 2**bits``) from :meth:`thresholds`.

        Returns
        -------
        dict
            ``inl_lsb`` (``2**bits - 1``: transition minus its ideal ``(k - 1/2) LSB``, so
            offset and gain error are included), ``dnl_lsb`` (``2**bits - 2`` code widths
            minus 1 LSB), ``inl_endpoint_lsb`` (INL after removing the line through the end
            transitions), ``max_abs_inl_lsb``, ``max_abs_dnl_lsb``, ``missing_codes``,
            ``offset_lsb``, ``gain_error_lsb``.
        """
        return inl_dnl_from_thresholds(self.thresholds(), self.bits, self.v_ref_v)

    # -- energy -------------------------------------------------------------------------
    def energy_per_conversion_j(self, skip: Any = 0, codes: Any = None) -> np.ndarray:
        """Energy per conversion from the reference and the supply (J).

        Parameters
        ----------
        skip
            Skipped MSB cycles (any shape).
        codes
            Optional output codes (broadcastable): adds the fitted data dependence of the
            reference energy (``energy_ref_bit_j`` per set bit, relative to the mean bits
            of the fitting data); without it the mean over the fitting data is returned.

        Examples
        --------
        >>> m = SarAdcModel.ideal(2, 1.0, energy_ref_j=[2e-13, 1e-13], energy_dd_j=[1e-13, 5e-14])
        >>> (m.energy_per_conversion_j([0, 1]) * 1e15).round(3).tolist()
        [300.0, 150.0]
        """
        k = skip_array(skip, self.bits)
        if codes is None:
            return np.asarray(self.energy_ref_j[k] + self.energy_dd_j[k], dtype=float)
        c = check_codes(codes, self.bits)
        return self._energy_table()[k, c]

    def _energy_table(self) -> np.ndarray:
        """``[k, c]``: energy of a conversion with ``k`` skipped cycles giving code ``c``."""
        if "energy" not in self._cache:
            n = self.bits
            # both set by __post_init__
            assert self.energy_ref_bit_j is not None and self.energy_ref_mean_bits is not None
            b = (np.arange(2**n)[:, None] >> np.arange(n)) & 1  # (codes, bits)
            per_code = b @ self.energy_ref_bit_j  # (codes,)
            per_skip = self.energy_ref_j + self.energy_dd_j
            per_skip = per_skip - self.energy_ref_mean_bits @ self.energy_ref_bit_j  # (skips,)
            tab = per_skip[:, None] + per_code[None, :]
            tab.setflags(write=False)
            self._cache["energy"] = tab
        return self._cache["energy"]

    # -- storage ------------------------------------------------------------------------
    _KEYS: ClassVar[tuple[str, ...]] = (
        "bits",
        "v_ref_v",
        "bit_weights_v",
        "shift_v",
        "input_gain",
        "comparator_offset_v",
        "energy_ref_j",
        "energy_dd_j",
        "energy_ref_bit_j",
        "energy_ref_mean_bits",
        "conversion_time_s",
    )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able values and arrays (see :mod:`cosim.surrogates.base`)."""
        return model_to_dict(self, self._KEYS)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SarAdcModel:
        """Rebuild from :meth:`to_dict` output; :class:`LibraryError` on a bad entry."""
        return model_from_dict(cls, d, cls._KEYS)
