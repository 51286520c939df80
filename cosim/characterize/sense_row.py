"""Sense-row characterization: V_sense versus inputs, the bound, thresholds, violations.

SPICE simulates whole analog MAC units (crossbar + sense line + TIAs + subtractors) at the
card's size. Worst-case arrays (every weight at its maximum) set the bound ``(β, γ)`` and the
thresholds ``V_th,k``; held-out arrays — realistic differential pairs, random unipolar
levels, blocks, and worst cases driven by other inputs — count *bound violations*: a
conversion whose top ``k`` bits are not all zero although ``V_sense < V_th,k`` allowed the
ADC to skip them. The same runs check the engine's composition of surrogates (crossbar →
TIA → subtractor, and crossbar → sense TIA) against SPICE.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from cosim.characterize.context import BlockResult, CharContext
from cosim.characterize.crossbar import design_inputs, design_matrix
from cosim.circuits import mac_analog_params
from cosim.spice.runner import SpiceJob
from cosim.surrogates.crossbar import CrossbarModel
from cosim.surrogates.periphery import SubtractorModel, TiaModel
from cosim.surrogates.sense_row import SenseRowModel, offset_budget_v, skips, thresholds
from netlists.common import netlist_hash
from netlists.mac_unit import mac_analog_netlist, pair_layout, unipolar_layout


def _sparse_inputs(n: int, rows: int, card, rng, max_active: int) -> np.ndarray:
    """Inputs with 1..max_active active rows at random DAC codes (V)."""
    v = np.zeros((n, rows))
    for k in range(n):
        m = int(rng.integers(1, max_active + 1))
        idx = rng.choice(rows, m, replace=False)
        v[k, idx] = rng.integers(1, 2**card.dac.bits, m) / 2**card.dac.bits * card.dac.v_read_v
    return v


def _simulate(ctx: CharContext, specs, dev) -> tuple[list, list[SpiceJob]]:
    """Run MAC-unit netlists for ``(label, layout, g, inputs, offsets)`` specs; returns
    ``(outputs (n, layout), v_sense (n,))`` per spec, and the jobs."""
    card = ctx.card
    jobs = []
    for label, lay, g, v, offs in specs:
        p = mac_analog_params(card, lay)
        tia_off, sub_off = (None, None) if offs is None else offs
        text, vectors = mac_analog_netlist(
            p, dev, g, v, tia_off, sub_off, title=f"cosim sense row {label}"
        )
        jobs.append(SpiceJob(text, vectors, 900.0, f"sense row {label}"))
    results = ctx.runner.run(jobs, desc="sense row")
    out = []
    for (_, lay, _, v, _), res in zip(specs, results, strict=True):
        nv = v.shape[0]
        outs = np.stack([np.asarray(res[f"out{k}"])[:nv] for k in range(len(lay))], axis=1)
        out.append((outs, np.asarray(res["vsense"])[:nv]))
    return out, jobs


def _array_thresholds(card, crossbar, g, lay, model, adc_transitions_v) -> np.ndarray:
    """The thresholds the engine uses for this array: the bound minus the allowance for
    random op-amp offsets at this array's column conductances."""
    gf = mac_analog_params(card, lay).crossbar.with_g_matrix(g)
    _, g_n = crossbar.transfer(gf, sense_first=True)
    budget = offset_budget_v(
        card.opamp.input_offset_sigma_v,
        card.tia.r_feedback_ohm,
        card.subtractor.gain_v_per_v,
        g_n,
        list(lay),
        card.sense_row.r_feedback_ohm,
        float(g_n[-1]),
        model.beta,
        n_sigma=card.sense_row.offset_n_sigma,
    )
    return thresholds(
        model.beta,
        model.gamma_v + budget,
        adc_transitions_v,
        model.adc_bits,
        card.sense_row.max_skip_bits,
        card.adc_lsb_v,
        card.sense_row.margin_rel,
    )


def _worst(kind: str, rows: int, cols: int, dev) -> np.ndarray:
    if kind == "pairs":
        g = np.full((rows, cols), dev.g_min_s)
        g[:, 0::2] = dev.g_max_s
        return g
    return np.full((rows, cols), dev.g_max_s)


