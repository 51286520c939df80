"""Characterize the SAR ADC: fit instances in SPICE, validate on held-out conversions, energy.

:func:`characterize_adc` characterizes the card's ADC through its architecture
(:mod:`cosim.converters`); :func:`characterize_sar_adc` is the SAR's sweep, which the
registered ``"sar"`` architecture runs.

What runs (all netlists are submitted in one :meth:`SpiceRunner.run` call, longest first, so
they run in parallel on ``ctx.runner``'s workers):

* the **nominal** instance (no mismatch, the card's comparator offset) and ``M``
  **Monte-Carlo** instances (:func:`cosim.circuits.sar_adc_sample`; quick: 3, full: 20);
* per instance a **fit** testbench (half full conversions over ``[-0.05, 1.05] V_ref``, half
  conversions with every skip count ``1 .. N-1`` at legal inputs), the comparator's DC trip
  sweep, and a **held-out** testbench: random inputs over ``[-0.05, 1.05] V_ref`` and inputs
  placed within ``±0.25 LSB`` of the instance's code transitions, each with a random legal
  skip count (the true code ``< 2**(N - k)``; half of them ``k = 0``);
* a **skip sweep** of the nominal instance (``k = 0 .. N-1``, inputs uniform over the legal
  range ``[0, (2**(N-k) - 1/2) LSB)``) for its energy table;
* the nominal design at **every other resolution** ``a = 1 .. N-1`` (the engine converts at
  a layer's activation precision): a fit testbench, a skip sweep and a held-out testbench
  of its own (quick: 24, 8 per skip count and 32 conversions; full: 64, 32 and 128). The
  comparator is the same circuit at every resolution, so the nominal's trip sweep serves;
* an **energy sweep** at the resolutions of ``ENERGY_BITS`` above the card's (inputs
  uniform over the legal range with no skip).

The surrogate is the nominal :class:`~cosim.surrogates.adc.SarAdcModel`; its weights are
fitted on the nominal fit and skip-sweep conversions, its energy table (mean per skip
count, over inputs uniform on the legal range) and the linear dependence of the reference
energy on the output bits on the skip sweep. Every other resolution is fitted the same way
from its own runs and stored in ``extra["by_bits"]`` (``{"1": model.to_dict(), ...}``, the
card's resolution included; decode it with :func:`cosim.surrogates.adc.models_by_bits`).
``validation`` compares every instance's model with SPICE on its held-out conversions (per
resolution in ``code_agreement_by_bits``), the fitted weights with the capacitor values
(``analytic_weights_max_rel_error``), and the Monte-Carlo instances that
:func:`cosim.surrogates.adc.with_mismatch` builds from the fitted nominal and each SPICE
instance's draws with that instance's held-out SPICE codes (``sample_instance_*``);
``extra`` holds the Monte-Carlo instances, INL/DNL statistics and the energy tables.

Examples
--------
>>> result = characterize_adc(ctx)                  # doctest: +SKIP
>>> result.validation["code_agreement"]             # doctest: +SKIP
1.0
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from cosim.characterize.context import BlockResult, CharContext
from cosim.circuits import sar_adc_params, sar_adc_sample
from cosim.converters import adc_architecture
from cosim.spice.runner import SpiceJob, SpiceResult
from cosim.surrogates.adc import SarAdcFitter, SarAdcModel, mismatch_units, with_mismatch
from netlists.common import netlist_hash
from netlists.sar_adc import (
    SarAdcParams,
    comparator_trip_netlist,
    decode_testbench,
    decode_trip,
    sar_adc_subckt,
    sar_testbench_netlist,
    sar_testbench_vectors,
)

#: Resolutions of the energy-versus-bits sweep (the card's bits are added).
ENERGY_BITS = (1, 2, 3, 4, 6, 8)
#: Most conversions in one testbench job (keeps the parallel jobs balanced).
CHUNK = 64
#: Target of the held-out code agreement (issue #2 acceptance).
CODE_AGREEMENT_TARGET = 0.995


@dataclass(frozen=True)
class _Budget:
    mc: int
    n_fit: int
    n_val: int
    n_energy_skip: int
    n_energy_bits: int
    n_fit_bits: int  # per other resolution: fit conversions
    n_val_bits: int  # held-out conversions
    n_energy_skip_bits: int  # skip-sweep conversions per skip count


_QUICK = _Budget(
    mc=3, n_fit=40, n_val=100, n_energy_skip=12, n_energy_bits=16,
    n_fit_bits=24, n_val_bits=32, n_energy_skip_bits=8,
)  # fmt: skip
_FULL = _Budget(
    mc=20, n_fit=96, n_val=256, n_energy_skip=48, n_energy_bits=48,
    n_fit_bits=64, n_val_bits=128, n_energy_skip_bits=32,
)  # fmt: skip


# ---------------------------------------------------------------------------------------
# input design
# ---------------------------------------------------------------------------------------
def analytic_model(params: SarAdcParams) -> SarAdcModel:
    """The model implied by an instance's capacitor values and offset (no SPICE).

    Used to place held-out inputs near the instance's transitions and to pick legal skip
    counts; the surrogate itself is fitted from SPICE.
    """
    w = params.analytic_weights()
    zeros = np.zeros(params.bits)
    return SarAdcModel(
        bits=params.bits,
        v_ref_v=params.v_ref_v,
        bit_weights_v=w["bit_weights_v"],
        shift_v=float(w["shift_v"]),
        input_gain=float(w["input_gain"]),
        comparator_offset_v=params.comparator_offset_v,
        energy_ref_j=zeros,
        energy_dd_j=zeros,
        conversion_time_s=params.conversion_time_s,
    )


def legal_skip(codes: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    """A random legal skip count per code: ``k`` in ``0 .. min(N-1, N - bitlength(code))``,
    so that ``code < 2**(N - k)``."""
    c = np.asarray(codes, dtype=np.int64)
    bitlen = np.where(c > 0, np.floor(np.log2(np.maximum(c, 1))).astype(np.int64) + 1, 0)
    kmax = np.minimum(bits - 1, bits - bitlen)
    return np.floor(rng.random(c.shape) * (kmax + 1)).astype(np.int64)


def fit_inputs(
    params: SarAdcParams, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Fitting conversions: half full conversions over ``[-0.05, 1.05] V_ref``, half with
    skip counts cycling through ``1 .. N-1`` at inputs uniform over their legal range."""
    nb = params.bits
    n0 = n // 2 if nb > 1 else n
    v0 = rng.uniform(-0.05, 1.05, n0) * params.v_ref_v
    k1 = 1 + np.arange(n - n0) % max(nb - 1, 1)
    hi = (2.0 ** (nb - k1) - 0.5) * params.lsb_v
    v1 = rng.uniform(0.0, 1.0, k1.size) * hi
    return np.concatenate([v0, v1]), np.concatenate([np.zeros(n0, np.int64), k1])


