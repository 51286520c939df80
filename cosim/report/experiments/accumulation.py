"""Accumulation number and ADC share: the sense-row skip on Bao et al.'s own axes.

Bao et al. (2022, Fig. 6E/F) plot the normalized ADC energy and the MAC efficiency
against the *accumulation number* n: how many inputs one conversion sums (the rows of an
n x n array). The engine's rows experiment (5a) cannot reach that axis: a LeNet-5 layer's
fan-in, not the array, fixes how many inputs a conversion sums. This experiment samples it
directly, one output conversion at a time (:func:`accumulation_point`):

* n input codes drawn (a) from the trained model's own hidden-activation codes (every
  hidden layer's output codes over the test samples, pooled as in Bao et al.'s Fig. 5) or
  (b) from a swept sparsity: a fraction ``z`` of zero codes, the other codes distributed
  like the model's nonzero ones (mean code ``(1 - z)·mean nonzero``);
* n rows of the model's programmed device levels (a differential pair's two columns, rows
  drawn from every hidden layer's tiles, :func:`cosim.engine.mapping.map_model`);
* the engine's sense row: the library's bound ``(β, γ)``, the card's margins, the random
  op-amp offset allowance of the pair's Norton conductances
  (:func:`cosim.surrogates.sense_row.offset_budget_v`), the thresholds
  (:func:`cosim.surrogates.sense_row.thresholds`) and the sense TIA's exact affine
  transfer, at the model's transimpedance ``R_t``;
* the ADC energy per (skip, code) of the library's characterized converter, or the card's
  ``adc.e_conv_j`` figure where set (:func:`cosim.engine.energy.adc_override_energy_j`);
* the engine's per-event MAC energies (:func:`cosim.engine.energy.event_energies`): per
  output of an n x n tile (n/2 differential outputs) two column TIAs, a subtractor, the
  ADC, its share of the n DACs and of the sense row, and the crossbar read energy
  ``Σ V²·(G⁺ + G⁻)·t_read`` (the sense line's too).

Simplifications against the engine, stated in the report: the devices' I-V nonlinearity,
wire resistance, programming and read noise, the bias rows and the op-amp offsets of a
chip instance are left out (the thresholds allow for the offsets as the engine's do); the
ADC converts the ideal code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cosim.report.context import StudyContext
from cosim.report.experiments.base import Experiment, Results, precision_name
from cosim.report.plan import DESIGN_POINT, HIGH_PRECISION
from cosim.report.tasks import Task

#: Inputs summed per conversion (Bao et al., Fig. 6E/F).
ACCUMULATION_N = (32, 64, 128, 256, 512)
#: Fractions of zero input codes of the swept-sparsity inputs.
ZERO_FRACTIONS = (0.0, 0.25, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 1.0)
#: Bao et al.'s published values at n = 128: normalized ADC energy and MAC efficiency.
PUBLISHED = {
    precision_name(*DESIGN_POINT): {"normalized_adc_energy": 0.47, "mac_efficiency": 1.15},
    precision_name(*HIGH_PRECISION): {"normalized_adc_energy": 0.21, "mac_efficiency": 2.98},
}
#: ``adc.e_conv_j`` values (J per full conversion at the card's adc.bits) of the ADC-share
#: sweep.
E_CONV_SWEEP_J = tuple(float(x) for x in np.geomspace(1e-14, 1e-9, 16))
#: The example card whose ADC energy follows the survey curve (examples/cards).
ADC_DOMINATED_CARD = (
    Path(__file__).resolve().parents[3] / "examples" / "cards" / ("adc-dominated.toml")
)


def code_pmf(counts: np.ndarray) -> np.ndarray:
    """Probability of each code from a histogram of codes (uniform where it is empty)."""
    c = np.asarray(counts, dtype=np.float64)
    return c / c.sum() if c.sum() > 0 else np.full(c.size, 1.0 / c.size)


def sparse_pmf(model_pmf: np.ndarray, zero_fraction: float) -> np.ndarray:
    """Codes with ``zero_fraction`` zeros, the others distributed like the nonzero codes of
    ``model_pmf`` (uniform over the nonzero codes where it has none)."""
    nz = np.asarray(model_pmf, dtype=np.float64).copy()
    nz[0] = 0.0
    nz = nz / nz.sum() if nz.sum() > 0 else np.r_[0.0, np.full(nz.size - 1, 1 / (nz.size - 1))]
    out = (1.0 - zero_fraction) * nz
    out[0] += zero_fraction
    return out


def pair_levels(model, card) -> np.ndarray:
    """Device levels ``(rows, 2)`` of every differential pair's data rows on the model's
    tiles (``map_model`` on ``card``): the weights the Monte-Carlo draws rows from."""
    from cosim.engine.mapping import map_model

    rows = []
    for lm in map_model(model, card):
        for t in lm.tiles:
            for _, p, q in t.outputs:
                if q is not None:
                    rows.append(t.levels[t.data_rows][:, [p, q]])
    if not rows:
        raise ValueError("the model has no differential pair on its tiles")
    return np.concatenate(rows).astype(np.int64)


def accumulation_point(
    library,
    card,
    *,
    r_t_ohm: float,
    in_bits: int,
    bits: int,
    levels: np.ndarray,
    pmf: np.ndarray,
    n: int,
    trials: int,
    seed: int,
) -> dict[str, Any]:
    """One output conversion summing ``n`` inputs, over ``trials`` random draws.

    Parameters
    ----------
    library
        The surrogate library (its ``sense_row`` block and ``bits``-bit ADC).
    card
        The card in use (a what-if variant of the library's: energies, margins).
    r_t_ohm
        Transimpedance of the output (ohm): the model's
        (:func:`cosim.engine.mapping.transimpedance`).
    in_bits, bits
        DAC resolution of the inputs and ADC resolution of the conversion.
    levels
        ``(rows, 2)`` device levels of a pair's positive and negative column to draw from.
    pmf
        Probability of each input code ``0 .. 2**in_bits - 1``.
    n, trials, seed
        Inputs per conversion, conversions sampled, the draws' seed.

    Returns
    -------
    dict
        ``normalized_adc_energy`` (ADC energy with the skip over without), ``mac_efficiency``
        (MAC energy without a sense row over with it and the skip), ``adc_share`` (the
        ADC's share of the MAC energy without a sense row), ``skipped_cycle_fraction``,
        ``mean_skip``, ``bound_violations`` (conversions whose code exceeds the skip's cap),
        ``mean_code`` and ``zero_fraction`` of the inputs, and ``energy_j``: the mean
        energy per conversion (J) of each MAC component.
    """
    from cosim.engine.energy import adc_override_energy_j, event_energies
    from cosim.surrogates.periphery import TiaModel
    from cosim.surrogates.sense_row import offset_budget_v, skips
    from cosim.surrogates.sense_row import thresholds as sense_thresholds

    sense = library.surrogates.get("sense_row")
    if sense is None:
        raise ValueError(f"the library {library.path} has no sense_row block")
    rng = np.random.default_rng(seed)
    pmf = np.asarray(pmf, dtype=np.float64)
    codes = rng.choice(pmf.size, size=(trials, n), p=pmf / pmf.sum())
    lv = levels[rng.integers(0, len(levels), size=(trials, n))]  # (trials, n, 2)
    d = card.device
    g_step = (d.g_max_s - d.g_min_s) / (2**d.level_bits - 1)
    g = d.g_min_s + lv * g_step
    v = codes * (card.dac.v_read_v / 2**in_bits)  # V on each row
    # the output: R_t times the pair's differential current, converted at `bits`
    lsb = card.adc.v_ref_v / 2**bits
    v_out = r_t_ohm * np.einsum("tn,tn->t", v, g[..., 0] - g[..., 1])
    code = np.clip(np.floor(v_out / lsb + 0.5), 0, 2**bits - 1).astype(np.int64)
    # the sense line through its TIA (R_s scaled like R_t: the engine's _sense_tia)
    r_s = sense.tia.r_feedback_ohm * r_t_ohm / card.tia.r_feedback_ohm
    g_s = card.sense_row.g_sense_s
    tia_s = TiaModel(r_s, sense.tia.opamp)
    gain, off = tia_s.linear(n * g_s, 0.0)
    v_sense = g_s * v.sum(axis=1) * gain + off
    # thresholds as SenseRow.group_thresholds: the bound less the offset allowance
    k_max = min(card.sense_row.max_skip_bits, bits - 1)
    budget = 0.0
    if card.opamp.input_offset_sigma_v > 0:
        g_n = g.sum(axis=1).mean(axis=0)  # mean Norton conductance of each column (S)
        budget = offset_budget_v(
            card.opamp.input_offset_sigma_v,
            r_t_ohm,
            card.subtractor.gain_v_per_v,
            g_n,
            [(0, 1)],
            r_s,
            n * g_s,
            sense.beta,
            n_sigma=card.sense_row.offset_n_sigma,
        )
    trans = (np.arange(1, 2**bits) - 0.5) * lsb
    th = sense_thresholds(
        sense.beta,
        sense.gamma_v + budget,
        trans,
        bits,
        k_max,
        card.adc.v_ref_v / 2**card.adc.bits,
        card.sense_row.margin_rel,
    )
    skip = skips(v_sense, th) if k_max >= 1 else np.zeros(trials, dtype=np.int64)
    cap = (1 << (bits - skip)) - 1
    violations = int(np.count_nonzero(code > cap))
    if card.adc.e_conv_j > 0:
        e_adc_skip = adc_override_energy_j(card, bits, skip)
        e_adc_full = adc_override_energy_j(card, bits, 0) * np.ones(trials)
    else:
        adc = library.adc_models_by_bits()[bits]
        e_adc_skip = np.asarray(adc.energy_per_conversion_j(skip, np.minimum(code, cap)))
        e_adc_full = np.asarray(adc.energy_per_conversion_j(np.zeros_like(skip), code))
    ev = event_energies(card)
    outs = max(n // 2, 1)  # differential outputs of an n x n tile
    t_read = card.tia.t_read_s
    v2 = v**2
    energy = {
        "crossbar_read": float(np.mean(np.einsum("tn,tn->t", v2, g.sum(axis=2)))) * t_read,
        "dac": ev["dac"] * n / outs,
        "tia": 2 * ev["tia"],
        "subtractor": ev["subtractor"],
        "adc": float(np.mean(e_adc_full)),
        "adc_skip": float(np.mean(e_adc_skip)),
        "sense_row": (ev["sense_row"] + g_s * float(np.mean(v2.sum(axis=1))) * t_read) / outs,
    }
    common = sum(energy[k] for k in ("crossbar_read", "dac", "tia", "subtractor"))
    base = common + energy["adc"]
    with_skip = common + energy["adc_skip"] + energy["sense_row"]
    return {
        "n": n,
        "normalized_adc_energy": energy["adc_skip"] / energy["adc"],
        "mac_efficiency": base / with_skip,
        "adc_share": energy["adc"] / base,
        "skipped_cycle_fraction": float(np.mean(skip)) / bits,
        "mean_skip": float(np.mean(skip)),
        "bound_violations": violations,
        "mean_code": float(np.mean(codes)),
        "zero_fraction": float(np.mean(codes == 0)),
        "thresholds_v": th.tolist(),
        "energy_j": energy,
    }


def _interp_crossing(xs: list[float], ys: list[float], target: float) -> float | None:
    """The ``x`` where ``ys`` (monotone along ``xs``) crosses ``target``, linearly
    interpolated; ``None`` where it never does."""
    for i in range(1, len(xs)):
        y0, y1 = ys[i - 1], ys[i]
        if (y0 - target) * (y1 - target) <= 0 and y0 != y1:
            return float(xs[i - 1] + (target - y0) / (y1 - y0) * (xs[i] - xs[i - 1]))
    return None


def run_accumulation(model, library, card, x: np.ndarray, p: dict[str, Any]) -> dict[str, Any]:
    """The accumulation task: the n sweep on the model's codes and on swept sparsity, the
    sparsity the published n = 128 point needs, and MAC efficiency against the ADC share
    (``adc.e_conv_j`` swept, and the ADC-dominated card). ``x``: the test inputs whose
    hidden codes give the model's distribution; ``p``: the task payload (``trials``,
    ``seed``, ``published``, ``adc_card_updates``)."""
    from cosim.engine.mapping import map_model
    from cosim.model import integer_forward

    maps = map_model(model, card)
    lm = maps[-1] if len(maps) == 1 else maps[1]  # a layer fed by hidden codes
    r_t, bits, in_bits = lm.periphery.r_t_ohm, lm.periphery.adc_bits, lm.periphery.in_bits
    # the hidden layers' output codes (inputs of the next layers), pooled (Fig. 5)
    counts = np.zeros(1 << in_bits, dtype=np.int64)
    hidden = [i for i, lay in enumerate(model.layers) if getattr(lay, "is_hidden", False)]
    for b in range(0, len(x), 500):
        out = integer_forward(model, x[b : b + 500], keep_codes=True).codes
        for i in hidden[:-1] or hidden:
            counts += np.bincount(np.asarray(out[i]).ravel(), minlength=1 << in_bits)[
                : 1 << in_bits
            ]
    pmf = code_pmf(counts)
    levels = pair_levels(model, card)
    trials, seed = int(p["trials"]), int(p["seed"])

    def point(c, q, n):
        return accumulation_point(
            library,
            c,
            r_t_ohm=r_t,
            in_bits=in_bits,
            bits=bits,
            levels=levels,
            pmf=q,
            n=n,
            trials=trials,
            seed=seed,
        )

    ns = list(ACCUMULATION_N)
    model_curve = [point(card, pmf, n) for n in ns]
    sweep = {str(z): [point(card, sparse_pmf(pmf, z), n) for n in ns] for z in ZERO_FRACTIONS}
    i128 = ns.index(128)
    zs = list(ZERO_FRACTIONS)
    at128 = [sweep[str(z)][i128]["normalized_adc_energy"] for z in zs]
    target = float(p["published"]["normalized_adc_energy"])
    z_req = _interp_crossing(zs, at128, target)
    required: dict[str, Any] = {"zero_fraction": z_req, "target": target}
    if z_req is not None:
        q = sparse_pmf(pmf, z_req)
        required["mean_code"] = float(np.arange(q.size) @ q)
        required["curve"] = [point(card, q, n) for n in ns]
    # MAC efficiency against the ADC's share: adc.e_conv_j swept at n = 128, on the model's
    # codes and at the required sparsity; the ADC-dominated card; the card as it is
    share: dict[str, Any] = {"e_conv_j": list(E_CONV_SWEEP_J)}
    # (inputs, n): the model's codes and the required sparsity at n = 128, and the most
    # skipping case (all-zero inputs at n = 32) for the shape of the curve
    sources = {"model": (pmf, 128), "all_zero_n32": (sparse_pmf(pmf, 1.0), 32)}
    if z_req is not None:
        sources["required"] = (sparse_pmf(pmf, z_req), 128)
    pub_eff = float(p["published"]["mac_efficiency"])
    for name, (q, n_at) in sources.items():
        pts = [point(card.with_updates({"adc": {"e_conv_j": e}}), q, n_at) for e in E_CONV_SWEEP_J]
        shares = [pt["adc_share"] for pt in pts]
        effs = [pt["mac_efficiency"] for pt in pts]
        share[name] = {
            "n": n_at,
            "adc_share": shares,
            "mac_efficiency": effs,
            "share_for_published": _interp_crossing(shares, effs, pub_eff),
            "largest_efficiency": max(effs),
            "card": point(card, q, n_at),
            "adc_dominated_card": point(card.with_updates(p["adc_card_updates"]), q, n_at),
        }
    return {
        "layer": f"{lm.index}:{lm.layer.kind}",
        "r_t_ohm": r_t,
        "bits": bits,
        "in_bits": in_bits,
        "trials": trials,
        "pmf": pmf.tolist(),
        "n": ns,
        "model": model_curve,
        "sweep": sweep,
        "required": required,
        "adc_share": share,
    }


def adc_dominated_updates(ctx_card, path: Path = ADC_DOMINATED_CARD) -> dict[str, dict[str, Any]]:
    """The what-if updates that turn ``ctx_card`` into the ADC-dominated example card
    (every field that differs; levels and array size are the study's)."""
    from cosim.card import load_card

    a, b = ctx_card.to_dict(), load_card(path).to_dict()
    out: dict[str, dict[str, Any]] = {}
    for sec, vals in b.items():
        if sec in ("card", "device", "array"):
            continue
        diff = {k: v for k, v in vals.items() if a[sec][k] != v}
        if diff:
            out[sec] = diff
    return out


class Accumulation(Experiment):
    """Normalized ADC energy and MAC efficiency against the accumulation number n and the
    ADC's share of the MAC energy (Bao et al., Fig. 6E/F, on the paper's axes)."""

    name = "accumulation"
    title = "Accumulation number and ADC share"

    def trials(self, ctx: StudyContext) -> int:
        """Conversions sampled per point (quick: fewer)."""
        return 400 if ctx.plan.quick else 2000

    def declare(self, ctx: StudyContext) -> dict[str, Task]:
        out: dict[str, Task] = {}
        if not ctx.has_sense_row:
            return out
        from cosim.report.cache import stable_hash

        updates = adc_dominated_updates(ctx.card)
        for w, a in (DESIGN_POINT, HIGH_PRECISION):
            model = ctx.main_model(w, a)
            prec = precision_name(w, a)
            payload = {
                "model": model.key,
                "dataset": model.payload["dataset"],
                "limit": ctx.plan.cdf_limit,
                "card_updates": ctx.level_updates(w),
                "adc_card_updates": updates,
                "trials": self.trials(ctx),
                "seed": ctx.plan.seed,
                "published": PUBLISHED[prec],
                "n": list(ACCUMULATION_N),
                "zero_fractions": list(ZERO_FRACTIONS),
                "e_conv_j": list(E_CONV_SWEEP_J),
            }
            key = "n-" + stable_hash({"hw": ctx._hw_key("accumulation", payload)})
            out[prec] = ctx._add(
                Task("accumulation", key, payload, (model.key,), f"accumulation {prec}")
            )
        return out

    def settings(self, ctx: StudyContext) -> dict[str, Any]:
        # the section's layout (sections assembled before it carried the tasks' seconds)
        return {"layout": "no timing"}

    def assemble(self, ctx: StudyContext, r: Results) -> dict[str, Any]:
        if not ctx.has_sense_row:
            why = "the library has no sense_row block (the card disables the sense row)"
            return {"accumulation": {"skipped": why}}
        out: dict[str, Any] = {}
        for w, a in (DESIGN_POINT, HIGH_PRECISION):
            prec = precision_name(w, a)
            res = r[prec]
            ns = res["n"]
            req = res["required"]
            at512 = req["curve"][ns.index(512)] if "curve" in req else None
            out[prec] = {
                # the task's own seconds are the study's timing (timing.task_graph), not a result
                **{k: v for k, v in res.items() if k != "task_seconds"},
                "published": PUBLISHED[prec],
                "model_at_128": res["model"][ns.index(128)],
                "required_at_512": at512,
            }
        out["settings"] = {
            "n": list(ACCUMULATION_N),
            "zero_fractions": list(ZERO_FRACTIONS),
            "trials": self.trials(ctx),
            "array": "n x n tile: n inputs per conversion, n/2 differential outputs",
            "adc_dominated_card": str(ADC_DOMINATED_CARD.name),
        }
        return {"accumulation": out}
