"""Crossbar characterization: SPICE sweeps, fit of :class:`CrossbarModel`, held-out validation.

Design of the sweeps
--------------------
* **Fit** on smaller arrays (half the card's size, and 3/8 × 5/8 of it: 32×32 and 24×40 for
  a 64×64 card; with the sense line): the fitted parameters are
  physical (κ and resistance scales), so fitting on other sizes and then validating at the
  card's size is itself a test of generalization.
* **Held out** at the card's array size: weight matrices and inputs never seen in fitting —
  realistic differential pairs from a trained-network-like weight distribution, unipolar
  random levels, sparse weights, structured blocks — driven by dense, sparse, one-hot and
  full-scale DAC codes. The same at 2.5 Ω per segment. A full run also validates at 128×128.

Errors are in LSBs of the card's ADC expressed as TIA input current
(``card.i_lsb_a = v_ref / (2**bits · r_feedback)``). The headline numbers are over the
outputs that reach the ADC inside its input range (differential-pair currents for bipolar
arrays, column currents for unipolar ones; beyond full scale the ADC clips), and the
error on every single column current, in range or not, is reported beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from cosim.characterize.context import BlockResult, CharContext
from cosim.circuits import crossbar_params
from cosim.spice.runner import SpiceJob
from cosim.surrogates.crossbar import CrossbarCase, CrossbarFitter, CrossbarModel
from device_models import DeviceModel
from netlists.common import netlist_hash
from netlists.crossbar import (
    CrossbarParams,
    column_currents,
    crossbar_netlist,
    crossbar_vectors,
)

MATRIX_KINDS = ("pairs", "uniform", "sparse", "block", "checker", "allmax", "gradient")
INPUT_KINDS = ("dense", "sparse50", "sparse90", "onehot", "fullscale", "ramp")


def design_matrix(
    kind: str, rows: int, cols: int, device: DeviceModel, rng: np.random.Generator
) -> tuple[np.ndarray, bool]:
    """A test conductance matrix (rows, cols) (S) and whether its columns are pairs.

    Kinds: ``pairs`` (differential pairs of a Laplacian weight matrix on the device's level
    grid, as a trained layer would map), ``uniform`` (random levels), ``sparse`` (90 % at
    g_min), ``block`` (a g_max block in a g_min array), ``checker``, ``allmax``, ``gradient``.
    """
    nl = device.n_levels
    top = nl - 1
    if kind == "pairs":
        scale = rng.uniform(0.15, 0.35)
        w = np.clip(rng.laplace(0.0, scale, (rows, cols // 2 + 1)), -1.0, 1.0)
        lev = np.clip(np.rint(w * top), -top, top).astype(int)
        g = np.empty((rows, 2 * lev.shape[1]))
        g[:, 0::2] = device.level_conductance(np.maximum(lev, 0))
        g[:, 1::2] = device.level_conductance(np.maximum(-lev, 0))
        return g[:, :cols], True
    if kind == "uniform":
        return device.level_conductance(rng.integers(0, nl, (rows, cols))), False
    if kind == "sparse":
        lev = rng.integers(0, nl, (rows, cols))
        lev[rng.random((rows, cols)) < 0.9] = 0
        return device.level_conductance(lev), False
    if kind == "block":
        lev = np.zeros((rows, cols), dtype=int)
        r0, c0 = rng.integers(0, rows // 2), rng.integers(0, cols // 2)
        lev[r0 : r0 + rows // 2, c0 : c0 + cols // 2] = top
        return device.level_conductance(lev), False
    if kind == "checker":
        lev = (np.add.outer(np.arange(rows), np.arange(cols)) % 2) * top
        return device.level_conductance(lev), False
    if kind == "allmax":
        return np.full((rows, cols), device.g_max_s), False
    if kind == "gradient":
        lev = np.broadcast_to(np.arange(cols) * top // max(cols - 1, 1), (rows, cols))
        return device.level_conductance(lev), False
    raise ValueError(f"unknown matrix kind {kind!r}; use one of {MATRIX_KINDS}")


def design_inputs(
    kind: str, n: int, rows: int, dac_bits: int, v_read_v: float, rng: np.random.Generator
) -> np.ndarray:
    """``n`` input vectors (n, rows) of DAC voltages (V) of the given kind."""
    top = 2**dac_bits - 1
    if kind == "dense":
        k = rng.integers(0, top + 1, (n, rows))
    elif kind in ("sparse50", "sparse90"):
        k = rng.integers(0, top + 1, (n, rows))
        k[rng.random((n, rows)) < (0.5 if kind == "sparse50" else 0.9)] = 0
    elif kind == "onehot":
        k = np.zeros((n, rows), dtype=int)
        k[np.arange(n), rng.integers(0, rows, n)] = rng.integers(top // 2, top + 1, n)
    elif kind == "fullscale":
        k = np.full((n, rows), top)
        k[1:, :] *= rng.random((max(n - 1, 0), rows)) < 0.75
    elif kind == "ramp":
        k = np.tile(np.linspace(0, top, rows).astype(int), (n, 1))
        k = np.roll(k, rng.integers(0, rows), axis=1)
    else:
        raise ValueError(f"unknown input kind {kind!r}; use one of {INPUT_KINDS}")
    return k / 2**dac_bits * v_read_v


@dataclass
class _Spec:
    label: str
    params: CrossbarParams
    g: np.ndarray  # data columns (rows, cols)
    pairs: bool
    v: np.ndarray


def _mixed_inputs(n: int, rows: int, card, rng) -> np.ndarray:
    kinds = [INPUT_KINDS[i % len(INPUT_KINDS)] for i in range(n)]
    return np.concatenate(
        [design_inputs(k, 1, rows, card.dac.bits, card.dac.v_read_v, rng) for k in kinds]
    )


def _specs(ctx: CharContext, which: str) -> list[_Spec]:
    card, dev = ctx.card, ctx.device
    rng = ctx.rng(f"crossbar-{which}")
    specs: list[_Spec] = []
    if which == "fit":
        r0, c0 = card.array.rows, card.array.cols
        sizes = [  # other shapes than the card's: the held-out test is also one of size
            (max(8, r0 // 2), max(8, c0 // 2)),
            (max(8, 3 * r0 // 8), max(8, 5 * c0 // 8)),
        ]
        kinds = ["pairs", "uniform", "allmax", "checker"]
        n = 8 if ctx.quick else 12
        for rows, cols in sizes:
            p = crossbar_params(card, rows, cols, sense=True)
            for k in kinds:
                g, pairs = design_matrix(k, rows, cols, dev, rng)
                specs.append(
                    _Spec(f"{k}-{rows}x{cols}", p, g, pairs, _mixed_inputs(n, rows, card, rng))
                )
        return specs
    if which in ("heldout", "r2p5", "x128"):
        rows, cols = (128, 128) if which == "x128" else (card.array.rows, card.array.cols)
        if which == "r2p5":
            c2 = card.with_updates({"array": {"r_wire_wl_ohm": 2.5, "r_wire_bl_ohm": 2.5}})
            p = crossbar_params(c2, rows, cols)
        else:
            p = crossbar_params(card, rows, cols)
        if which == "heldout":
            kinds = ["pairs", "sparse", "block", "uniform"]
            if not ctx.quick:
                kinds += ["pairs", "gradient", "checker", "allmax"]
        elif which == "r2p5":
            kinds = ["pairs", "uniform"] if ctx.quick else ["pairs", "uniform", "block", "sparse"]
        else:
            kinds = ["pairs", "uniform"]
        n = 8 if (ctx.quick or which == "x128") else 12
        for k in kinds:
            g, pairs = design_matrix(k, rows, cols, dev, rng)
            specs.append(
                _Spec(f"{k}-{rows}x{cols}", p, g, pairs, _mixed_inputs(n, rows, card, rng))
            )
        return specs
    raise ValueError(which)


def _jobs(ctx: CharContext, specs: list[_Spec]) -> list[SpiceJob]:
    jobs = []
    for s in specs:
        text = crossbar_netlist(s.params, ctx.device, s.g, s.v, title=f"cosim crossbar {s.label}")
        timeout = 600.0 if s.params.rows <= 64 else 3000.0
        jobs.append(SpiceJob(text, crossbar_vectors(s.params), timeout, f"crossbar {s.label}"))
    return jobs


def _cases(ctx: CharContext, specs: list[_Spec]) -> tuple[list[CrossbarCase], dict[str, str]]:
    jobs = _jobs(ctx, specs)
    results = ctx.runner.run(jobs, desc="crossbar")
    cases, hashes = [], {}
    for s, j, r in zip(specs, jobs, results, strict=True):
        i = column_currents(r, s.params, s.v.shape[0])
        cases.append(CrossbarCase(s.params.with_g_matrix(s.g), s.v, i, s.params.sense, s.label))
        hashes[s.label] = netlist_hash(j.netlist)
    return cases, hashes


def errors_lsb(
    model: CrossbarModel, cases: list[CrossbarCase], specs: list[_Spec], card
) -> dict[str, Any]:
    """Held-out error statistics in ADC LSBs (see module docstring)."""
    lsb = card.i_lsb_a
    fs = card.i_full_scale_a
    out_err, col_err, ideal_col, ideal_out, by_case = [], [], [], [], {}
    for c, s in zip(cases, specs, strict=True):
        i_sur = model.column_currents(c.g, c.v, c.sense_first)
        i_id = model.ideal_currents(c.g, c.v)
        cols = s.params.cols
        e_col = (i_sur - c.i_spice)[:, :cols] / lsb
        e_id = (i_id - c.i_spice)[:, :cols] / lsb
        if s.pairs:
            spice_out = c.i_spice[:, 0:cols:2] - c.i_spice[:, 1:cols:2]
            sur_out = i_sur[:, 0:cols:2] - i_sur[:, 1:cols:2]
            id_out = i_id[:, 0:cols:2] - i_id[:, 1:cols:2]
            in_range = np.abs(spice_out) <= fs
        else:
            spice_out, sur_out, id_out = c.i_spice[:, :cols], i_sur[:, :cols], i_id[:, :cols]
            in_range = (spice_out >= 0) & (spice_out <= fs)
        e_out = ((sur_out - spice_out) / lsb)[in_range]
        out_err.append(e_out)
        ideal_out.append(((id_out - spice_out) / lsb)[in_range])
        col_err.append(e_col.ravel())
        ideal_col.append(e_id.ravel())
        by_case[c.label] = {
            "n_vectors": int(c.v.shape[0]),
            "outputs_in_range": int(in_range.sum()),
            "rms_error_lsb": _rms(e_out),
            "max_error_lsb": _max(e_out),
            "max_error_all_columns_lsb": _max(e_col),
            "max_column_current_ua": float(np.max(c.i_spice[:, :cols]) * 1e6),
        }
    e, ec, io, ic = (np.concatenate(x) for x in (out_err, col_err, ideal_out, ideal_col))
    return {
        "n_heldout": int(sum(c.v.shape[0] for c in cases)),
        "n_outputs": int(e.size),
        "rms_error_lsb": _rms(e),
        "max_error_lsb": _max(e),
        "rms_error_all_columns_lsb": _rms(ec),
        "max_error_all_columns_lsb": _max(ec),
        "ideal_model_rms_error_lsb": _rms(io),
        "ideal_model_max_error_lsb": _max(io),
        "ideal_model_max_error_all_columns_lsb": _max(ic),
        "lsb_a": lsb,
        "by_case": by_case,
    }


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if np.size(x) else 0.0


def _max(x: np.ndarray) -> float:
    return float(np.max(np.abs(x))) if np.size(x) else 0.0


def characterize_crossbar(ctx: CharContext) -> BlockResult:
    """Fit the crossbar surrogate on small arrays and validate it at the card's size."""
    card = ctx.card
    fit_specs = _specs(ctx, "fit")
    ho_specs = _specs(ctx, "heldout")
    r2_specs = _specs(ctx, "r2p5")
    x128_specs = [] if ctx.quick else _specs(ctx, "x128")
    all_specs = fit_specs + ho_specs + r2_specs + x128_specs
    cases, hashes = _cases(ctx, all_specs)
    n_fit, n_ho, n_r2 = len(fit_specs), len(ho_specs), len(r2_specs)
    fit_cases = cases[:n_fit]
    ho_cases = cases[n_fit : n_fit + n_ho]
    r2_cases = cases[n_fit + n_ho : n_fit + n_ho + n_r2]
    x128_cases = cases[n_fit + n_ho + n_r2 :]

    fitter = CrossbarFitter(
        card.array.r_wire_wl_ohm,
        card.array.r_wire_bl_ohm,
        card.dac.r_out_ohm,
        ctx.device.iv_alpha_per_v,
        card.dac.v_read_v,
    ).fit(fit_cases, i_scale_a=card.i_lsb_a)
    model = fitter.model

    validation = errors_lsb(model, ho_cases, ho_specs, card)
    validation["size"] = f"{card.array.rows}x{card.array.cols}"
    validation["fit"] = {
        "n_cases": len(fit_cases),
        "sizes": sorted({f"{s.params.rows}x{s.params.cols}" for s in fit_specs}),
        "rms_fit_lsb": fitter.rms_fit_ / card.i_lsb_a,
        "kappa": model.kappa,
        "drive_a": model.drive_a,
        "drive_b": model.drive_b,
    }
    # the same fitted physics at 2.5 ohm per segment (only the card's resistances change)
    m2 = replace(model, r_wire_wl_ohm=2.5, r_wire_bl_ohm=2.5)
    validation["at_2p5_ohm"] = errors_lsb(m2, r2_cases, r2_specs, card)
    if x128_cases:
        validation["extrapolation_128x128"] = errors_lsb(model, x128_cases, x128_specs, card)
    return BlockResult(
        surrogate=model,
        validation=validation,
        netlist_hashes=hashes,
        n_spice_runs=len(all_specs),
    )
