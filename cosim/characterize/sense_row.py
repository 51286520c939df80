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
from cosim.spice.runner import SpiceJob
from cosim.surrogates.crossbar import CrossbarModel
from cosim.surrogates.periphery import SubtractorModel, TiaModel
from cosim.surrogates.sense_row import SenseRowModel, thresholds
from netlists.common import netlist_hash
from netlists.mac_unit import MacAnalogParams, mac_analog_netlist, pair_layout, unipolar_layout


def _sparse_inputs(n: int, rows: int, card, rng, max_active: int) -> np.ndarray:
    """Inputs with 1..max_active active rows at random DAC codes (V)."""
    v = np.zeros((n, rows))
    for k in range(n):
        m = int(rng.integers(1, max_active + 1))
        idx = rng.choice(rows, m, replace=False)
        v[k, idx] = rng.integers(1, 2**card.dac.bits, m) / 2**card.dac.bits * card.dac.v_read_v
    return v


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
    specs = []  # (label, layout, g, inputs, role)
    for kind in ("pairs", "unipolar"):
        lay = pair_layout(cols) if kind == "pairs" else unipolar_layout(cols)
        specs.append(
            (
                f"worst-{kind}",
                lay,
                _worst(kind, rows, cols, dev),
                _sparse_inputs(n, rows, card, rng, span),
                "fit",
            )
        )
    held = [
        ("worst-pairs-b", "pairs", _worst("pairs", rows, cols, dev)),
        ("realistic-pairs", "pairs", design_matrix("pairs", rows, cols, dev, rng)[0]),
        ("uniform", "unipolar", design_matrix("uniform", rows, cols, dev, rng)[0]),
    ]
    if not ctx.quick:
        held += [
            ("block", "unipolar", design_matrix("block", rows, cols, dev, rng)[0]),
            ("worst-unipolar-b", "unipolar", _worst("unipolar", rows, cols, dev)),
            ("sparse", "unipolar", design_matrix("sparse", rows, cols, dev, rng)[0]),
        ]
    for label, kind, g in held:
        lay = pair_layout(cols) if kind == "pairs" else unipolar_layout(cols)
        v = np.concatenate(
            [
                _sparse_inputs(n - 2, rows, card, rng, span),
                design_inputs("sparse90", 2, rows, card.dac.bits, card.dac.v_read_v, rng),
            ]
        )
        specs.append((label, lay, g, v, "heldout"))

    jobs, params = [], []
    for label, lay, g, v, _role in specs:
        p = MacAnalogParams.from_card(card, lay)
        text, vectors = mac_analog_netlist(p, dev, g, v, title=f"cosim sense row {label}")
        jobs.append(SpiceJob(text, vectors, 900.0, f"sense row {label}"))
        params.append(p)
    results = ctx.runner.run(jobs, desc="sense row")

    sense_tia = TiaModel(card.sense_row.r_feedback_ohm, tia.opamp)
    r_in, gn = card.subtractor.r_ohm, card.subtractor.gain_v_per_v
    sub_nominal = SubtractorModel(r_in, gn * r_in, r_in, gn * r_in, opamp=tia.opamp)
    tia_pair = TiaModel(card.tia.r_feedback_ohm / gn, tia.opamp)
    v_sat = tia.opamp.v_out_max_v * 0.98
    beta_phys = (
        card.tia.r_feedback_ohm
        * dev.g_max_s
        / (card.sense_row.r_feedback_ohm * card.sense_row.g_sense_s)
    )
    data = []
    chain_err, sense_err = [], []
    for (label, lay, g, v, role), p, res in zip(specs, params, results, strict=True):
        nv = v.shape[0]
        outs = np.stack([np.asarray(res[f"out{k}"])[:nv] for k in range(len(lay))], axis=1)
        vs = np.asarray(res["vsense"])[:nv]
        data.append((label, role, outs, vs))
        # surrogate chain versus SPICE (what the engine computes)
        gf = p.crossbar.with_g_matrix(g)
        m_eff, g_n = crossbar.transfer(gf, sense_first=True)
        i_col = crossbar.drive(v) @ m_eff
        v_uni = tia.predict(i_col[:, :cols], g_n[:cols])
        v_pair = tia_pair.predict(i_col[:, :cols], g_n[:cols])
        pred = np.stack(
            [
                v_uni[:, a] if b is None else sub_nominal.predict(v_pair[:, a], v_pair[:, b])
                for a, b in lay
            ],
            axis=1,
        )
        in_range = (outs >= 0) & (outs <= card.adc.v_ref_v)
        chain_err.append(((pred - outs) / lsb)[in_range])
        vs_pred = sense_tia.predict(i_col[:, cols], g_n[cols])
        ok = vs < v_sat
        sense_err.append(((vs_pred - vs) / lsb)[ok])

    # bound from the worst cases: beta from physics, raised if SPICE demands it
    fit = [(o, s) for _, role, o, s in data if role == "fit"]
    o_fit = np.concatenate([o.ravel() for o, s in fit])
    s_fit = np.concatenate([np.repeat(s, o.shape[1]) for o, s in fit])
    ok = (s_fit < v_sat) & (s_fit > 0)
    gamma = float(max(0.0, np.max(o_fit[ok] - beta_phys * s_fit[ok]))) if ok.any() else 0.0
    beta = beta_phys
    k_max = card.sense_row.max_skip_bits
    th = thresholds(beta, gamma, adc_transitions_v, bits, k_max, lsb, card.sense_row.margin_rel)

    model = SenseRowModel(card.sense_row.g_sense_s, sense_tia, beta, gamma, th, bits)
    # held-out violations: skipped k bits although the true (SPICE) output needed them
    n_points = n_conv = violations = 0
    skipped = []
    worst_margin = np.inf
    for _label, role, outs, vs in data:
        if role != "heldout":
            continue
        k = model.skip_bits(vs)  # (n,)
        n_points += outs.shape[0]
        n_conv += outs.size
        for kk in range(1, k_max + 1):
            rows_k = k >= kk
            if not rows_k.any():
                continue
            t = adc_transitions_v[2 ** (bits - kk) - 1]
            over = outs[rows_k] >= t
            violations += int(np.sum(over & (k[rows_k, None] == kk)))
            worst_margin = min(worst_margin, float(np.min(t - outs[rows_k]) / lsb))
        skipped.append(np.repeat(k, outs.shape[1]))
    skipped_all = np.concatenate(skipped)
    ce = np.concatenate(chain_err)
    se = np.concatenate(sense_err)
    validation = {
        "n_heldout": n_points,
        "n_conversions": n_conv,
        "bound_violations": violations,
        "min_margin_of_skipped_conversions_lsb": None
        if not np.isfinite(worst_margin)
        else worst_margin,
        "mean_skipped_bits_heldout": float(skipped_all.mean()),
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
    vsense_curve = {
        "sum_drive_v": np.concatenate([crossbar.drive(s[3]).sum(axis=1) for s in specs]),
        "v_sense_v": np.concatenate([d[3] for d in data]),
    }
    return BlockResult(
        surrogate=replace(model),
        validation=validation,
        netlist_hashes={j.label: netlist_hash(j.netlist) for j in jobs},
        extra={"vsense_curve": vsense_curve},
        n_spice_runs=len(jobs),
    )
