"""Fitting a SAR instance on its SPICE conversions and scoring it on held-out ones; the
held-out counts, agreement summary and stored per-resolution results both ADC
characterizations report."""

from __future__ import annotations

import time
from collections.abc import Container, Mapping
from typing import Any

import numpy as np

from cosim.characterize.adc.batches import Batch, concat
from cosim.characterize.adc.inputs import skip_sweep_range
from cosim.surrogates.adc import SarAdcFitter, SarAdcModel, mismatch_units
from netlists.sar_adc import SarAdcParams


def draws(params: SarAdcParams, nominal: SarAdcParams) -> tuple[np.ndarray, float]:
    """The relative capacitor errors (order of :func:`mismatch_units`) and the offset
    change of a Monte-Carlo instance against its nominal."""
    caps = np.array([*params.c_bits_f, params.c_dummy_f, params.c_half_f])
    err = caps / (mismatch_units(params.bits) * params.c_unit_f) - 1.0
    return err, params.comparator_offset_v - nominal.comparator_offset_v


def weights_rel_error(m: SarAdcModel, ref: SarAdcModel) -> float:
    """Largest relative difference of the weights, shift and gain of two models."""
    a = np.concatenate([m.bit_weights_v, [m.shift_v, m.input_gain]])
    b = np.concatenate([ref.bit_weights_v, [ref.shift_v, ref.input_gain]])
    return float(np.max(np.abs(a / b - 1.0)))


def fit_nominal(
    p: SarAdcParams,
    fit_data: dict[str, np.ndarray],
    fit_b: Batch,
    skip_data: dict[str, np.ndarray],
    skip_b: Batch,
    trip_v: float,
) -> SarAdcFitter:
    """Fit a nominal instance on its fit and skip-sweep conversions; the energy table from
    the skip sweep's uniform legal inputs only (mean over that distribution, with the bit
    dependence as control variate)."""
    data = concat(fit_data, {k: skip_data[k] for k in fit_data})
    v = np.concatenate([fit_b.v, skip_b.v])
    k = np.concatenate([fit_b.k, skip_b.k])
    e_mask = np.arange(v.size) >= fit_b.v.size
    return SarAdcFitter(p.bits, p.v_ref_v, p.conversion_time_s).fit(
        v, k, data, trip_v, energy_mask=e_mask, energy_range_v=skip_sweep_range(p)
    )