def characterize_sense_row(
    ctx: CharContext,
    crossbar: CrossbarModel,
    tia: TiaModel,
    adc_transitions_v: np.ndarray | None = None,
) -> BlockResult:
    """Set the sense-row bound and thresholds from SPICE and count held-out violations.

    ``adc_transitions_v`` are the nominal ADC's code transitions (V); ideal ones are used
    when it is ``None``.
    """
    card, dev = ctx.card, ctx.device
    rng = ctx.rng("sense_row")
    rows, cols = card.array.rows, card.array.cols
    bits = card.adc.bits
    lsb = card.adc_lsb_v
    if adc_transitions_v is None:
        adc_transitions_v = (np.arange(1, 2**bits) - 0.5) * lsb
    n = 8 if ctx.quick else 16
    # sparse enough that the sense TIA stays out of saturation for part of the runs
    span = max(4, rows // 4)
    sigma_os = card.opamp.input_offset_sigma_v
    pairs_l, uni_l = pair_layout(cols), unipolar_layout(cols)

    def mc_offsets(lay):
        """Per-op-amp offsets of a Monte-Carlo instance (TIAs incl. sense, subtractors)."""
        base = card.opamp.input_offset_v
        return (
            base + sigma_os * rng.standard_normal(cols + 1),
            base + sigma_os * rng.standard_normal(len(lay)),
        )

    # stage 1: worst-case arrays (every weight at its maximum) set the bound
    fit_specs = [
        (
            "worst-pairs",
            pairs_l,
            _worst("pairs", rows, cols, dev),
            _sparse_inputs(n, rows, card, rng, span),
            None,
        ),
        (
            "worst-unipolar",
            uni_l,
            _worst("unipolar", rows, cols, dev),
            _sparse_inputs(n, rows, card, rng, span),
            None,
        ),
    ]
    fit_labels = {sp[0] for sp in fit_specs}
    fit_res, fit_jobs = _simulate(ctx, fit_specs, dev)
    v_sat = tia.opamp.v_out_max_v * 0.98
    beta_phys = (
        card.tia.r_feedback_ohm
        * dev.g_max_s
        / (card.sense_row.r_feedback_ohm * card.sense_row.g_sense_s)
    )
    o_fit = np.concatenate([o.ravel() for o, _ in fit_res])
    s_fit = np.concatenate([np.repeat(vs, o.shape[1]) for o, vs in fit_res])
    ok = (s_fit < v_sat) & (s_fit > 0)
    gamma = float(max(0.0, np.max(o_fit[ok] - beta_phys * s_fit[ok]))) if ok.any() else 0.0
    beta = beta_phys
    k_max = card.sense_row.max_skip_bits
    th = thresholds(beta, gamma, adc_transitions_v, bits, k_max, lsb, card.sense_row.margin_rel)
    sense_tia = TiaModel(card.sense_row.r_feedback_ohm, tia.opamp)
    model = SenseRowModel(card.sense_row.g_sense_s, sense_tia, beta, gamma, th, bits)

    # stage 2, held out: other arrays, inputs that probe each threshold from just below,
    # and Monte-Carlo instances with their own random op-amp offsets
    def probes(g, lay, count):
        """Inputs whose sense-line drive lands just below each threshold of this array."""
        th_arr = _array_thresholds(card, crossbar, g, lay, model, adc_transitions_v)
        targets = [t * f for t in th_arr if t > 0 for f in (0.9, 0.99)] or [th[0] * 0.5]
        out = np.zeros((count, rows))
        s_unit = card.sense_row.r_feedback_ohm * card.sense_row.g_sense_s
        for k in range(count):
            tgt = targets[k % len(targets)] / s_unit  # total drive Σ s(V) (V)
            m = int(rng.integers(1, span + 1))
            v = min(tgt / m, card.dac.v_read_v)
            code = np.floor(v / card.dac.v_read_v * 2**card.dac.bits)
            out[k, rng.choice(rows, m, replace=False)] = code / 2**card.dac.bits * card.dac.v_read_v
        return out

    held = [
        ("worst-pairs-b", pairs_l, _worst("pairs", rows, cols, dev), False),
        ("realistic-pairs", pairs_l, design_matrix("pairs", rows, cols, dev, rng)[0], False),
        ("uniform", uni_l, design_matrix("uniform", rows, cols, dev, rng)[0], False),
        ("worst-pairs-mc", pairs_l, _worst("pairs", rows, cols, dev), True),
        ("realistic-pairs-mc", pairs_l, design_matrix("pairs", rows, cols, dev, rng)[0], True),
    ]
    if not ctx.quick:
        held += [
            ("block", uni_l, design_matrix("block", rows, cols, dev, rng)[0], False),
            ("worst-unipolar-mc", uni_l, _worst("unipolar", rows, cols, dev), True),
            ("sparse-mc", uni_l, design_matrix("sparse", rows, cols, dev, rng)[0], True),
        ]
    held_specs = []
    for label, lay, g, mc in held:
        v = np.concatenate(
            [
                probes(g, lay, n // 2),
                _sparse_inputs(n - n // 2 - 1, rows, card, rng, span),
                design_inputs("sparse90", 1, rows, card.dac.bits, card.dac.v_read_v, rng),
            ]
        )
        held_specs.append((label, lay, g, v, mc_offsets(lay) if mc else None))
    held_res, held_jobs = _simulate(ctx, held_specs, dev)

    # the engine's composition versus SPICE, and violations with the engine's thresholds
    r_in, gn = card.subtractor.r_ohm, card.subtractor.gain_v_per_v
    tia_pair = TiaModel(card.tia.r_feedback_ohm / gn, tia.opamp)
    chain_err, sense_err = [], []
    n_points = n_conv = violations = 0
    skipped, margins = [], []
    for (label, lay, g, v, offs), (outs, vs) in zip(
        fit_specs + held_specs, fit_res + held_res, strict=True
    ):
        gf = mac_analog_params(card, lay).crossbar.with_g_matrix(g)
        m_main, m_quad, y_tt = crossbar.transfer_parts(gf, sense_first=True)
        g_n = np.diagonal(y_tt)
        tia_off = np.full(cols + 1, tia.opamp.offset_v) if offs is None else offs[0]
        sub_off = np.full(len(lay), tia.opamp.offset_v) if offs is None else offs[1]
        i_col = crossbar.currents(v, m_main, m_quad) + (y_tt - np.diag(g_n)) @ tia_off
        v_uni = tia.predict(i_col[:, :cols], g_n[:cols], tia_off[:cols])
        v_pair = tia_pair.predict(i_col[:, :cols], g_n[:cols], tia_off[:cols])
        pred = np.stack(
            [
                v_uni[:, a]
                if b is None
                else SubtractorModel(
                    r_in,
                    gn * r_in,
                    r_in,
                    gn * r_in,
                    opamp=tia.opamp.__class__(
                        tia.opamp.dc_gain_v_per_v,
                        sub_off[k],
                        tia.opamp.v_out_min_v,
                        tia.opamp.v_out_max_v,
                        tia.opamp.r_out_ohm,
                    ),
                ).predict(v_pair[:, a], v_pair[:, b])
                for k, (a, b) in enumerate(lay)
            ],
            axis=1,
        )
        in_range = (outs >= 0) & (outs <= card.adc.v_ref_v)
        chain_err.append(((pred - outs) / lsb)[in_range])
        vs_pred = sense_tia.predict(i_col[:, cols], g_n[cols], tia_off[cols])
        sense_err.append(((vs_pred - vs) / lsb)[vs < v_sat])
        if label in fit_labels:
            continue  # fit data: not held out
        th_arr = _array_thresholds(card, crossbar, g, lay, model, adc_transitions_v)
        k = skips(vs, th_arr)
        n_points += outs.shape[0]
        n_conv += outs.size
        for kk in range(1, k_max + 1):
            sel = k == kk
            if not sel.any():
                continue
            t = adc_transitions_v[2 ** (bits - kk) - 1]
            violations += int(np.sum(outs[sel] >= t))
            margins.append(float(np.min(t - outs[sel]) / lsb))
        skipped.append(np.repeat(k, outs.shape[1]))
    skipped_all = np.concatenate(skipped)
    ce = np.concatenate(chain_err)
    se = np.concatenate(sense_err)
    validation = {
        "n_heldout": n_points,
        "n_conversions": n_conv,
        "bound_violations": violations,
        "min_margin_of_skipped_conversions_lsb": min(margins) if margins else None,
        "mean_skipped_bits_heldout": float(skipped_all.mean()),
        "monte_carlo_offset_arrays": sum(1 for s_ in held_specs if s_[4] is not None),
        "offset_n_sigma": card.sense_row.offset_n_sigma,
        "beta": beta,
        "beta_physics": beta_phys,
        "gamma_v": gamma,
        "thresholds_v": [float(x) for x in th],
        "v_sense_rms_error_lsb": float(np.sqrt(np.mean(se**2))) if se.size else None,
        "v_sense_max_error_lsb": float(np.max(np.abs(se))) if se.size else None,
        "analog_chain_rms_error_lsb": float(np.sqrt(np.mean(ce**2))) if ce.size else None,
        "analog_chain_max_error_lsb": float(np.max(np.abs(ce))) if ce.size else None,
        "analog_chain_n_outputs": int(ce.size),
    }
    all_specs = fit_specs + held_specs
    vsense_curve = {
        "sum_drive_v": np.concatenate([crossbar.drive(sp[3]).sum(axis=1) for sp in all_specs]),
        "v_sense_v": np.concatenate([vs for _, vs in fit_res + held_res]),
    }
    jobs = fit_jobs + held_jobs
    return BlockResult(
        surrogate=replace(model),
        validation=validation,
        netlist_hashes={j.label: netlist_hash(j.netlist) for j in jobs},
        extra={"vsense_curve": vsense_curve},
        n_spice_runs=len(jobs),
    )