def heldout_inputs(
    params: SarAdcParams, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out conversions: half random over ``[-0.05, 1.05] V_ref``, half within
    ``±0.25 LSB`` of the instance's transitions; legal random skips on half of them."""
    truth = analytic_model(params)
    n_rand = n // 2
    v_rand = rng.uniform(-0.05, 1.05, n_rand) * params.v_ref_v
    t = truth.thresholds()
    pick = rng.integers(0, t.size, n - n_rand)
    v_near = t[pick] + rng.uniform(-0.25, 0.25, pick.size) * params.lsb_v
    v = np.concatenate([v_rand, v_near])
    order = rng.permutation(v.size)
    v = v[order]
    k = legal_skip(truth.convert(v), params.bits, rng)
    k[rng.random(v.size) < 0.5] = 0
    return v, k


def skip_sweep_range(params: SarAdcParams) -> np.ndarray:
    """``(bits, 2)``: the legal input range ``[0, (2**(N-k) - 1/2) LSB)`` of skip count ``k``,
    over which the skip sweep draws its inputs uniformly."""
    k = np.arange(params.bits)
    return np.column_stack([np.zeros(k.size), (2.0 ** (params.bits - k) - 0.5) * params.lsb_v])


def _skip_sweep_inputs(
    params: SarAdcParams, per_skip: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    k = np.repeat(np.arange(params.bits), per_skip)
    hi = skip_sweep_range(params)[k, 1]
    return rng.uniform(0.0, 1.0, k.size) * hi, k


# ---------------------------------------------------------------------------------------
# jobs
# ---------------------------------------------------------------------------------------
@dataclass
class _Batch:
    """Conversions of one instance for one purpose, split into testbench jobs."""

    params: SarAdcParams
    v: np.ndarray
    k: np.ndarray
    label: str
    first_job: int = 0
    n_jobs: int = 0


def _timeout_s(n_conv: int, bits: int) -> float:
    return 60.0 + 0.5 * n_conv * (bits + 2) / 10


def _add_batch(jobs: list[SpiceJob], batch: _Batch, cost: list[float]) -> None:
    batch.first_job = len(jobs)
    for j, s in enumerate(range(0, batch.v.size, CHUNK)):
        v, k = batch.v[s : s + CHUNK], batch.k[s : s + CHUNK]
        jobs.append(
            SpiceJob(
                sar_testbench_netlist(batch.params, v, k),
                sar_testbench_vectors(),
                timeout_s=_timeout_s(v.size, batch.params.bits),
                label=f"SAR {batch.label} {j + 1}",
            )
        )
        cost.append(float(np.sum(batch.params.bits + 2 - k)))  # cycles: ngspice time
    batch.n_jobs = len(jobs) - batch.first_job


def _run_longest_first(ctx: CharContext, jobs: list[SpiceJob], cost: list[float]) -> list:
    """Run ``jobs`` longest first (the runner hands them out in order), results in order."""
    order = sorted(range(len(jobs)), key=lambda i: -cost[i])
    res = ctx.runner.run([jobs[i] for i in order], desc="SAR ADC")
    out: list = [None] * len(jobs)
    for j, i in enumerate(order):
        out[i] = res[j]
    return out


def _decode_batch(results: list[SpiceResult], batch: _Batch) -> dict[str, np.ndarray]:
    parts = []
    for j in range(batch.n_jobs):
        s = j * CHUNK
        n = min(CHUNK, batch.v.size - s)
        parts.append(decode_testbench(results[batch.first_job + j], batch.params, n))
    out = {key: np.concatenate([p[key] for p in parts]) for key in parts[0] if key != "t_conv_s"}
    return out


def _elapsed(results: list[SpiceResult], batch: _Batch) -> float | None:
    times = [results[batch.first_job + j].info.get("elapsed_s") for j in range(batch.n_jobs)]
    if any(t is None for t in times):
        return None
    return float(sum(times))  # type: ignore[arg-type]


def _concat(*dicts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([d[k] for d in dicts]) for k in dicts[0]}


def _draws(params: SarAdcParams, nominal: SarAdcParams) -> tuple[np.ndarray, float]:
    """The relative capacitor errors (order of :func:`mismatch_units`) and the offset
    change of a Monte-Carlo instance against its nominal."""
    caps = np.array([*params.c_bits_f, params.c_dummy_f, params.c_half_f])
    err = caps / (mismatch_units(params.bits) * params.c_unit_f) - 1.0
    return err, params.comparator_offset_v - nominal.comparator_offset_v


def _weights_rel_error(m: SarAdcModel, ref: SarAdcModel) -> float:
    """Largest relative difference of the weights, shift and gain of two models."""
    a = np.concatenate([m.bit_weights_v, [m.shift_v, m.input_gain]])
    b = np.concatenate([ref.bit_weights_v, [ref.shift_v, ref.input_gain]])
    return float(np.max(np.abs(a / b - 1.0)))


def _fit_nominal(
    p: SarAdcParams,
    fit_data: dict[str, np.ndarray],
    fit_b: _Batch,
    skip_data: dict[str, np.ndarray],
    skip_b: _Batch,
    trip_v: float,
) -> SarAdcFitter:
    """Fit a nominal instance on its fit and skip-sweep conversions; the energy table from
    the skip sweep's uniform legal inputs only (mean over that distribution, with the bit
    dependence as control variate)."""
    data = _concat(fit_data, {k: skip_data[k] for k in fit_data})
    v = np.concatenate([fit_b.v, skip_b.v])
    k = np.concatenate([fit_b.k, skip_b.k])
    e_mask = np.arange(v.size) >= fit_b.v.size
    return SarAdcFitter(p.bits, p.v_ref_v, p.conversion_time_s).fit(
        v, k, data, trip_v, energy_mask=e_mask, energy_range_v=skip_sweep_range(p)
    )


def _heldout_stats(
    m: SarAdcModel, p: SarAdcParams, batch: _Batch, held: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Agreement of ``m`` with SPICE on held-out conversions, energy error, INL/DNL."""
    diff = np.abs(m.convert(batch.v, batch.k) - held["codes"])
    e_true = held["e_ref_j"] + held["e_dd_j"]
    e_pred = m.energy_per_conversion_j(batch.k, held["codes"])
    e_mean = m.energy_per_conversion_j(batch.k)
    ideal = np.clip(np.floor(batch.v / p.lsb_v + 0.5), 0, 2**p.bits - 1)
    stats = m.inl_dnl()
    return {
        "n_heldout": int(diff.size),
        "n_agree": int(np.sum(diff == 0)),
        "n_within_1": int(np.sum(diff <= 1)),
        "code_agreement": float(np.mean(diff == 0)),
        "spice_equals_ideal_quantizer": float(np.mean(held["codes"] == ideal)),
        "max_abs_inl_lsb": stats["max_abs_inl_lsb"],
        "max_abs_dnl_lsb": stats["max_abs_dnl_lsb"],
        "max_abs_inl_endpoint_lsb": float(np.max(np.abs(stats["inl_endpoint_lsb"]))),
        "offset_lsb": stats["offset_lsb"],
        "gain_error_lsb": stats["gain_error_lsb"],
        "missing_codes": stats["missing_codes"],
        "energy_rel_rms_error": float(np.sqrt(np.mean((e_pred - e_true) ** 2)) / np.mean(e_true)),
        "energy_rel_rms_error_mean_table": float(
            np.sqrt(np.mean((e_mean - e_true) ** 2)) / np.mean(e_true)
        ),
    }


# ---------------------------------------------------------------------------------------
# the block
# ---------------------------------------------------------------------------------------
def characterize_adc(ctx: CharContext) -> BlockResult:
    """Characterize the ADC of ``ctx.card`` with its architecture's sweep
    (``card.adc.architecture``, :func:`cosim.converters.adc_architecture`): for ``"sar"``,
    :func:`characterize_sar_adc`.

    Raises
    ------
    CosimError
        The card names an architecture that is not registered.
    """
    return adc_architecture(ctx.card.adc.architecture).characterize(ctx)


def characterize_sar_adc(ctx: CharContext) -> BlockResult:
    """Fit and validate the SAR ADC surrogate of ``ctx.card`` against ngspice.

    Parameters
    ----------
    ctx
        Characterization context (card, runner, quick flag, seed).

    Returns
    -------
    BlockResult
        ``surrogate``: the nominal :class:`SarAdcModel` at the card's resolution;
        ``validation``: ``n_heldout``, ``code_agreement`` (fraction of held-out
        conversions where model code == SPICE code, over the nominal and every Monte-Carlo
        instance at the card's resolution), ``within_1_lsb``, ``inl_max_lsb``/
        ``dnl_max_lsb`` (nominal instance), ``mc_instances``; per resolution
        ``code_agreement_by_bits``, ``n_heldout_by_bits``, ``inl_max_lsb_by_bits``,
        ``dnl_max_lsb_by_bits``, ``energy_rel_rms_error_by_bits`` (``{"1": ..., }``) and
        ``code_agreement_min_by_bits``; ``analytic_weights_max_rel_error``,
        ``sample_instance_code_agreement``, ``sample_instance_weights_max_rel_error``;
        ``extra``: ``by_bits`` (the nominal model at every resolution ``1 .. N``, as
        :meth:`SarAdcModel.to_dict`, arrays included), ``by_bits_stats``, Monte-Carlo
        instance parameters and INL/DNL, energy versus skipped MSB cycles and versus bits,
        conversion time, ngspice time per conversion.
    """
    t_start = time.perf_counter()
    card = ctx.card
    budget = _QUICK if ctx.quick else _FULL
    rng = ctx.rng("adc")
    nominal = sar_adc_params(card)
    instances = [nominal] + [sar_adc_sample(card, rng) for _ in range(budget.mc)]
    nb = nominal.bits

    jobs: list[SpiceJob] = []
    cost: list[float] = []
    fit_b, val_b, trip_idx = [], [], []
    for i, p in enumerate(instances):
        tag = "nominal" if i == 0 else f"mc{i}"
        fb = _Batch(p, *fit_inputs(p, budget.n_fit, rng), f"{tag} fit")
        vb = _Batch(p, *heldout_inputs(p, budget.n_val, rng), f"{tag} held-out")
        _add_batch(jobs, fb, cost)
        _add_batch(jobs, vb, cost)
        trip_idx.append(len(jobs))
        jobs.append(
            SpiceJob(comparator_trip_netlist(p), ("v-sweep", "cmp"), label=f"SAR {tag} trip")
        )
        cost.append(1.0)
        fit_b.append(fb)
        val_b.append(vb)
    skip_b = _Batch(nominal, *_skip_sweep_inputs(nominal, budget.n_energy_skip, rng), "skip")
    _add_batch(jobs, skip_b, cost)
    # the nominal design at every other resolution
    res_b: dict[int, tuple[_Batch, _Batch, _Batch]] = {}
    for n in range(1, nb):
        p = sar_adc_params(card, n)
        batches = (
            _Batch(p, *fit_inputs(p, budget.n_fit_bits, rng), f"{n}-bit fit"),
            _Batch(p, *_skip_sweep_inputs(p, budget.n_energy_skip_bits, rng), f"{n}-bit skip"),
            _Batch(p, *heldout_inputs(p, budget.n_val_bits, rng), f"{n}-bit held-out"),
        )
        for b in batches:
            _add_batch(jobs, b, cost)
        res_b[n] = batches
    # energy only: resolutions above the card's
    bits_b = {}
    for n in sorted(set(ENERGY_BITS)):
        if n <= nb:
            continue
        p = nominal.with_bits(n)
        v = rng.uniform(0.0, 1.0, budget.n_energy_bits) * (2.0**n - 0.5) * p.lsb_v
        b = _Batch(p, v, np.zeros(v.size, np.int64), f"{n}-bit energy")
        _add_batch(jobs, b, cost)
        bits_b[n] = b

    results = _run_longest_first(ctx, jobs, cost)

    # -- fit and validate every instance at the card's resolution
    models: list[SarAdcModel] = []
    fitters: list[SarAdcFitter] = []
    per_inst: list[dict[str, Any]] = []
    skip_data = _decode_batch(results, skip_b)
    trip_nominal = decode_trip(results[trip_idx[0]], nominal)
    for i, p in enumerate(instances):
        fit_data = _decode_batch(results, fit_b[i])
        trip = decode_trip(results[trip_idx[i]], p)
        if i == 0:  # the nominal energy table also uses the skip sweep
            f = _fit_nominal(p, fit_data, fit_b[i], skip_data, skip_b, trip)
            m = f.model()
        else:  # Monte-Carlo instances share the nominal energy table
            f = SarAdcFitter(nb, p.v_ref_v, p.conversion_time_s).fit(
                fit_b[i].v, fit_b[i].k, fit_data, trip
            )
            m = f.model(models[0].energy_ref_j, models[0].energy_dd_j)
        fitters.append(f)
        models.append(m)
        held = _decode_batch(results, val_b[i])
        st = _heldout_stats(m, p, val_b[i], held)
        st["fit_residual_rms_v"] = f.residual_rms_v_
        st["decision_agreement"] = f.decision_agreement_
        st["analytic_weights_rel_error"] = _weights_rel_error(m, analytic_model(p))
        if i > 0:  # the same instance rebuilt from the fitted nominal and its draws
            rebuilt = with_mismatch(models[0], *_draws(p, nominal))
            st["sample_instance_code_agreement"] = float(
                np.mean(rebuilt.convert(val_b[i].v, val_b[i].k) == held["codes"])
            )
            st["sample_instance_weights_rel_error"] = _weights_rel_error(rebuilt, m)
        per_inst.append(st)

    # -- the nominal at every resolution
    by_bits: dict[int, SarAdcModel] = {nb: models[0]}
    by_bits_stats: dict[int, dict[str, Any]] = {nb: per_inst[0]}
    res_fit_residual = {nb: fitters[0].residual_max_v_}
    for n, (fb, sb, vb) in res_b.items():
        p = fb.params
        f = _fit_nominal(
            p, _decode_batch(results, fb), fb, _decode_batch(results, sb), sb, trip_nominal
        )
        m = f.model()
        st = _heldout_stats(m, p, vb, _decode_batch(results, vb))
        st["fit_residual_rms_v"] = f.residual_rms_v_
        st["decision_agreement"] = f.decision_agreement_
        st["analytic_weights_rel_error"] = _weights_rel_error(m, analytic_model(p))
        by_bits[n], by_bits_stats[n] = m, st
        res_fit_residual[n] = f.residual_max_v_
    by_bits = dict(sorted(by_bits.items()))
    by_bits_stats = dict(sorted(by_bits_stats.items()))

    # -- energy tables
    e_skip = {
        "skip": list(range(nb)),
        "e_ref_j": models[0].energy_ref_j.tolist(),
        "e_dd_j": models[0].energy_dd_j.tolist(),
        "e_total_j": (models[0].energy_ref_j + models[0].energy_dd_j).tolist(),
    }
    e_bits: dict[str, list] = {
        "bits": [],
        "e_ref_j": [],
        "e_dd_j": [],
        "e_total_j": [],
        "conversion_time_s": [],
    }
    for n in sorted(set(ENERGY_BITS) | set(by_bits)):
        if n in by_bits:  # no skip, inputs uniform over the legal range: table entry 0
            e_ref, e_dd = float(by_bits[n].energy_ref_j[0]), float(by_bits[n].energy_dd_j[0])
            t_conv = by_bits[n].conversion_time_s
        else:
            d = _decode_batch(results, bits_b[n])
            e_ref, e_dd = float(d["e_ref_j"].mean()), float(d["e_dd_j"].mean())
            t_conv = bits_b[n].params.conversion_time_s
        e_bits["bits"].append(n)
        e_bits["e_ref_j"].append(e_ref)
        e_bits["e_dd_j"].append(e_dd)
        e_bits["e_total_j"].append(e_ref + e_dd)
        e_bits["conversion_time_s"].append(t_conv)

    mc = per_inst[1:]
    n_held = sum(s["n_heldout"] for s in per_inst)
    inl_nom = models[0].inl_dnl()

    def by(key: str) -> dict[str, Any]:
        return {str(n): st[key] for n, st in by_bits_stats.items()}

    validation: dict[str, Any] = {
        "n_heldout": n_held,
        "code_agreement": sum(s["n_agree"] for s in per_inst) / n_held,
        "code_agreement_target": CODE_AGREEMENT_TARGET,
        "within_1_lsb": sum(s["n_within_1"] for s in per_inst) / n_held,
        "code_agreement_min_instance": min(s["code_agreement"] for s in per_inst),
        "inl_max_lsb": inl_nom["max_abs_inl_lsb"],
        "dnl_max_lsb": inl_nom["max_abs_dnl_lsb"],
        "mc_instances": len(mc),
        "mc_inl_max_lsb": max((s["max_abs_inl_lsb"] for s in mc), default=None),
        "mc_dnl_max_lsb": max((s["max_abs_dnl_lsb"] for s in mc), default=None),
        "fit_residual_max_v": max(f.residual_max_v_ for f in fitters),
        "energy_rel_rms_error": per_inst[0]["energy_rel_rms_error"],
        "energy_rel_rms_error_mean_table": per_inst[0]["energy_rel_rms_error_mean_table"],
        "code_agreement_by_bits": by("code_agreement"),
        "n_heldout_by_bits": by("n_heldout"),
        "code_agreement_min_by_bits": min(s["code_agreement"] for s in by_bits_stats.values()),
        "inl_max_lsb_by_bits": by("max_abs_inl_lsb"),
        "dnl_max_lsb_by_bits": by("max_abs_dnl_lsb"),
        "energy_rel_rms_error_by_bits": by("energy_rel_rms_error"),
        "fit_residual_max_v_by_bits": {str(n): v for n, v in sorted(res_fit_residual.items())},
        "analytic_weights_max_rel_error": max(
            s["analytic_weights_rel_error"] for s in [*per_inst, *by_bits_stats.values()]
        ),
        "sample_instance_code_agreement": (
            float(
                sum(s["sample_instance_code_agreement"] * s["n_heldout"] for s in mc)
                / sum(s["n_heldout"] for s in mc)
            )
            if mc
            else None
        ),
        "sample_instance_weights_max_rel_error": max(
            (s["sample_instance_weights_rel_error"] for s in mc), default=None
        ),
    }
    # equivalent comparison-level variation (Bao et al. 2022) of the Monte-Carlo instances
    if mc:
        dev = np.stack([m.thresholds() for m in models[1:]]) - models[0].thresholds()
        nva_equiv = float(np.std(dev) / nominal.v_ref_v)
    else:
        nva_equiv = None
    nominal_b = [fit_b[0], val_b[0], skip_b]
    times = [_elapsed(results, b) for b in nominal_b]
    n_conv = sum(b.v.size for b in nominal_b)
    strip = ("n_agree", "n_within_1")
    extra: dict[str, Any] = {
        "conversion_time_s": nominal.conversion_time_s,
        "clock_hz": nominal.clock_hz,
        "energy_vs_skip": e_skip,
        "energy_vs_bits": e_bits,
        "nominal": {k: v for k, v in per_inst[0].items() if k not in strip},
        "mc": [
            {**models[i + 1].to_dict(), **{k: v for k, v in s.items() if k not in strip}}
            for i, s in enumerate(mc)
        ],
        "mc_inl_max_lsb": [s["max_abs_inl_lsb"] for s in mc],
        "mc_dnl_max_lsb": [s["max_abs_dnl_lsb"] for s in mc],
        "nva_equivalent": nva_equiv,
        "energy_ref_bit_j": models[0].energy_ref_bit_j.tolist(),
        "by_bits": {str(n): m.to_dict() for n, m in by_bits.items()},
        "by_bits_stats": {
            str(n): {k: v for k, v in st.items() if k not in strip}
            for n, st in by_bits_stats.items()
        },
        # ngspice wall time per conversion of the nominal's testbenches (the skipped
        # cycles of the skip-count conversions make some of them shorter)
        "ngspice_s_per_conversion": (
            None if any(t is None for t in times) else sum(times) / n_conv  # type: ignore[misc]
        ),
        "wall_s": time.perf_counter() - t_start,
    }
    for entry in extra["mc"]:  # JSON-able: arrays to lists
        for key, val in entry.items():
            if isinstance(val, np.ndarray):
                entry[key] = val.tolist()
    hashes = {
        "sar_adc_subckt": netlist_hash(sar_adc_subckt(nominal)),
        "sar_adc_testbench": netlist_hash(jobs[fit_b[0].first_job].netlist),
        "sar_comparator_trip": netlist_hash(jobs[trip_idx[0]].netlist),
    }
    for n, (fb, _, _) in res_b.items():
        hashes[f"sar_adc_subckt_{n}bit"] = netlist_hash(sar_adc_subckt(fb.params))
    return BlockResult(
        surrogate=models[0],
        validation=validation,
        netlist_hashes=hashes,
        extra=extra,
        n_spice_runs=len(jobs),
    )
