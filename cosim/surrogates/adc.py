"""SAR ADC surrogates: an exact binary-search emulation fitted to SPICE, and a threshold table.

:class:`SarAdcModel` replays the successive-approximation search of
:mod:`netlists.sar_adc` with the *realized* DAC: the comparator sees ::

    x = input_gain * v - (sum of the set bits' weights + shift_v)

and keeps a trial bit when ``x > comparator_offset_v``. The weights (top-plate volts per
bit, LSB first), the half-LSB ``shift_v`` and ``input_gain`` include capacitor mismatch and
the parasitic attenuation of the top plate, so the emulation reproduces offset, gain error,
INL/DNL, missing codes and wide codes of one ADC instance, and the sparsity-aware mode
(``skip`` MSB cycles forced to 0). :class:`SarAdcFitter` extracts these from SPICE probes:
least squares on the top-plate voltage at every decision instant (and in the done cycle),
plus the comparator trip point from a DC sweep. :meth:`SarAdcModel.convert` is a cached
lookup table that is bit-exact with the search (:meth:`SarAdcModel.convert_exact`) and
converts 1e8 to 2e8 values per second at any resolution.

Per resolution and per chip: :func:`models_by_bits` decodes the nominal model that the
characterization fits at every resolution ``1 .. card.adc.bits``;
:func:`sample_instance` draws a Monte-Carlo instance around one of them (capacitor
mismatch and comparator offset applied by :func:`with_mismatch`).

:class:`ThresholdAdc` is a plain table of code transition voltages converted with
``searchsorted``; :class:`SarLevelAdc` holds the level each SAR trial compares against
and runs the binary search over them, and :func:`comparison_level_variation` builds one
with the comparison-level variation model of Bao et al. 2022 (``nva``).

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
from dataclasses import dataclass, field, replace
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


class _Lookup:
    """Count the transitions ``<= x`` for many ``x`` at once, exactly, in O(1) per value.

    The range ``[lo, hi)`` around the transitions ``t`` (sorted) is cut into ``nb`` equal
    buckets of width ``h`` (about a quarter LSB). For bucket ``g`` with edges
    ``E_g = lo + g h`` it stores ``base[g] = #{t < E_g - margin}`` and the transitions in
    ``[E_g - margin, E_{g+1} + margin]`` (padded with NaN); a value ``x`` in bucket
    ``g`` has ``#{t <= x} = base[g] + #{listed t <= x}`` (equal transitions are listed
    once and counted with their multiplicity). The margin (1e-6 h) covers the
    rounding of the bucket index, so the count is exact for every double; values outside
    ``[lo, hi)`` fall into the end buckets, whose lists hold every transition beyond them.

    With ``dtype=float32`` the table counts float32 inputs in float32 arithmetic (half the
    memory traffic): its transitions must be float32 values (:meth:`SarAdcModel._table32`
    finds them among the float32 values, which keeps every count of a float32 input), and
    the margin is 1e-3 h,
    above the float32 rounding of the bucket index (about 1.3e-4 buckets at 1028 buckets).
    """

    __slots__ = ("base", "count", "inv_h", "lists", "lo_v", "nb", "packed", "transitions_v")

    def __init__(self, t: np.ndarray, scale_v: float, dtype: Any = np.float64) -> None:
        dtype = np.dtype(dtype)
        t = np.asarray(t, dtype=float)
        if dtype == np.float32 and not np.array_equal(t.astype(np.float32), t):
            raise ValueError("a float32 table needs float32 transitions")
        t.setflags(write=False)
        self.transitions_v = t
        # equal transitions (missing codes) are counted once, then mapped back by `count`
        u, mult = np.unique(t, return_counts=True)
        self.count = None if u.size == t.size else np.concatenate(([0], np.cumsum(mult)))
        pad = max((u[-1] - u[0]) / u.size, scale_v, 1e-300)
        self.nb = 4 * u.size + 4
        # the grid as the arithmetic of `dtype` sees it: lo and 1/h in that precision
        self.lo_v = dtype.type(u[0] - pad)
        self.inv_h = dtype.type(self.nb / (u[-1] + pad - float(self.lo_v)))
        h = 1.0 / float(self.inv_h)
        margin = (1e-3 if dtype == np.float32 else 1e-6) * h
        edges = float(self.lo_v) + np.arange(self.nb + 1) * h
        self.base = np.searchsorted(u, edges[:-1] - margin, side="left").astype(np.int64)
        end = np.searchsorted(u, edges[1:] + margin, side="right")
        end[-1] = u.size  # the last bucket also counts everything above it
        m = int(np.max(end - self.base))
        lists = np.full((m, self.nb), np.nan)  # x >= NaN is False, even for x = inf
        for j in range(m):
            idx = self.base + j
            ok = idx < end
            lists[j, ok] = u[idx[ok]]
        self.lists = lists.astype(dtype)
        # float32 with one listed transition per bucket (the usual case): the transition and
        # the base count of a bucket in one 8-byte word, fetched by one gather
        self.packed = None
        if dtype == np.float32 and m == 1 and u.size < 2**31:
            packed = np.empty((self.nb, 2), dtype=np.float32)
            packed[:, 0] = self.lists[0]
            packed[:, 1].view(np.int32)[:] = self.base
            self.packed = packed.view(np.uint64).reshape(-1)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # NaN converts to 0, as in the search; the maximum is NaN for any NaN (one fast
        # reduction instead of a test per value)
        if x.size and np.isnan(np.max(x)):
            x = np.where(np.isnan(x), -np.inf, x)
        with np.errstate(over="ignore"):  # far outside the range: clipped to an end bucket
            g = x - self.lo_v
            g *= self.inv_h
        np.clip(g, 0, self.nb - 1, out=g)
        gi = g.astype(np.intp)
        if self.packed is not None:
            words = self.packed[gi]
            halves = words.view(np.float32)  # (…, 2·n): transition, base count (int32 bits)
            t, base = halves[..., 0::2], halves[..., 1::2].view(np.int32)
            code = np.add(base, x >= t, dtype=np.int64)
        else:
            code = self.base[gi]
            for row in self.lists:
                code += x >= row[gi]
        return code if self.count is None else self.count[code]


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
        k = _skip_array(skip, self.bits)
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

    def _last_transition(self, skip: int) -> float:
        """Smallest input whose ``skip`` code is all ones (inf without a table: search)."""
        look = self._table(skip)
        return math.inf if look is None else float(look.transitions_v[-1])

    __call__ = convert

    def convert_exact(self, v: Any, skip: Any = 0) -> np.ndarray:
        """Codes by replaying the binary search bit by bit (same contract as :meth:`convert`).

        The reference that :meth:`convert` reproduces; its cost grows with the resolution
        (about 6 ms per bit per 1e6 values).
        """
        x = np.asarray(v, dtype=float)
        k = _skip_array(skip, self.bits)
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

    def _convert_one_skip(self, x: np.ndarray, s: int) -> np.ndarray:
        if x.ndim == 0:
            return self._convert_one_skip(x.reshape(1), s).reshape(())
        if self.bits - s == 1:  # a single comparison: the search is as fast
            return self._search(x, s)
        look = self._table(s)
        if look is None:  # never for a valid model; see _table
            return self._search(x, s)
        return look(x)

    def _table(self, skip: int) -> _Lookup | None:
        """The lookup table of ``skip`` (cached): bit-exact with :meth:`_search`.

        Entry ``k - 1`` of its transitions is the smallest double ``t`` whose search code is
        ``>= k``: it starts from :meth:`thresholds` (a division, off by a few ulps) and
        steps with ``nextafter`` until the search itself brackets it. Because the search's
        code is a non-decreasing function of the input (see :meth:`_search`), ``code(v)``
        then equals the number of transitions ``<= v`` for every input, missing codes
        included (equal entries). A table that does not converge in 64 ulp steps or is not
        sorted would mean a non-monotone transfer: ``None`` is cached and the search used.
        """
        cache = self._cache
        if skip not in cache:
            table = self._transitions(skip)
            cache[skip] = None if table is None else _Lookup(table, self.v_ref_v / 2**self.bits)
        return cache[skip]

    def _transitions(self, skip: int, dtype: Any = np.float64) -> np.ndarray | None:
        """The exact transitions of :meth:`_table` (cached), None for a non-monotone
        transfer: entry ``k - 1`` is the smallest value of ``dtype`` (float64 or float32)
        whose search code is ``>= k``."""
        dtype = np.dtype(dtype)
        key = ("transitions", skip, dtype.str)
        cache = self._cache
        if key in cache:
            return cache[key]
        target = np.arange(1, 2 ** (self.bits - skip), dtype=np.int64)
        hi = np.array(self.thresholds(skip), dtype=dtype)
        up, down = dtype.type(np.inf), dtype.type(-np.inf)
        table: np.ndarray | None = None
        converged = False
        for _ in range(64):  # up: the smallest candidate reaching its code
            low = self._search(hi.astype(float), skip) < target
            if not low.any():
                converged = True
                break
            hi[low] = np.nextafter(hi[low], up)
        if converged:
            for _ in range(64):  # down: while the value below still reaches it
                lo = np.nextafter(hi, down)
                reach = self._search(lo.astype(float), skip) >= target
                if not reach.any():
                    table = hi
                    break
                hi[reach] = lo[reach]
        if table is not None and not np.all(np.diff(table) >= 0):
            table = None
        cache[key] = table
        return table

    def _table32(self) -> _Lookup | None:
        """:meth:`_table` (no skip) for float32 inputs (cached): a float32 input ``x`` is
        ``>= t`` exactly when it is ``>=`` the smallest float32 not below ``t``, so the
        transitions found among float32 values give every float32 input its exact code."""
        cache = self._cache
        if "f32" not in cache:
            # (a float64 table known to fail its checks fails here too)
            t = None if cache.get(0, True) is None else self._transitions(0, np.float32)
            look = None
            if t is not None:
                look = _Lookup(t.astype(float), self.v_ref_v / 2**self.bits, np.float32)
            cache["f32"] = look
        return cache["f32"]

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
        if codes is None:
            return np.asarray(self.energy_ref_j[k] + self.energy_dd_j[k], dtype=float)
        c = np.asarray(codes)
        if c.dtype.kind not in "iu":
            raise ValueError("codes must be integers")
        if c.size and (c.min() < 0 or c.max() >= 2**self.bits):
            raise ValueError(f"codes must lie in 0..{2**self.bits - 1} for a {self.bits}-bit ADC")
        return self._energy_table()[k, c]

    def _energy_table(self) -> np.ndarray:
        """``[k, c]``: energy of a conversion with ``k`` skipped cycles giving code ``c``."""
        if "energy" not in self._cache:
            n = self.bits
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
# per-resolution models and Monte-Carlo instances
# ---------------------------------------------------------------------------------------
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
    top = max(models) if bits is None else _check_bits(bits, "bits")
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


def mismatch_units(bits: int) -> np.ndarray:
    """Unit capacitors in each DAC capacitor, in the order of the mismatch draws: the bit
    capacitors (LSB first, ``2**i``), the dummy (1) and the half-LSB capacitor (1/2)."""
    n = _check_bits(bits, "bits")
    return np.array([2.0**i for i in range(n)] + [1.0, 0.5])


def with_mismatch(
    nominal: SarAdcModel, cap_rel_err: Any, offset_delta_v: float = 0.0
) -> SarAdcModel:
    """The nominal instance with capacitor errors and an extra comparator offset.

    The fitted nominal determines every capacitor as a fraction of its total top-plate
    capacitance ``C_tot`` (:meth:`netlists.sar_adc.SarAdcParams.analytic_weights`)::

        C_i / C_tot = w_i / V_ref      C_h / C_tot = -shift / V_ref
        C_d / C_tot = gain - sum_i C_i / C_tot      C_p / C_tot = 1 - gain - C_h / C_tot

    Each of the bit, dummy and half-LSB capacitors is scaled by ``1 + cap_rel_err[j]``;
    the parasitic stays; the weights, shift and gain are recomputed with the new total.
    Energy tables and the conversion time are the nominal's.

    Parameters
    ----------
    nominal
        A fitted nominal model (weights, shift and gain of a capacitor array).
    cap_rel_err
        Relative error of each capacitor, shape ``(bits + 2,)`` in the order of
        :func:`mismatch_units`.
    offset_delta_v
        Added to the nominal comparator offset (V).

    Raises
    ------
    ValueError
        A model whose implied dummy or half-LSB capacitor is not positive, or errors that
        make a capacitor non-positive.
    """
    n = nominal.bits
    e = np.asarray(cap_rel_err, dtype=float).reshape(-1)
    if e.shape != (n + 2,) or not np.all(np.isfinite(e)):
        raise ValueError(f"cap_rel_err must hold {n + 2} finite values (bits, dummy, half)")
    v = nominal.v_ref_v
    x = nominal.bit_weights_v / v
    h = -nominal.shift_v / v
    d = nominal.input_gain - float(np.sum(x))
    p = 1.0 - nominal.input_gain - h
    if d <= 0 or h <= 0:
        raise ValueError(
            "the nominal model does not describe a capacitor array (implied dummy "
            f"{d:.3g} and half-LSB {h:.3g} fractions of C_tot must be > 0)"
        )
    xm = x * (1.0 + e[:n])
    dm = d * (1.0 + e[n])
    hm = h * (1.0 + e[n + 1])
    if np.any(xm <= 0) or dm <= 0 or hm <= 0:
        raise ValueError("a capacitor error <= -100 % makes a capacitor non-positive")
    ct = float(np.sum(xm)) + dm + hm + p
    return replace(
        nominal,
        bit_weights_v=v * xm / ct,
        shift_v=-v * hm / ct,
        input_gain=(float(np.sum(xm)) + dm) / ct,
        comparator_offset_v=nominal.comparator_offset_v + float(offset_delta_v),
    )


def sample_instance(
    nominal: SarAdcModel | Mapping[int, SarAdcModel],
    card: Any,
    rng: np.random.Generator,
    bits: int | None = None,
) -> SarAdcModel:
    """A Monte-Carlo ADC instance around the SPICE-fitted nominal at one resolution.

    The draws are those of :meth:`netlists.sar_adc.SarAdcParams.sample`, in the same order
    (so the same generator state gives the same instance as the netlist's): a capacitor of
    ``m`` unit capacitors (:func:`mismatch_units`) gets a relative error
    ``N(0, card.adc.cap_mismatch_sigma_rel / sqrt(m))``; the comparator offset is the
    nominal's fitted offset ``+ N(0, card.adc.comparator_offset_sigma_v)``. They are applied
    to the fitted nominal by :func:`with_mismatch`, so the instance keeps the nominal's
    SPICE-measured input gain and parasitic attenuation and its energy tables.

    Why this is faithful: the top plate of the charge-redistribution DAC is a capacitive
    divider, linear in the capacitors, so an instance differs from the nominal only through
    the capacitor ratios, which mismatch scales, and the comparator offset. The SPICE fits
    of weights, shift and gain agree with the capacitor ratios
    (``SarAdcParams.analytic_weights``) to a few 1e-6 relative (switch leakage; 1.8e-6 at
    most over the nominal at every resolution and the Monte-Carlo instances of the default
    card's quick characterization), and everything the ratios do not capture (the parasitic
    attenuation, the measured offset and energies) is taken from the fitted nominal.
    :func:`~cosim.characterize.adc.characterize_adc` checks both each run:
    ``analytic_weights_max_rel_error``, and each SPICE Monte-Carlo instance rebuilt by
    :func:`with_mismatch` from the fitted nominal and that instance's draws, against its
    SPICE fit (``sample_instance_weights_max_rel_error``, 1.1e-6) and its held-out SPICE
    codes (``sample_instance_code_agreement``, 1.0).

    Parameters
    ----------
    nominal
        The fitted nominal model at the wanted resolution, or the table of
        :func:`models_by_bits` (then ``bits`` picks one; default ``card.adc.bits``).
    card
        The hardware card (``card.adc`` gives the mismatch and offset sigmas).
    rng
        Source of the draws (one instance per call).
    bits
        Resolution; with a single model it must be that model's (default).

    Examples
    --------
    >>> from cosim.card import load_card
    >>> nom = SarAdcModel.ideal(3, 1.0)
    >>> a = sample_instance(nom, load_card(), np.random.default_rng(1))
    >>> b = sample_instance(nom, load_card(), np.random.default_rng(1))
    >>> bool(np.all(a.bit_weights_v == b.bit_weights_v)), a.bits
    (True, 3)
    """
    if isinstance(nominal, Mapping):
        n = card.adc.bits if bits is None else _check_bits(bits, "bits")
        if n not in nominal:
            raise ValueError(f"no {n}-bit nominal model (have {sorted(nominal)})")
        nominal = nominal[n]
    elif bits is not None and _check_bits(bits, "bits") != nominal.bits:
        raise ValueError(
            f"sample_instance got a {nominal.bits}-bit nominal model for bits={bits}; pass "
            "the nominal of that resolution (models_by_bits(extra)[bits])"
        )
    units = mismatch_units(nominal.bits)
    sigma = float(card.adc.cap_mismatch_sigma_rel)
    err = rng.standard_normal(units.size) * sigma / np.sqrt(units)
    d_os = float(card.adc.comparator_offset_sigma_v) * float(rng.standard_normal())
    return with_mismatch(nominal, err, d_os)


# ---------------------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------------------
def uniform_bit_means(model: SarAdcModel, skip: int, lo_v: float, hi_v: float) -> np.ndarray:
    """Mean of each output bit (LSB first) for inputs uniform on ``[lo_v, hi_v)``.

    Exact for the model's transfer: each code's share of the interval from
    :meth:`SarAdcModel.thresholds`.

    Examples
    --------
    >>> uniform_bit_means(SarAdcModel.ideal(2, 1.0), 0, 0.0, 0.875).round(3).tolist()
    [0.571, 0.571]
    """
    if not hi_v > lo_v:
        raise ValueError("uniform_bit_means needs hi_v > lo_v")
    t = model.thresholds(skip)
    edges = np.clip(np.concatenate(([lo_v], t, [hi_v])), lo_v, hi_v)
    share = np.diff(edges) / (hi_v - lo_v)  # code c on [t_c, t_{c+1})
    c = np.arange(share.size)
    return ((c[:, None] >> np.arange(model.bits)) & 1).T.astype(float) @ share


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
        voltages at the decision instants (and in the done cycle, when probed).
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
    energy_ref_correction_j_
        Control-variate correction added to each ``energy_ref_j_`` entry (J; zeros without
        ``energy_range_v``).
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
        energy_range_v: np.ndarray | None = None,
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
            ``codes``, ``v_top_v`` ``(n, bits)``, ``e_ref_j``, ``e_dd_j``, and optionally
            ``v_top_done_v`` ``(n,)`` (the final code on the DAC; needed for one bit).
        comparator_trip_v
            Top-plate voltage at which the comparator output crosses mid-rail (V), from
            :func:`netlists.sar_adc.comparator_trip_netlist`; the offset is its negative.
        energy_mask
            Conversions (boolean, ``(n,)``) whose energies form the energy table, so that
            its input distribution is a deliberate choice; default all. Only legal ones
            (true code ``< 2**(bits - skip)``) are ever used.
        energy_range_v
            ``(bits, 2)``: the energy conversions with skip count ``k`` have inputs drawn
            uniformly from ``[lo, hi)`` = row ``k``. The table entry is then the mean over
            that distribution estimated with the fitted bit dependence as a control
            variate: the sample mean plus ``energy_ref_bit_j_`` times (the distribution's
            mean bits under the fitted transfer minus the sample's), which removes most of
            the sampling noise of a few conversions; ``energy_ref_mean_bits_`` is then the
            distribution's. Only for skip counts where the bit dependence (one fit over all
            skip counts) lowers the spread of that skip count's energies; the others keep
            the sample mean. Default: plain sample means.

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
        y = v_top.reshape(-1)
        if "v_top_done_v" in probes:  # the final code on the DAC, one row per conversion
            final = ((codes[:, None] >> np.arange(n)[None, :]) & 1).astype(float)
            state = np.concatenate([state, final])
            vv = np.concatenate([vv, v])
            y = np.concatenate([y, np.asarray(probes["v_top_done_v"], float).reshape(-1)])
        a = np.column_stack([state, np.ones(vv.size), -vv])
        rank = np.linalg.matrix_rank(a)
        if rank < a.shape[1]:
            never = [i for i in range(n) if not np.any(state[:, i])]
            if never:
                why = f"bit(s) {never} never set"
            elif n == 1 and "v_top_done_v" not in probes:
                why = "one bit: its weight and the shift need the done-cycle probe v_top_done_v"
            else:
                why = "too few distinct inputs or codes"
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
        self.energy_ref_correction_j_ = np.zeros(n)
        if energy_range_v is not None and codes[legal].size:
            rng_v = np.asarray(energy_range_v, dtype=float)
            if rng_v.shape != (n, 2) or not np.all(rng_v[:, 1] > rng_v[:, 0]):
                raise ValueError(f"energy_range_v must be ({n}, 2) rows [lo, hi) with hi > lo")
            wm = self._weights_model()
            for s in range(n):
                if not (np.isfinite(self.energy_ref_j_[s]) and self._cv_helps[s]):
                    continue
                pop = uniform_bit_means(wm, s, *rng_v[s])
                corr = float((pop - self.energy_ref_mean_bits_[s]) @ self.energy_ref_bit_j_)
                self.energy_ref_j_[s] += corr
                self.energy_ref_correction_j_[s] = corr
                self.energy_ref_mean_bits_[s] = pop
        return self

    def model_codes(self, v: np.ndarray) -> np.ndarray:
        """Full-conversion codes of the fitted weights and offset (energies not needed)."""
        return self._weights_model().convert(v)

    def _weights_model(self) -> SarAdcModel:
        """The fitted weights and offset with zero energies."""
        check_fitted(self, "bit_weights_v_")
        return SarAdcModel(
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
            self._cv_helps = np.zeros(n, dtype=bool)
            self.energy_ref_residual_rms_j_ = math.nan
            self.energy_ref_spread_rms_j_ = math.nan
            return
        coef, *_ = np.linalg.lstsq(centred, e_centred, rcond=None)
        self.energy_ref_bit_j_ = coef
        # the pooled bit dependence is a useful control variate for a skip count only where
        # it explains part of that skip count's spread (it is dominated by the large
        # energies of few skips and can misdescribe heavily skipped conversions)
        resid = e_centred - centred @ coef
        self._cv_helps = np.array(
            [
                bool(np.any(k == s)) and np.sum(resid[k == s] ** 2) < np.sum(e_centred[k == s] ** 2)
                for s in range(n)
            ]
        )
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
        n = _check_bits(self.bits, "ThresholdAdc.bits")
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
        n = _check_bits(self.bits, "SarLevelAdc.bits")
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
        k = None if np.isscalar(skip) and skip == 0 else _skip_array(skip, self.bits)
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
    n = _check_bits(bits, "bits")
    if not math.isfinite(nva) or nva < 0:
        raise ValueError(f"nva = {nva!r} must be finite and >= 0")
    lsb = v_ref_v / 2**n
    levels = (np.arange(1, 2**n) - 0.5) * lsb
    levels = levels + nva * v_ref_v * rng.standard_normal(levels.size)
    return SarLevelAdc(n, v_ref_v, levels)
