"""Exact conversion by table lookup: the kernel, and the tables of a monotone converter.

:class:`_Lookup` counts the transitions ``<= x`` for many ``x`` at once in O(1) per value,
exactly for every double (or every float32 with a float32 table).
:class:`ExactTables` gives a converter whose code is a non-decreasing function of its
input (defined by its ``_search``) the cached, bit-exact tables that
:meth:`cosim.surrogates.adc.SarAdcModel.convert` runs on: a transition is the smallest
double (or float32) whose search code reaches it, found from the converter's approximate
``thresholds`` by ``nextafter`` steps checked against the search itself.

Examples
--------
>>> look = _Lookup(np.array([0.25, 0.5, 0.5, 0.75]), 0.25)
>>> look(np.array([0.0, 0.25, 0.5, 0.6, 1.0])).tolist()
[0, 1, 3, 3, 4]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


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


class ExactTables:
    """Mixin: lookup tables bit-exact with a monotone search, built on first use.

    The class it is mixed into provides ``bits``, ``v_ref_v``, a ``_cache`` dict,
    ``_search(x, skip)`` (codes of float inputs with ``skip`` MSB cycles skipped, a
    non-decreasing function of ``x``) and ``thresholds(skip)`` (the code transitions,
    possibly off by a few ulps).
    """

    _cache: dict
    bits: int
    v_ref_v: float

    def _search(self, x: np.ndarray, k: np.ndarray | int) -> np.ndarray:
        raise NotImplementedError  # the converter's exact search

    def thresholds(self, skip: int = 0) -> np.ndarray:
        raise NotImplementedError  # the converter's approximate transitions

    def _last_transition(self, skip: int) -> float:
        """Smallest input whose ``skip`` code is all ones (inf without a table: search)."""
        look = self._table(skip)
        return math.inf if look is None else float(look.transitions_v[-1])

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
