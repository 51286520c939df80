"""The SAR ADC's characterization sweep, which the registered ``"sar"`` architecture runs.

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
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from cosim.characterize.adc.batches import (
    Batch,
    add_batch,
    decode_batch,
    elapsed,
    run_longest_first,
)
from cosim.characterize.adc.fitting import (
    agreement_summary,
    by_bits_summary,
    draws,
    fit_nominal,
    heldout_stats,
    mc_code_agreement,
    mc_summary,
    stored_by_bits,
    weights_rel_error,
)
from cosim.characterize.adc.inputs import (
    analytic_model,
    fit_inputs,
    heldout_inputs,
    skip_sweep_inputs,
)
from cosim.characterize.context import BlockResult, CharContext
from cosim.circuits import sar_adc_params, sar_adc_sample
from cosim.spice.runner import SpiceJob
from cosim.surrogates.adc import SarAdcFitter, SarAdcModel, with_mismatch
from netlists.common import netlist_hash
from netlists.sar_adc import (
    comparator_trip_netlist,
    decode_trip,
    sar_adc_subckt,
)

#: Resolutions of the energy-versus-bits sweep (the card's bits are added).
ENERGY_BITS = (1, 2, 3, 4, 6, 8)
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
        ``dnl_max_lsb`` (nominal instance), ``mc_instances``; per resolution, of the nominal
        instance alone (so ``n_heldout_by_bits`` at the card's bits is below ``n_heldout``):
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
        fb = Batch(p, *fit_inputs(p, budget.n_fit, rng), f"{tag} fit")
        vb = Batch(p, *heldout_inputs(p, budget.n_val, rng), f"{tag} held-out")
        add_batch(jobs, fb, cost)
        add_batch(jobs, vb, cost)
        trip_idx.append(len(jobs))
        jobs.append(
            SpiceJob(comparator_trip_netlist(p), ("v-sweep", "cmp"), label=f"SAR {tag} trip")
        )
        cost.append(1.0)
        fit_b.append(fb)
        val_b.append(vb)
    skip_b = Batch(nominal, *skip_sweep_inputs(nominal, budget.n_energy_skip, rng), "skip")
    add_batch(jobs, skip_b, cost)
    # the nominal design at every other resolution
    res_b: dict[int, tuple[Batch, Batch, Batch]] = {}
    for n in range(1, nb):
        p = sar_adc_params(card, n)
        batches = (
            Batch(p, *fit_inputs(p, budget.n_fit_bits, rng), f"{n}-bit fit"),
            Batch(p, *skip_sweep_inputs(p, budget.n_energy_skip_bits, rng), f"{n}-bit skip"),
            Batch(p, *heldout_inputs(p, budget.n_val_bits, rng), f"{n}-bit held-out"),
        )
        for b in batches:
            add_batch(jobs, b, cost)
        res_b[n] = batches
    # energy only: resolutions above the card's
    bits_b = {}
    for n in sorted(set(ENERGY_BITS)):
        if n <= nb:
            continue
        p = nominal.with_bits(n)
        v = rng.uniform(0.0, 1.0, budget.n_energy_bits) * (2.0**n - 0.5) * p.lsb_v
        b = Batch(p, v, np.zeros(v.size, np.int64), f"{n}-bit energy")
        add_batch(jobs, b, cost)
        bits_b[n] = b

    results = run_longest_first(ctx, jobs, cost)

    # -- fit and validate every instance at the card's resolution
    models: list[SarAdcModel] = []
    fitters: list[SarAdcFitter] = []
    per_inst: list[dict[str, Any]] = []
    skip_data = decode_batch(results, skip_b)
    trip_nominal = decode_trip(results[trip_idx[0]], nominal)
    for i, p in enumerate(instances):
        fit_data = decode_batch(results, fit_b[i])
        trip = decode_trip(results[trip_idx[i]], p)
        if i == 0:  # the nominal energy table also uses the skip sweep
            f = fit_nominal(p, fit_data, fit_b[i], skip_data, skip_b, trip)
            m = f.model()
        else:  # Monte-Carlo instances share the nominal energy table
            f = SarAdcFitter(nb, p.v_ref_v, p.conversion_time_s).fit(
                fit_b[i].v, fit_b[i].k, fit_data, trip
            )
            m = f.model(models[0].energy_ref_j, models[0].energy_dd_j)
        fitters.append(f)
        models.append(m)
        held = decode_batch(results, val_b[i])
        st = heldout_stats(m, p, val_b[i], held)
        st["fit_residual_rms_v"] = f.residual_rms_v_
        st["decision_agreement"] = f.decision_agreement_
        st["analytic_weights_rel_error"] = weights_rel_error(m, analytic_model(p))
        if i > 0:  # the same instance rebuilt from the fitted nominal and its draws
            rebuilt = with_mismatch(models[0], *draws(p, nominal))
            st["sample_instance_code_agreement"] = float(
                np.mean(rebuilt.convert(val_b[i].v, val_b[i].k) == held["codes"])
            )
            st["sample_instance_weights_rel_error"] = weights_rel_error(rebuilt, m)
        per_inst.append(st)

    # -- the nominal at every resolution
    by_bits: dict[int, SarAdcModel] = {nb: models[0]}
    by_bits_stats: dict[int, dict[str, Any]] = {nb: per_inst[0]}
    res_fit_residual = {nb: fitters[0].residual_max_v_}
    for n, (fb, sb, vb) in res_b.items():
        p = fb.params
        f = fit_nominal(
            p, decode_batch(results, fb), fb, decode_batch(results, sb), sb, trip_nominal
        )
        m = f.model()
        st = heldout_stats(m, p, vb, decode_batch(results, vb))
        st["fit_residual_rms_v"] = f.residual_rms_v_
        st["decision_agreement"] = f.decision_agreement_
        st["analytic_weights_rel_error"] = weights_rel_error(m, analytic_model(p))
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
            d = decode_batch(results, bits_b[n])
            e_ref, e_dd = float(d["e_ref_j"].mean()), float(d["e_dd_j"].mean())
            t_conv = bits_b[n].params.conversion_time_s
        e_bits["bits"].append(n)
        e_bits["e_ref_j"].append(e_ref)
        e_bits["e_dd_j"].append(e_dd)
        e_bits["e_total_j"].append(e_ref + e_dd)
        e_bits["conversion_time_s"].append(t_conv)

    mc = per_inst[1:]
    inl_nom = models[0].inl_dnl()

    validation: dict[str, Any] = {
        **agreement_summary(per_inst, CODE_AGREEMENT_TARGET),
        "inl_max_lsb": inl_nom["max_abs_inl_lsb"],
        "dnl_max_lsb": inl_nom["max_abs_dnl_lsb"],
        **mc_summary(mc),
        "fit_residual_max_v": max(f.residual_max_v_ for f in fitters),
        "energy_rel_rms_error": per_inst[0]["energy_rel_rms_error"],
        "energy_rel_rms_error_mean_table": per_inst[0]["energy_rel_rms_error_mean_table"],
        **by_bits_summary(by_bits_stats),
        "fit_residual_max_v_by_bits": {str(n): v for n, v in sorted(res_fit_residual.items())},
        "analytic_weights_max_rel_error": max(
            s["analytic_weights_rel_error"] for s in [*per_inst, *by_bits_stats.values()]
        ),
        "sample_instance_code_agreement": mc_code_agreement(mc),
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
    times = [elapsed(results, b) for b in nominal_b]
    n_conv = sum(b.v.size for b in nominal_b)
    strip = ("n_agree", "n_within_1")
    e_ref_bit = models[0].energy_ref_bit_j
    assert e_ref_bit is not None  # set by SarAdcModel.__post_init__
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
        "energy_ref_bit_j": e_ref_bit.tolist(),
        **stored_by_bits(by_bits, by_bits_stats, strip, times, n_conv, t_start),
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
