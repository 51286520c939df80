"""The flash ADC's characterization sweep, which the registered ``"flash"`` architecture runs.

What runs (every netlist in one :meth:`SpiceRunner.run` call, longest first, in parallel on
``ctx.runner``'s workers):

* the **nominal** instance (no mismatch, the card's comparator offset on every comparator)
  and ``M`` **Monte-Carlo** instances (:func:`cosim.circuits.flash_adc_sample`; quick: 3,
  full: 20);
* per instance a **fit** testbench (inputs uniform over ``[-0.05, 1.05] V_ref``, every skip
  count in turn), the comparators' DC **trip** sweep, and a **held-out** testbench: half
  random inputs over ``[-0.05, 1.05] V_ref``, half within ``±0.25 LSB`` of the instance's
  comparator thresholds (from its resistor values and offsets, no SPICE), half of them with
  skip 0 and the rest with a random skip count, legal or not (an illegal skip saturates
  the code at ``2**(N-s) - 1``: the gating is part of what is validated);
* a **skip sweep** of the nominal (every skip count, inputs uniform over its legal range)
  for the energy table;
* the nominal design at **every other resolution** ``1 .. N-1`` (the engine converts at a
  layer's activation precision): fit, trip, skip sweep and held-out testbenches of its own;
* an **energy sweep** at the resolutions above the card's up to
  :data:`netlists.flash_adc.MAX_BITS` (no skip).

The surrogate (:class:`~cosim.surrogates.adc.flash.FlashAdcModel`, fitted by
:class:`~cosim.surrogates.adc.flash.FlashAdcFitter`) takes each comparator's threshold as
its ladder tap, read in the fit transient at the latching edges, plus its offset from the
trip sweep; its energy table is the mean SPICE energy per skip count (fit and skip-sweep
conversions). Nothing of the held-out testbenches enters the fit. ``validation`` compares
every instance's model with SPICE on its held-out conversions, the taps and trip offsets
with the values the parameters imply, and the Monte-Carlo instances that
:func:`~cosim.surrogates.adc.flash.with_ladder_mismatch` rebuilds from the fitted nominal
and each SPICE instance's draws with that instance's held-out SPICE codes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from cosim.characterize.adc.batches import (
    Batch,
    add_chunks,
    concat,
    decode_batch,
    elapsed,
    run_longest_first,
)
from cosim.characterize.adc.fitting import (
    agreement_summary,
    by_bits_summary,
    heldout_counts,
    mc_code_agreement,
    mc_summary,
    rel_rms_error,
    stored_by_bits,
)
from cosim.characterize.context import BlockResult, CharContext
from cosim.circuits import flash_adc_params, flash_adc_sample
from cosim.spice.runner import SpiceJob, SpiceResult
from cosim.surrogates.adc.flash import FlashAdcFitter, FlashAdcModel, with_ladder_mismatch
from netlists.common import netlist_hash
from netlists.flash_adc import (
    MAX_BITS,
    FlashAdcParams,
    comparator_trip_netlist,
    decode_testbench,
    decode_trip,
    flash_adc_subckt,
    flash_testbench_netlist,
    flash_testbench_vectors,
    ladder_units,
    trip_vectors,
)

#: Target of the held-out code agreement (as the SAR's).
CODE_AGREEMENT_TARGET = 0.995


@dataclass(frozen=True)
class _Budget:
    mc: int
    n_fit: int  # per instance at the card's resolution
    n_val: int
    n_skip: int  # nominal skip sweep, per skip count
    n_fit_bits: int  # per other resolution
    n_val_bits: int
    n_skip_bits: int
    n_energy_bits: int  # resolutions above the card's


_QUICK = _Budget(
    mc=3, n_fit=32, n_val=128, n_skip=8, n_fit_bits=16, n_val_bits=64, n_skip_bits=8,
    n_energy_bits=8,
)  # fmt: skip
_FULL = _Budget(
    mc=20, n_fit=64, n_val=256, n_skip=32, n_fit_bits=32, n_val_bits=128, n_skip_bits=16,
    n_energy_bits=16,
)  # fmt: skip


# ---------------------------------------------------------------------------------------
# input design (from the parameters, no SPICE)
# ---------------------------------------------------------------------------------------
def fit_inputs(
    params: FlashAdcParams, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Fit conversions: inputs uniform over ``[-0.05, 1.05] V_ref`` (V), skip counts
    cycling through ``0 .. N-1``."""
    v = rng.uniform(-0.05, 1.05, n) * params.v_ref_v
    return v, np.arange(n, dtype=np.int64) % params.bits