def heldout_stats(
    m: SarAdcModel, p: SarAdcParams, batch: Batch, held: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Agreement of ``m`` with SPICE on held-out conversions, energy error, INL/DNL."""
    diff = np.abs(m.convert(batch.v, batch.k) - held["codes"])
    e_true = held["e_ref_j"] + held["e_dd_j"]
    e_pred = m.energy_per_conversion_j(batch.k, held["codes"])
    e_mean = m.energy_per_conversion_j(batch.k)
    ideal = np.clip(np.floor(batch.v / p.lsb_v + 0.5), 0, 2**p.bits - 1)
    stats = m.inl_dnl()
    return {
        **heldout_counts(diff),
        "spice_equals_ideal_quantizer": float(np.mean(held["codes"] == ideal)),
        "max_abs_inl_lsb": stats["max_abs_inl_lsb"],
        "max_abs_dnl_lsb": stats["max_abs_dnl_lsb"],
        "max_abs_inl_endpoint_lsb": float(np.max(np.abs(stats["inl_endpoint_lsb"]))),
        "offset_lsb": stats["offset_lsb"],
        "gain_error_lsb": stats["gain_error_lsb"],
        "missing_codes": stats["missing_codes"],
        "energy_rel_rms_error": rel_rms_error(e_pred, e_true),
        "energy_rel_rms_error_mean_table": rel_rms_error(e_mean, e_true),
    }


def heldout_counts(diff: np.ndarray) -> dict[str, Any]:
    """How many held-out conversions there were, how many the model got exactly and within
    one code of SPICE (``diff``: the absolute code differences), and the agreement."""
    return {
        "n_heldout": int(diff.size),
        "n_agree": int(np.sum(diff == 0)),
        "n_within_1": int(np.sum(diff <= 1)),
        "code_agreement": float(np.mean(diff == 0)),
    }


def rel_rms_error(pred: np.ndarray, true: np.ndarray) -> float:
    """RMS of ``pred - true`` relative to the mean of ``true``."""
    return float(np.sqrt(np.mean((pred - true) ** 2)) / np.mean(true))


def agreement_summary(per_inst: list[dict[str, Any]], target: float) -> dict[str, Any]:
    """The validation's code agreement over every instance's :func:`heldout_counts`."""
    n_held = sum(s["n_heldout"] for s in per_inst)
    return {
        "n_heldout": n_held,
        "code_agreement": sum(s["n_agree"] for s in per_inst) / n_held,
        "code_agreement_target": target,
        "within_1_lsb": sum(s["n_within_1"] for s in per_inst) / n_held,
        "code_agreement_min_instance": min(s["code_agreement"] for s in per_inst),
    }


def mc_summary(mc: list[dict[str, Any]]) -> dict[str, Any]:
    """How many Monte-Carlo instances were validated and their worst INL and DNL (LSB)."""
    return {
        "mc_instances": len(mc),
        "mc_inl_max_lsb": max((s["max_abs_inl_lsb"] for s in mc), default=None),
        "mc_dnl_max_lsb": max((s["max_abs_dnl_lsb"] for s in mc), default=None),
    }


def mc_code_agreement(mc: list[dict[str, Any]]) -> float | None:
    """Code agreement of the Monte-Carlo instances the surrogate rebuilt from their draws
    with their held-out SPICE codes, over all their conversions (``None`` without any)."""
    if not mc:
        return None
    return float(
        sum(s["sample_instance_code_agreement"] * s["n_heldout"] for s in mc)
        / sum(s["n_heldout"] for s in mc)
    )


def by_bits_summary(by_bits_stats: Mapping[int, dict[str, Any]]) -> dict[str, Any]:
    """The held-out statistics of the nominal at every other resolution, by resolution."""

    def by(key: str) -> dict[str, Any]:
        return {str(n): st[key] for n, st in by_bits_stats.items()}

    return {
        "code_agreement_by_bits": by("code_agreement"),
        "n_heldout_by_bits": by("n_heldout"),
        "code_agreement_min_by_bits": min(s["code_agreement"] for s in by_bits_stats.values()),
        "inl_max_lsb_by_bits": by("max_abs_inl_lsb"),
        "dnl_max_lsb_by_bits": by("max_abs_dnl_lsb"),
        "energy_rel_rms_error_by_bits": by("energy_rel_rms_error"),
    }


def stored_by_bits(
    by_bits: Mapping[int, Any],
    by_bits_stats: Mapping[int, dict[str, Any]],
    strip: Container[str],
    times: list[float | None],
    n_conv: int,
    t_start: float,
) -> dict[str, Any]:
    """The end of a characterization's ``extra``: the nominal model at every resolution
    (``by_bits``, what :func:`cosim.surrogates.adc.models_by_bits` reads back) and its
    held-out statistics less the ``strip`` keys; the ngspice wall time per conversion of
    the nominal's testbenches (``times``: per testbench batch, ``None`` where unknown;
    ``n_conv`` conversions in all) and the sweep's wall time since ``t_start``
    (:func:`time.perf_counter`)."""
    return {
        "by_bits": {str(n): m.to_dict() for n, m in by_bits.items()},
        "by_bits_stats": {
            str(n): {k: v for k, v in st.items() if k not in strip}
            for n, st in by_bits_stats.items()
        },
        "ngspice_s_per_conversion": (
            None if None in times else sum(t for t in times if t is not None) / n_conv
        ),
        "wall_s": time.perf_counter() - t_start,
    }
