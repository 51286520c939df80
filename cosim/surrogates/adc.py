"""SAR ADC surrogates: an exact binary-search emulation fitted to SPICE, and a threshold table.

:class:`SarAdcModel` replays the successive-approximation search of
:mod:`netlists.sar_adc` with the *realized* DAC: the comparator sees ::

    x = input_gain * v - (sum of the set bits' weights + shift_v)

and keeps a trial bit when ``x > comparator_offset_v``. The weights (top-plate volts per
bit, LSB first), the half-LSB ``shift_v`` and ``input_gain`` include capacitor mismatch and
the parasitic attenuation of the top plate, so the emulation reproduces offset, gain error,
INL/DNL, missing codes and wide codes of one ADC instance, and the sparsity-aware mode
(``skip`` MSB cycles forced to 0). :class:`SarAdcFitter` extracts these from SPICE probes:
least squares on the top-plate voltage at every decision instant, plus the comparator trip
point from a DC sweep.

:class:`ThresholdAdc` is a plain table of code transition voltages converted with
``searchsorted``; :func:`comparison_level_variation` builds one with the simplified
comparison-level variation model of Bao et al. 2022 (``nva``).

Transfer convention (shared with :mod:`cosim.quant`): the ideal code is
``clip(floor(v / LSB + 1/2), 0, 2**N - 1)``, ``LSB = v_ref_v / 2**N``.

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
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from cosim.errors import LibraryError
from cosim.surrogates.base import as_float_array, check_fitted, require_keys

MIN_BITS = 1
MAX_BITS = 8


def _check_bits(bits: Any, what: str) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer):
        raise ValueError(f"{what} must be an integer, got {bits!r}")
    if not MIN_BITS <= int(bits) <= MAX_BITS:
        raise ValueError(f"{what} = {bits} is out of range [{MIN_BITS}, {MAX_BITS}]")
    return int(bits)


def _skip_array(skip: Any, bits: int) -> np.ndarray:
    k = np.asarray(skip)
    if k.dtype.kind not in "iub":
        if not np.all(np.isfinite(k)) or np.any(k != np.round(k)):
            raise ValueError("skip must hold whole numbers of skipped MSB cycles")
    k = k.astype(np.int64)
    if np.any(k < 0) or np.any(k > bits - 1):
        raise ValueError(f"skip must lie in 0..{bits - 1} for a {bits}-bit ADC")
    return k


def ideal_codes(v: Any, bits: int, v_ref_v: float) -> np.ndarray:
    """The ideal transfer ``clip(floor(v / LSB + 1/2), 0, 2**bits - 1)`` (int64).

    Examples
    --------
    >>> ideal_codes([0.0624, 0.0625, 0.99], 3, 1.0).tolist()
    [0, 1, 7]
    """
    lsb = v_ref_v / 2**bits
    x = np.floor(np.asarray(v, dtype=float) / lsb + 0.5)
    return np.clip(x, 0, 2**bits - 1).astype(np.int64)


def _inl_dnl_from_thresholds(t: np.ndarray, bits: int, v_ref_v: float) -> dict[str, Any]:
    lsb = v_ref_v / 2**bits
    k = np.arange(1, 2**bits)
    inl = (t - (k - 0.5) * lsb) / lsb
    dnl = np.diff(t) / lsb - 1.0 if t.size > 1 else np.zeros(0)
    # endpoint INL: the straight line through the first and last transitions removed
    if t.size > 1:
        line = t[0] + (t[-1] - t[0]) * (k - 1) / (k[-1] - 1)
        inl_ep = (t - line) / ((t[-1] - t[0]) / (k[-1] - 1))
    else:
        inl_ep = np.zeros(1)
    return {
        "inl_lsb": inl,
        "dnl_lsb": dnl,
        "inl_endpoint_lsb": inl_ep,
        "max_abs_inl_lsb": float(np.max(np.abs(inl))),
        "max_abs_dnl_lsb": float(np.max(np.abs(dnl))) if dnl.size else 0.0,
        "missing_codes": int(np.sum(dnl <= -1.0 + 1e-12)),
        "offset_lsb": float(inl[0]),
        "gain_error_lsb": float(inl[-1] - inl[0]),
    }


@dataclass(frozen=True)
class SarAdcModel:
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
    energy_ref_bit_j: np.ndarray = field(default=None)  # type: ignore[assignment]
    energy_ref_mean_bits: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        n = _check_bits(self.bits, "SarAdcModel.bits")
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
        n = _check_bits(bits, "bits")
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

        Parameters
        ----------
        v
            Input voltages (V), any shape.
        skip
            Skipped MSB cycles, ``0 .. bits-1``, broadcastable against ``v``: those bits are
            forced to 0 and the search starts at bit ``bits - 1 - skip``.

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
        x = np.asarray(v, dtype=float)
        k = _skip_array(skip, self.bits)
        x, k = np.broadcast_arrays(x, k)
        xin = self.input_gain * x - self.shift_v - self.comparator_offset_v
        code = np.zeros(x.shape, dtype=np.int64)
        acc = np.zeros(x.shape, dtype=float)
        for i in range(self.bits - 1, -1, -1):
            w = self.bit_weights_v[i]
            keep = (xin - acc - w >= 0) & (i < self.bits - k)
            code |= keep.astype(np.int64) << i
            acc = acc + np.where(keep, w, 0.0)
        return code

    __call__ = convert

    def trial_thresholds(self, skip: int = 0) -> np.ndarray:
        """Input voltage at which each trial code would be accepted (V): entry ``c - 1`` for
        trial code ``c = 1 .. 2**(bits-skip) - 1`` (prefix bits plus the trial bit)."""
        n_codes = 2 ** (self.bits - int(_skip_array(skip, self.bits)))
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
        codes = self.convert(mids, skip)  # codes[j] holds on (cand[j-1], cand[j])
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
        return _inl_dnl_from_thresholds(self.thresholds(), self.bits, self.v_ref_v)

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
        k = _skip_array(skip, self.bits)
        e = self.energy_ref_j[k] + self.energy_dd_j[k]
        if codes is None:
            return np.asarray(e, dtype=float)
        c = np.asarray(codes, dtype=np.int64)
        c, k = np.broadcast_arrays(c, k)
        b = (c[..., None] >> np.arange(self.bits)) & 1
        extra = ((b - self.energy_ref_mean_bits[k]) * self.energy_ref_bit_j).sum(axis=-1)
        return np.asarray(self.energy_ref_j[k] + self.energy_dd_j[k] + extra, dtype=float)

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
        out: dict[str, Any] = {"kind": self.kind}
        for k in self._KEYS:
            v = getattr(self, k)
            out[k] = np.array(v) if isinstance(v, np.ndarray) else v
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SarAdcModel:
        """Rebuild from :meth:`to_dict` output; :class:`LibraryError` on a bad entry."""
        if not isinstance(d, Mapping):
            raise LibraryError("the sar_adc entry in the surrogate library is not a table")
        require_keys(dict(d), ("kind", *cls._KEYS), "the sar_adc model")
        if d["kind"] != cls.kind:
            raise LibraryError(f"expected a '{cls.kind}' surrogate, found '{d['kind']}'")
        vals: dict[str, Any] = {}
        for k in cls._KEYS:
            arr = as_float_array(d[k], f"sar_adc.{k}")
            vals[k] = arr if arr.ndim else float(arr)
        bits = vals["bits"]
        if bits != int(bits):
            raise LibraryError(f"sar_adc.bits = {bits} is not an integer")
        vals["bits"] = int(bits)
        try:
            return cls(**vals)
        except ValueError as exc:
            raise LibraryError(f"sar_adc model in the surrogate library: {exc}") from None


# ---------------------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------------------
def dac_states(codes: np.ndarray, skip: np.ndarray, bits: int) -> np.ndarray:
    """DAC bit state during each trial: ``(n, bits, bits)`` with ``[f, i, :]`` the bits
    (LSB first) applied while bit ``i`` is decided in conversion ``f``: the final bits above
    ``i``, bit ``i`` set unless skipped, bits below ``i`` clear."""
    c = np.asarray(codes, dtype=np.int64).reshape(-1)
    k = np.asarray(skip, dtype=np.int64).reshape(-1)
    b = (c[:, None] >> np.arange(bits)[None, :]) & 1  # (n, bits)
    j = np.arange(bits)
    above = (j[None, :] > j[:, None]).astype(np.int64)  # [i, j]: j above i
    state = b[:, None, :] * above[None, :, :]
    enabled = (j[None, :] < bits - k[:, None]).astype(np.int64)  # (n, i)
    state[:, j, j] = enabled
    return state


class SarAdcFitter:
    """Fit a :class:`SarAdcModel` to SPICE runs of :mod:`netlists.sar_adc` testbenches.

    scikit-learn contract: :meth:`fit` returns ``self``; learned attributes end in ``_``;
    :meth:`model` on an unfitted fitter raises
    :class:`~cosim.surrogates.base.NotFittedError`.

    Parameters
    ----------
    bits
        Resolution of the ADC.
    v_ref_v
        Reference voltage (V).
    conversion_time_s
        Duration of one conversion (s), stored in the model.

    Attributes
    ----------
    bit_weights_v_, shift_v_, input_gain_
        Least-squares fit of ``V_top = sum b_i w_i + shift - gain * v_in`` on the top-plate
        voltages at the decision instants.
    comparator_offset_v_
        From the comparator's DC trip point.
    residual_rms_v_, residual_max_v_
        Residual of the top-plate fit (V).
    decision_agreement_
        Fraction of SPICE bit decisions the fitted model reproduces.
    energy_ref_j_, energy_dd_j_
        Mean energy per conversion per skip count (J); NaN where the data has no
        conversion with that skip count.
    energy_ref_bit_j_, energy_ref_mean_bits_
        Linear data dependence of the reference energy on the output bits.
    energy_ref_residual_rms_j_, energy_ref_spread_rms_j_
        Residual of that linear model and the spread of the reference energy around its
        per-skip mean (J, rms): how much the data dependence explains.

    Examples
    --------
    >>> f = SarAdcFitter(3, 1.0, 5e-8)
    >>> f.model()
    Traceback (most recent call last):
    ...
    cosim.surrogates.base.NotFittedError: SarAdcFitter is not fitted yet; call fit(X, y) first
    """

    def __init__(self, bits: int, v_ref_v: float, conversion_time_s: float) -> None:
        self.bits = _check_bits(bits, "SarAdcFitter.bits")
        self.v_ref_v = float(v_ref_v)
        self.conversion_time_s = float(conversion_time_s)

    def fit(
        self,
        v_in: np.ndarray,
        skip: np.ndarray,
        probes: Mapping[str, np.ndarray],
        comparator_trip_v: float,
        energy_mask: np.ndarray | None = None,
    ) -> SarAdcFitter:
        """Fit from testbench data.

        Parameters
        ----------
        v_in
            Input voltage of every conversion (V), shape ``(n,)``.
        skip
            Skipped MSB cycles of every conversion, shape ``(n,)`` or scalar.
        probes
            :func:`netlists.sar_adc.decode_testbench` output (concatenated over runs):
            ``codes``, ``v_top_v`` ``(n, bits)``, ``e_ref_j``, ``e_dd_j``.
        comparator_trip_v
            Top-plate voltage at which the comparator output crosses mid-rail (V), from
            :func:`netlists.sar_adc.comparator_trip_netlist`; the offset is its negative.
        energy_mask
            Conversions (boolean, ``(n,)``) whose energies form the energy table, so that
            its input distribution is a deliberate choice; default all. Only legal ones
            (true code ``< 2**(bits - skip)``) are ever used.

        Returns
        -------
        SarAdcFitter
            ``self``.
        """
        n = self.bits
        v = np.asarray(v_in, dtype=float).reshape(-1)
        k = np.broadcast_to(_skip_array(skip, n), v.shape).astype(np.int64)
        codes = np.asarray(probes["codes"], dtype=np.int64).reshape(-1)
        v_top = np.asarray(probes["v_top_v"], dtype=float).reshape(v.size, n)
        if codes.shape != v.shape:
            raise ValueError("probes['codes'] and v_in must have one entry per conversion")
        if not math.isfinite(comparator_trip_v):
            raise ValueError("comparator_trip_v must be finite")
        state = dac_states(codes, k, n).reshape(-1, n).astype(float)  # rows: (f, i)
        vv = np.repeat(v, n)
        a = np.column_stack([state, np.ones(vv.size), -vv])
        y = v_top.reshape(-1)
        rank = np.linalg.matrix_rank(a)
        if rank < a.shape[1]:
            never = [i for i in range(n) if not np.any(state[:, i])]
            why = f"bit(s) {never} never set" if never else "too few distinct inputs"
            raise ValueError(
                f"SAR fit data do not determine every weight ({why}); add conversions "
                "spread over the input range"
            )
        coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        res = y - a @ coef
        self.bit_weights_v_ = coef[:n]
        self.shift_v_ = float(coef[n])
        self.input_gain_ = float(coef[n + 1])
        self.comparator_offset_v_ = -float(comparator_trip_v)
        self.residual_rms_v_ = float(np.sqrt(np.mean(res**2)))
        self.residual_max_v_ = float(np.max(np.abs(res)))
        # each SPICE decision: bit i kept iff it is set in the final code (if not skipped)
        kept = ((codes[:, None] >> np.arange(n)[None, :]) & 1).astype(bool)
        enabled = np.arange(n)[None, :] < n - k[:, None]
        model_keep = -v_top - self.comparator_offset_v_ > 0
        self.decision_agreement_ = float(np.mean((model_keep == kept)[enabled]))
        # the energy table describes legal skips only (true code < 2**(bits - skip))
        full = self.model_codes(v)
        legal = full < 2 ** (n - k)
        if energy_mask is not None:
            legal &= np.asarray(energy_mask, dtype=bool).reshape(v.shape)
        self._fit_energy(
            codes[legal], k[legal], {e: np.asarray(probes[e])[legal] for e in ("e_ref_j", "e_dd_j")}
        )
        return self

    def model_codes(self, v: np.ndarray) -> np.ndarray:
        """Full-conversion codes of the fitted weights and offset (energies not needed)."""
        check_fitted(self, "bit_weights_v_")
        m = SarAdcModel(
            bits=self.bits,
            v_ref_v=self.v_ref_v,
            bit_weights_v=self.bit_weights_v_,
            shift_v=self.shift_v_,
            input_gain=self.input_gain_,
            comparator_offset_v=self.comparator_offset_v_,
            energy_ref_j=np.zeros(self.bits),
            energy_dd_j=np.zeros(self.bits),
            conversion_time_s=self.conversion_time_s,
        )
        return m.convert(v)

    def _fit_energy(self, codes: np.ndarray, k: np.ndarray, probes: Mapping) -> None:
        n = self.bits
        e_ref = np.asarray(probes["e_ref_j"], dtype=float).reshape(-1)
        e_dd = np.asarray(probes["e_dd_j"], dtype=float).reshape(-1)
        self.energy_ref_j_ = np.full(n, np.nan)
        self.energy_dd_j_ = np.full(n, np.nan)
        self.energy_ref_mean_bits_ = np.zeros((n, n))
        b = ((codes[:, None] >> np.arange(n)[None, :]) & 1).astype(float)
        centred = np.zeros_like(b)
        e_centred = np.zeros_like(e_ref)
        for s in range(n):
            m = k == s
            if not np.any(m):
                continue
            self.energy_ref_j_[s] = e_ref[m].mean()
            self.energy_dd_j_[s] = e_dd[m].mean()
            self.energy_ref_mean_bits_[s] = b[m].mean(axis=0)
            centred[m] = b[m] - self.energy_ref_mean_bits_[s]
            e_centred[m] = e_ref[m] - self.energy_ref_j_[s]
        if codes.size == 0:  # no legal conversion: tables stay NaN, no data dependence
            self.energy_ref_bit_j_ = np.zeros(n)
            self.energy_ref_residual_rms_j_ = math.nan
            self.energy_ref_spread_rms_j_ = math.nan
            return
        coef, *_ = np.linalg.lstsq(centred, e_centred, rcond=None)
        self.energy_ref_bit_j_ = coef
        self.energy_ref_residual_rms_j_ = float(np.sqrt(np.mean((e_centred - centred @ coef) ** 2)))
        self.energy_ref_spread_rms_j_ = float(np.sqrt(np.mean(e_centred**2)))

    def model(self, energy_ref_j: Any = None, energy_dd_j: Any = None) -> SarAdcModel:
        """The fitted :class:`SarAdcModel`.

        Parameters
        ----------
        energy_ref_j, energy_dd_j
            Energy tables to use instead of the fitted ones (J per skip count), e.g. the
            nominal instance's for a Monte-Carlo instance fitted without a skip sweep.
        """
        check_fitted(self, "bit_weights_v_")
        e_ref = self.energy_ref_j_ if energy_ref_j is None else np.asarray(energy_ref_j, float)
        e_dd = self.energy_dd_j_ if energy_dd_j is None else np.asarray(energy_dd_j, float)
        if not (np.all(np.isfinite(e_ref)) and np.all(np.isfinite(e_dd))):
            missing = np.flatnonzero(~np.isfinite(e_ref) | ~np.isfinite(e_dd)).tolist()
            raise ValueError(
                f"no energy data for skip count(s) {missing}; fit on conversions with every "
                "skip count or pass energy tables"
            )
        data_dep = energy_ref_j is None
        return SarAdcModel(
            bits=self.bits,
            v_ref_v=self.v_ref_v,
            bit_weights_v=self.bit_weights_v_,
            shift_v=self.shift_v_,
            input_gain=self.input_gain_,
            comparator_offset_v=self.comparator_offset_v_,
            energy_ref_j=e_ref,
            energy_dd_j=e_dd,
            conversion_time_s=self.conversion_time_s,
            energy_ref_bit_j=self.energy_ref_bit_j_ if data_dep else None,
            energy_ref_mean_bits=self.energy_ref_mean_bits_ if data_dep else None,
        )


# ---------------------------------------------------------------------------------------
# threshold tables (Bao et al. 2022 comparison-level variation)
# ---------------------------------------------------------------------------------------
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
        n = _check_bits(self.bits, "ThresholdAdc.bits")
        object.__setattr__(self, "bits", n)
        t = np.array(self.thresholds_v, dtype=float)
        if t.shape != (2**n - 1,):
            raise ValueError(f"ThresholdAdc.thresholds_v must have shape ({2**n - 1},)")
        if not np.all(np.isfinite(t)):
            raise ValueError("ThresholdAdc.thresholds_v holds NaN or inf")
        if np.any(np.diff(t) < 0):
            raise ValueError("ThresholdAdc.thresholds_v must be sorted ascending")
        t.setflags(write=False)
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
        k = _skip_array(skip, self.bits)
        return np.minimum(code, (np.int64(1) << (self.bits - k)) - 1)

    __call__ = convert

    def inl_dnl(self) -> dict[str, Any]:
        """INL/DNL in LSB, as :meth:`SarAdcModel.inl_dnl`."""
        return _inl_dnl_from_thresholds(self.thresholds_v, self.bits, self.v_ref_v)

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


def comparison_level_variation(
    bits: int, v_ref_v: float, nva: float, rng: np.random.Generator
) -> ThresholdAdc:
    """An ADC instance with comparison-level variation (Bao et al. 2022).

    Each comparison level (the ideal transition ``(k - 1/2) LSB``) is perturbed once per
    instance by ``N(0, nva * v_ref_v)``; the table is then sorted, so the instance stays
    monotone (a level pushed past its neighbour swaps with it, which shows as a missing
    code).

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
    n = _check_bits(bits, "bits")
    if not math.isfinite(nva) or nva < 0:
        raise ValueError(f"nva = {nva!r} must be finite and >= 0")
    lsb = v_ref_v / 2**n
    levels = (np.arange(1, 2**n) - 0.5) * lsb
    levels = levels + nva * v_ref_v * rng.standard_normal(levels.size)
    return ThresholdAdc(n, v_ref_v, np.sort(levels))
