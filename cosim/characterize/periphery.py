"""TIA and subtractor characterization: DC sweeps in SPICE, fits, held-out validation.

Errors are in LSBs of the card's ADC (``v_ref / 2**bits``) at the block's output. The
*linear range* is the ADC's input range ``[0, v_ref]``; outside it the block should clip at
the op-amp's rails, which is checked separately (``clip_*`` keys).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from cosim.characterize.context import BlockResult, CharContext
from cosim.circuits import subtractor_sample, tia_params
from cosim.spice.runner import SpiceJob
from cosim.surrogates.periphery import (
    OpampFit,
    SubtractorFitter,
    SubtractorModel,
    TiaFitter,
    TiaModel,
)
from netlists.common import netlist_hash
from netlists.subtractor import SubtractorParams, subtractor_testbench_netlist
from netlists.tia import tia_testbench_netlist


def _guess(card) -> OpampFit:
    o = card.opamp
    return OpampFit(o.dc_gain_v_per_v, o.input_offset_v, o.v_out_min_v, o.v_out_max_v, o.r_out_ohm)


def _stats(pred: np.ndarray, spice: np.ndarray, card) -> dict[str, Any]:
    lsb = card.adc_lsb_v
    err = (pred - spice) / lsb
    lin = (spice >= 0.0) & (spice <= card.adc.v_ref_v)
    clip = spice > card.adc.v_ref_v * 1.02
    clip_lo = spice < -0.02 * card.adc.v_ref_v
    out: dict[str, float | int] = {
        "n_heldout": int(spice.size),
        "n_linear": int(lin.sum()),
        "rms_error_lsb": float(np.sqrt(np.mean(err[lin] ** 2))) if lin.any() else 0.0,
        "max_error_lsb": float(np.max(np.abs(err[lin]))) if lin.any() else 0.0,
        "n_clipping": int((clip | clip_lo).sum()),
        "clip_max_error_lsb": float(np.max(np.abs(err[clip | clip_lo])))
        if (clip | clip_lo).any()
        else 0.0,
        "spice_max_output_v": float(spice.max()),
        "surrogate_max_output_v": float(pred.max()),
    }
    return out


def characterize_tia(ctx: CharContext) -> BlockResult:
    """Sweep a TIA over column Norton equivalents ``(I_N, G_N)``, fit, validate held out."""
    card = ctx.card
    rng = ctx.rng("tia")
    p = tia_params(card)
    i_fs = card.i_full_scale_a
    g_col_max = card.array.rows * card.device.g_max_s
    # fit: a grid through the linear range, into clipping on both sides
    g_grid = np.array([0.0, 0.02, 0.1, 0.3, 1.0]) * g_col_max
    i_grid = np.linspace(-1.6, 1.6, 24 if ctx.quick else 48) * i_fs
    gi, ii = np.meshgrid(g_grid, i_grid)
    x_fit = np.stack([ii.ravel(), gi.ravel()], axis=1)
    n_ho = 60 if ctx.quick else 200
    x_ho = np.stack(
        [rng.uniform(-0.2, 1.5, n_ho) * i_fs, rng.uniform(0, 1, n_ho) ** 2 * g_col_max], axis=1
    )
    jobs = [
        SpiceJob(tia_testbench_netlist(p, x[:, 0], x[:, 1]), ("out",), 120.0, f"tia {name}")
        for name, x in (("fit", x_fit), ("held-out", x_ho))
    ]
    r_fit, r_ho = ctx.runner.run(jobs, desc="tia")
    y_fit = np.asarray(r_fit["out"])[: len(x_fit)]
    y_ho = np.asarray(r_ho["out"])[: len(x_ho)]
    fitter = TiaFitter(card.tia.r_feedback_ohm, _guess(card)).fit(x_fit, y_fit)
    model: TiaModel = fitter.model
    val = _stats(model.predict(x_ho[:, 0], x_ho[:, 1]), y_ho, card)
    val["fitted"] = {
        "r_feedback_ohm": model.r_feedback_ohm,
        "dc_gain_v_per_v": model.opamp.dc_gain_v_per_v,
        "offset_v": model.opamp.offset_v,
        "v_out_max_v": model.opamp.v_out_max_v,
        "v_out_min_v": model.opamp.v_out_min_v,
    }
    # the designer's view: how much the column conductance amplifies the op-amp offset
    val["offset_gain_at_max_column_conductance"] = 1.0 + card.tia.r_feedback_ohm * g_col_max
    return BlockResult(
        surrogate=model,
        validation=val,
        netlist_hashes={j.label: netlist_hash(j.netlist) for j in jobs},
        n_spice_runs=len(jobs),
    )


def characterize_subtractor(ctx: CharContext) -> BlockResult:
    """Sweep a mismatched subtractor instance (and Monte-Carlo instances), fit, validate."""
    card = ctx.card
    rng = ctx.rng("subtractor")
    inst = subtractor_sample(card, rng)
    inst = SubtractorParams(*inst.resistors(), opamp=tia_params(card).opamp)
    vmax = card.opamp.v_out_max_v
    gain = card.subtractor.gain_v_per_v
    # inputs are TIA outputs anywhere in their swing; their difference times the gain spans
    # the ADC range and beyond, into both rails
    base_g = np.linspace(0.0, vmax, 7 if ctx.quick else 13)
    diff_g = np.linspace(-1.4, 1.4, 13 if ctx.quick else 25) * card.adc.v_ref_v / gain
    bb, dd = np.meshgrid(base_g, diff_g)
    x_fit = np.stack([np.clip(bb + dd, 0, vmax).ravel(), bb.ravel()], axis=1)
    n_ho = 60 if ctx.quick else 200
    base = rng.uniform(0.0, vmax, n_ho)
    diff = rng.uniform(-0.3, 1.6, n_ho) * card.adc.v_ref_v / gain
    x_ho = np.stack([np.clip(base + diff, 0, vmax), base], axis=1)
    n_mc = 4 if ctx.quick else 20
    mc = [subtractor_sample(card, rng) for _ in range(n_mc)]
    jobs = [
        SpiceJob(
            subtractor_testbench_netlist(inst, x_fit[:, 0], x_fit[:, 1]),
            ("out",),
            120.0,
            "subtractor fit",
        ),
        SpiceJob(
            subtractor_testbench_netlist(inst, x_ho[:, 0], x_ho[:, 1]),
            ("out",),
            120.0,
            "subtractor held-out",
        ),
    ] + [
        SpiceJob(
            subtractor_testbench_netlist(m, x_fit[:, 0], x_fit[:, 1]),
            ("out",),
            120.0,
            f"subtractor mc{k}",
        )
        for k, m in enumerate(mc)
    ]
    res = ctx.runner.run(jobs, desc="subtractor")
    y_fit = np.asarray(res[0]["out"])[: len(x_fit)]
    y_ho = np.asarray(res[1]["out"])[: len(x_ho)]
    guess = _guess(card)
    model: SubtractorModel = (
        SubtractorFitter(card.subtractor.r_ohm, guess, gain, inst.resistors())
        .fit(x_fit, y_fit)
        .model
    )
    val = _stats(model.predict(x_ho[:, 0], x_ho[:, 1]), y_ho, card)
    a_pos, a_neg, c = model.linear()
    val["fitted"] = {"gain_pos": a_pos, "gain_neg": a_neg, "offset_v": c, "design_gain": gain}
    val["instance_resistors_ohm"] = list(inst.resistors())
    # Monte-Carlo: gain error and offset spread of sampled instances, from their own fits
    # and how the fitted op-amp predicts them, given each instance's resistors and offset
    # (what the engine does with its own Monte-Carlo subtractors)
    mc_stats, transfer_err = [], []
    for m_inst, r in zip(mc, res[2:], strict=True):
        y = np.asarray(r["out"])[: len(x_fit)]
        op = replace(model.opamp, offset_v=m_inst.opamp.input_offset_v)
        pred = SubtractorModel(*m_inst.resistors(), opamp=op).predict(x_fit[:, 0], x_fit[:, 1])
        inside = (y >= 0) & (y <= card.adc.v_ref_v)
        transfer_err.append((pred - y)[inside] / card.adc_lsb_v)
        mm = SubtractorFitter(card.subtractor.r_ohm, guess, gain, m_inst.resistors())
        mm = mm.fit(x_fit, y).model
        ap, an, cc = mm.linear()
        mc_stats.append((ap / gain - 1.0, an / gain - 1.0, cc))
    arr = np.array(mc_stats)
    lsb = card.adc_lsb_v
    val["monte_carlo"] = {
        "instances": n_mc,
        "gain_pos_error_std": float(arr[:, 0].std()),
        "gain_neg_error_std": float(arr[:, 1].std()),
        "offset_std_lsb": float(arr[:, 2].std() / lsb),
        "worst_full_scale_error_lsb": float(
            np.max(np.abs(arr[:, 0] * card.adc.v_ref_v + arr[:, 2])) / lsb
        ),
        "transfer_rms_error_lsb": float(np.sqrt(np.mean(np.concatenate(transfer_err) ** 2))),
        "transfer_max_error_lsb": float(np.max(np.abs(np.concatenate(transfer_err)))),
    }
    return BlockResult(
        surrogate=model,
        validation=val,
        netlist_hashes={j.label: netlist_hash(j.netlist) for j in jobs},
        n_spice_runs=len(jobs),
    )
