"""Fit a :class:`~cosim.surrogates.adc.sar.SarAdcModel` to SPICE runs of the SAR netlist.

:class:`SarAdcFitter` (scikit-learn contract) solves least squares on the top-plate
voltage at every decision instant (and in the done cycle) for the bit weights, the
half-LSB shift and the input gain, takes the comparator offset from the DC trip sweep, and
tabulates the energy per conversion per skip count with its linear dependence on the
output bits. :func:`uniform_bit_means` and :func:`dac_states` are its helpers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from cosim.surrogates.adc.checks import check_bits, skip_array
from cosim.surrogates.adc.sar import SarAdcModel
from cosim.surrogates.base import check_fitted


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
        self.bits = check_bits(bits, "SarAdcFitter.bits")
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
        k = np.broadcast_to(skip_array(skip, n), v.shape).astype(np.int64)
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