def heldout_inputs(
    params: FlashAdcParams, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out conversions (V, skip counts): half random over ``[-0.05, 1.05] V_ref``, half
    within ``±0.25 LSB`` of the instance's thresholds; half with skip 0, the rest a random
    skip count ``0 .. N-1``."""
    n_rand = n // 2
    v_rand = rng.uniform(-0.05, 1.05, n_rand) * params.v_ref_v
    t = params.thresholds_v()
    pick = rng.integers(0, t.size, n - n_rand)
    v_near = t[pick] + rng.uniform(-0.25, 0.25, pick.size) * params.lsb_v
    v = np.concatenate([v_rand, v_near])[rng.permutation(n)]
    k = rng.integers(0, params.bits, n)
    k[rng.random(n) < 0.5] = 0
    return v, k.astype(np.int64)


def skip_sweep_inputs(
    params: FlashAdcParams, per_skip: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``per_skip`` conversions per skip count ``s``, inputs uniform over its legal range
    ``[0, (2**(N-s) - 1/2) LSB)`` (V)."""
    k = np.repeat(np.arange(params.bits, dtype=np.int64), per_skip)
    hi = (2.0 ** (params.bits - k) - 0.5) * params.lsb_v
    return rng.uniform(0.0, 1.0, k.size) * hi, k


def draws(params: FlashAdcParams, nominal: FlashAdcParams) -> tuple[np.ndarray, np.ndarray]:
    """The relative resistor errors and offset changes of an instance against its
    nominal (what :func:`~cosim.surrogates.adc.flash.with_ladder_mismatch` applies)."""
    unit = params.r_ladder_total_ohm / 2**params.bits
    err = np.asarray(params.r_ladder_ohm) / (ladder_units(params.bits) * unit) - 1.0
    d_os = np.asarray(params.comparator_offsets_v) - np.asarray(nominal.comparator_offsets_v)
    return err, d_os


# ---------------------------------------------------------------------------------------
# SPICE jobs
# ---------------------------------------------------------------------------------------
class _Jobs:
    """The sweep's SPICE jobs with a cost estimate each (run longest first)."""

    def __init__(self) -> None:
        self.jobs: list[SpiceJob] = []
        self.cost: list[float] = []

    def add_batch(self, b: Batch) -> Batch:
        p: FlashAdcParams = b.params
        vectors = flash_testbench_vectors(p.bits)
        return add_chunks(
            self.jobs,
            self.cost,
            b,
            lambda v, k, j: SpiceJob(
                flash_testbench_netlist(p, v, k),
                vectors,
                timeout_s=60.0 + 0.1 * v.size * p.n_comparators,
                label=f"flash {b.label} {j + 1}",
            ),
            lambda v, k: float(v.size * (p.n_comparators + 4)),
        )

    def add_trip(self, p: FlashAdcParams, label: str) -> int:
        self.jobs.append(
            SpiceJob(comparator_trip_netlist(p), trip_vectors(p), label=f"flash {label} trip")
        )
        self.cost.append(float(p.n_comparators))
        return len(self.jobs) - 1

    def run(self, ctx: CharContext) -> list[SpiceResult]:
        return run_longest_first(ctx, self.jobs, self.cost, desc="flash ADC")


def _decode(results: list[SpiceResult], b: Batch) -> dict[str, np.ndarray]:
    return decode_batch(results, b, decode_testbench)


# ---------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------
def heldout_stats(
    m: FlashAdcModel, p: FlashAdcParams, b: Batch, held: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Agreement of ``m`` with SPICE on held-out conversions, energy error, INL/DNL."""
    diff = np.abs(m.convert(b.v, b.k) - held["codes"])
    e_true = held["e_ref_j"] + held["e_dd_j"]
    e_pred = m.energy_per_conversion_j(b.k)
    cap = 2 ** (p.bits - b.k) - 1
    ideal = np.minimum(np.clip(np.floor(b.v / p.lsb_v + 0.5), 0, 2**p.bits - 1), cap)
    stats = m.inl_dnl()
    return {
        **heldout_counts(diff),
        "n_illegal_skip": int(np.sum(np.floor(b.v / p.lsb_v + 0.5) > cap)),
        "spice_equals_ideal_quantizer": float(np.mean(held["codes"] == ideal)),
        "max_abs_inl_lsb": stats["max_abs_inl_lsb"],
        "max_abs_dnl_lsb": stats["max_abs_dnl_lsb"],
        "offset_lsb": stats["offset_lsb"],
        "gain_error_lsb": stats["gain_error_lsb"],
        "missing_codes": stats["missing_codes"],
        "energy_rel_rms_error": rel_rms_error(e_pred, e_true),
    }


def _fit(
    p: FlashAdcParams, fit: dict[str, np.ndarray], b: Batch, trip: np.ndarray
) -> FlashAdcFitter:
    return FlashAdcFitter(p.bits, p.v_ref_v, p.conversion_time_s).fit(b.v, b.k, fit, trip)


def _fit_with_skip(
    p: FlashAdcParams,
    fit: dict[str, np.ndarray],
    fb: Batch,
    skip: dict[str, np.ndarray],
    sb: Batch,
    trip: np.ndarray,
) -> FlashAdcFitter:
    """A nominal: taps and codes from its fit and skip-sweep runs, energy table over both."""
    data = concat(fit, skip)
    v = np.concatenate([fb.v, sb.v])
    k = np.concatenate([fb.k, sb.k])
    return FlashAdcFitter(p.bits, p.v_ref_v, p.conversion_time_s).fit(v, k, data, trip)


def _checks(f: FlashAdcFitter, p: FlashAdcParams, trip: np.ndarray) -> dict[str, float]:
    """SPICE taps and trip offsets against what the parameters imply (V)."""
    return {
        "fit_decision_agreement": f.decision_agreement_,
        "tap_error_max_v": float(np.max(np.abs(f.tap_v_ - p.tap_voltages_v()))),
        "tap_spread_v": f.tap_spread_v_,
        "trip_error_max_v": float(np.max(np.abs(trip - np.asarray(p.comparator_offsets_v)))),
    }


# ---------------------------------------------------------------------------------------
# the sweep
# ---------------------------------------------------------------------------------------
def characterize_flash_adc(ctx: CharContext) -> BlockResult:
    """Fit and validate the flash ADC surrogate of ``ctx.card`` against ngspice.

    Parameters
    ----------
    ctx
        Characterization context (card with ``adc.architecture = "flash"``, runner, quick
        flag, seed).

    Returns
    -------
    BlockResult
        ``surrogate``: the nominal :class:`FlashAdcModel` at the card's resolution;
        ``validation``: ``n_heldout``, ``code_agreement`` (held-out conversions where model
        code == SPICE code, over the nominal and every Monte-Carlo instance at the card's
        resolution) and its target, ``within_1_lsb``, ``code_agreement_min_instance``,
        ``inl_max_lsb``/``dnl_max_lsb`` (nominal), ``mc_instances``, ``energy_rel_rms_error``
        (nominal, per held-out conversion); per resolution, of the nominal instance alone (so
        ``n_heldout_by_bits`` at the card's bits is below ``n_heldout``):
        ``code_agreement_by_bits``, ``n_heldout_by_bits``, ``inl_max_lsb_by_bits``,
        ``dnl_max_lsb_by_bits``, ``energy_rel_rms_error_by_bits``, ``code_agreement_min_by_bits``;
        ``tap_error_max_v``, ``trip_error_max_v`` (SPICE against the parameters),
        ``sample_instance_code_agreement``, ``sample_instance_threshold_max_error_v``;
        ``extra``: ``by_bits`` (the nominal at every resolution ``1 .. N``), its stats,
        the Monte-Carlo models, energy versus skip count and versus bits (J), conversion
        time, ngspice time per conversion.

    A card above :data:`netlists.flash_adc.MAX_BITS` bits never gets here: the card
    refuses it (``adc.bits`` against the architecture's limit, a ``CardError``).
    """
    t_start = time.perf_counter()
    card = ctx.card
    budget = _QUICK if ctx.quick else _FULL
    rng = ctx.rng("adc")
    nominal = flash_adc_params(card)
    nb = nominal.bits
    instances = [nominal] + [flash_adc_sample(card, rng) for _ in range(budget.mc)]

    jobs = _Jobs()
    fit_b, val_b, trip_i = [], [], []
    for i, p in enumerate(instances):
        tag = "nominal" if i == 0 else f"mc{i}"
        fit_b.append(jobs.add_batch(Batch(p, *fit_inputs(p, budget.n_fit, rng), f"{tag} fit")))
        val_b.append(
            jobs.add_batch(Batch(p, *heldout_inputs(p, budget.n_val, rng), f"{tag} held-out"))
        )
        trip_i.append(jobs.add_trip(p, tag))
    skip_b = jobs.add_batch(Batch(nominal, *skip_sweep_inputs(nominal, budget.n_skip, rng), "skip"))
    res_b: dict[int, tuple[Batch, Batch, Batch, int]] = {}
    for n in range(1, nb):
        p = flash_adc_params(card, n)
        res_b[n] = (
            jobs.add_batch(Batch(p, *fit_inputs(p, budget.n_fit_bits, rng), f"{n}-bit fit")),
            jobs.add_batch(
                Batch(p, *skip_sweep_inputs(p, budget.n_skip_bits, rng), f"{n}-bit skip")
            ),
            jobs.add_batch(
                Batch(p, *heldout_inputs(p, budget.n_val_bits, rng), f"{n}-bit held-out")
            ),
            jobs.add_trip(p, f"{n}-bit"),
        )
    bits_b: dict[int, Batch] = {}
    for n in range(nb + 1, MAX_BITS + 1):
        p = flash_adc_params(card, n)
        v = rng.uniform(-0.05, 1.05, budget.n_energy_bits) * p.v_ref_v
        bits_b[n] = jobs.add_batch(Batch(p, v, np.zeros(v.size, np.int64), f"{n}-bit energy"))

    results = jobs.run(ctx)

    # -- every instance at the card's resolution
    models: list[FlashAdcModel] = []
    per_inst: list[dict[str, Any]] = []
    skip_data = _decode(results, skip_b)
    for i, p in enumerate(instances):
        trip = decode_trip(results[trip_i[i]], p)
        fit_data = _decode(results, fit_b[i])
        if i == 0:
            f = _fit_with_skip(p, fit_data, fit_b[i], skip_data, skip_b, trip)
        else:
            f = _fit(p, fit_data, fit_b[i], trip)
        m = f.model()
        models.append(m)
        held = _decode(results, val_b[i])
        st = heldout_stats(m, p, val_b[i], held)
        st.update(_checks(f, p, trip))
        if i > 0:  # the same instance rebuilt from the fitted nominal and its draws
            rebuilt = with_ladder_mismatch(models[0], *draws(p, nominal))
            st["sample_instance_code_agreement"] = float(
                np.mean(rebuilt.convert(val_b[i].v, val_b[i].k) == held["codes"])
            )
            st["sample_instance_threshold_error_v"] = float(
                np.max(np.abs(rebuilt.comparator_thresholds_v - m.comparator_thresholds_v))
            )
        per_inst.append(st)

    # -- the nominal at every other resolution
    by_bits: dict[int, FlashAdcModel] = {nb: models[0]}
    by_bits_stats: dict[int, dict[str, Any]] = {nb: per_inst[0]}
    for n, (fb, sb, vb, ti) in res_b.items():
        p = fb.params
        trip = decode_trip(results[ti], p)
        f = _fit_with_skip(p, _decode(results, fb), fb, _decode(results, sb), sb, trip)
        m = f.model()
        st = heldout_stats(m, p, vb, _decode(results, vb))
        st.update(_checks(f, p, trip))
        by_bits[n], by_bits_stats[n] = m, st
    by_bits = dict(sorted(by_bits.items()))
    by_bits_stats = dict(sorted(by_bits_stats.items()))

    # -- energy tables (J)
    m0 = models[0]
    e_skip = {
        "skip": list(range(nb)),
        "e_ref_j": m0.energy_ref_j.tolist(),
        "e_dd_j": m0.energy_dd_j.tolist(),
        "e_total_j": (m0.energy_ref_j + m0.energy_dd_j).tolist(),
    }
    e_bits: dict[str, list[Any]] = {
        "bits": [],
        "e_ref_j": [],
        "e_dd_j": [],
        "e_total_j": [],
        "conversion_time_s": [],
    }
    for n in range(1, MAX_BITS + 1):
        if n in by_bits:
            e_ref, e_dd = float(by_bits[n].energy_ref_j[0]), float(by_bits[n].energy_dd_j[0])
        else:
            d = _decode(results, bits_b[n])
            e_ref, e_dd = float(d["e_ref_j"].mean()), float(d["e_dd_j"].mean())
        e_bits["bits"].append(n)
        e_bits["e_ref_j"].append(e_ref)
        e_bits["e_dd_j"].append(e_dd)
        e_bits["e_total_j"].append(e_ref + e_dd)
        e_bits["conversion_time_s"].append(nominal.conversion_time_s)

    mc = per_inst[1:]
    everything = [*per_inst, *by_bits_stats.values()]

    validation: dict[str, Any] = {
        **agreement_summary(per_inst, CODE_AGREEMENT_TARGET),
        "n_illegal_skip_heldout": sum(s["n_illegal_skip"] for s in per_inst),
        "inl_max_lsb": per_inst[0]["max_abs_inl_lsb"],
        "dnl_max_lsb": per_inst[0]["max_abs_dnl_lsb"],
        **mc_summary(mc),
        "energy_rel_rms_error": per_inst[0]["energy_rel_rms_error"],
        **by_bits_summary(by_bits_stats),
        "fit_decision_agreement_min": min(s["fit_decision_agreement"] for s in everything),
        "tap_error_max_v": max(s["tap_error_max_v"] for s in everything),
        "trip_error_max_v": max(s["trip_error_max_v"] for s in everything),
        "sample_instance_code_agreement": mc_code_agreement(mc),
        "sample_instance_threshold_max_error_v": max(
            (s["sample_instance_threshold_error_v"] for s in mc), default=None
        ),
    }
    nominal_b = [fit_b[0], val_b[0], skip_b]
    times = [elapsed(results, b) for b in nominal_b]
    n_conv = sum(b.v.size for b in nominal_b)
    strip = ("n_agree", "n_within_1")
    extra: dict[str, Any] = {
        "conversion_time_s": nominal.conversion_time_s,
        "clock_hz": nominal.clock_hz,
        "ladder_power_w": nominal.ladder_power_w(),
        "energy_vs_skip": e_skip,
        "energy_vs_bits": e_bits,
        "nominal": {k: v for k, v in per_inst[0].items() if k not in strip},
        "mc": [
            {
                **{k: np.asarray(v).tolist() for k, v in models[i + 1].to_dict().items()},
                **{k: v for k, v in s.items() if k not in strip},
            }
            for i, s in enumerate(mc)
        ],
        **stored_by_bits(by_bits, by_bits_stats, strip, times, n_conv, t_start),
    }
    hashes = {
        "flash_adc_subckt": netlist_hash(flash_adc_subckt(nominal)),
        "flash_adc_testbench": netlist_hash(jobs.jobs[fit_b[0].first_job].netlist),
        "flash_comparator_trip": netlist_hash(jobs.jobs[trip_i[0]].netlist),
    }
    for n, (fb, _, _, _) in res_b.items():
        hashes[f"flash_adc_subckt_{n}bit"] = netlist_hash(flash_adc_subckt(fb.params))
    return BlockResult(
        surrogate=models[0],
        validation=validation,
        netlist_hashes=hashes,
        extra=extra,
        n_spice_runs=len(jobs.jobs),
    )
