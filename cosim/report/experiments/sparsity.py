"""Sparsity experiments: the activation CDFs (4) and the sparsity-aware ADC's savings (5)."""

from __future__ import annotations

from typing import Any

import numpy as np

from cosim.report.context import StudyContext
from cosim.report.experiments.base import Experiment, Results, precision_name
from cosim.report.plan import DESIGN_POINT, HIGH_PRECISION
from cosim.report.tasks import Task


# ------------------------------------------------------------------- 4: activation CDFs
class ActivationCdf(Experiment):
    """Per-layer distributions of the ADC output codes for W4A3 and W8A8."""

    name = "activation_cdf"
    title = "Distributions of the activation codes"

    def declare(self, ctx: StudyContext) -> dict[str, Task]:
        return {
            precision_name(w, a): ctx.activations(
                ctx.main_model(w, a), limit=ctx.plan.cdf_limit, label=precision_name(w, a)
            )
            for w, a in (DESIGN_POINT, HIGH_PRECISION)
        }

    def assemble(self, ctx: StudyContext, r: Results) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for prec, (_, a) in (
            (precision_name(*DESIGN_POINT), DESIGN_POINT),
            (precision_name(*HIGH_PRECISION), HIGH_PRECISION),
        ):
            layers = []
            total = np.zeros(1 << a, dtype=np.int64)
            for lay in r[prec]["layers"]:
                c = np.asarray(lay["counts"], dtype=np.int64)
                total += c
                layers.append({**_cdf(c, a), "name": lay["name"], "fan_in": lay["fan_in"]})
            out[prec] = {"layers": layers, "total": _cdf(total, a), "samples": r[prec]["samples"]}
        k_dp, k_hp = 2, 4  # the paper's headline bit reductions
        out["headline"] = {
            precision_name(*DESIGN_POINT): {
                "fewer_bits": k_dp,
                "fraction": out[precision_name(*DESIGN_POINT)]["total"]["fraction_fewer_bits"][
                    str(k_dp)
                ],
            },
            precision_name(*HIGH_PRECISION): {
                "fewer_bits": k_hp,
                "fraction": out[precision_name(*HIGH_PRECISION)]["total"]["fraction_fewer_bits"][
                    str(k_hp)
                ],
            },
        }
        return {"activation_cdf": out}


def _cdf(counts: np.ndarray, bits: int) -> dict[str, Any]:
    """CDF over codes, the zero fraction and, per k, the fraction of codes that fit in
    ``bits - k`` bits (``code < 2**(bits - k)``)."""
    n = max(int(counts.sum()), 1)
    cdf = np.cumsum(counts) / n
    return {
        "bits": bits,
        "count": int(counts.sum()),
        "cdf": cdf.tolist(),
        "zero_fraction": float(counts[0] / n),
        "fraction_fewer_bits": {str(k): float(cdf[(1 << (bits - k)) - 1]) for k in range(1, bits)},
    }


# ------------------------------------------------------------- 5: sparsity-aware ADC
MAC_COMPONENTS = ("crossbar_read", "dac", "tia", "subtractor", "adc")


class SparsityAdc(Experiment):
    """ADC energy with the sense-row skip versus array rows; MAC-unit efficiency."""

    name = "sparsity_adc"
    title = "Sparsity-aware ADC"

    def _config(self, ctx: StudyContext, partial_sums: str, skip: bool) -> dict[str, Any]:
        # every non-ideality on except IR drop: the crossbar surrogate is validated at the
        # library's array size only (its exact transfer itself takes ~0.5 s per 512 x 513
        # tile on one core: benchmarks/results/tiles.json)
        return {
            "ir_drop": False,
            "partial_sums": partial_sums,
            "sense_skip": skip,
            "chips": 1,
        }

    def declare(self, ctx: StudyContext) -> dict[str, Task]:
        p = ctx.plan
        out: dict[str, Task] = {}
        if not ctx.has_sense_row:
            return out
        for w, a in (DESIGN_POINT, HIGH_PRECISION):
            model = ctx.main_model(w, a)
            lv = ctx.level_updates(w)
            for rows in p.rows:
                arr = {"array": {"rows": rows, "cols": rows}, **lv}
                off = {**arr, "sense_row": {"enabled": False}}
                variants = [
                    ("skip", "analog", True, arr),
                    ("noskip", "analog", False, arr),
                    ("nosense", "analog", False, off),
                ]
                if rows == 128:
                    variants += [
                        ("digital-skip", "digital", True, arr),
                        ("digital-noskip", "digital", False, arr),
                    ]
                for tag, ps, skip, upd in variants:
                    out[f"{precision_name(w, a)} {rows} {tag}"] = ctx.evaluation(
                        model,
                        self._config(ctx, ps, skip),
                        limit=p.energy_limit,
                        card_updates=upd,
                        label=f"{precision_name(w, a)} {rows}x{rows} {tag}",
                    )
        return out

    def assemble(self, ctx: StudyContext, r: Results) -> dict[str, Any]:
        if not ctx.has_sense_row:
            why = "the library has no sense_row block (the card disables the sense row)"
            return {"adc_energy_vs_rows": {"skipped": why}, "mac_efficiency": {"skipped": why}}
        rows = list(ctx.plan.rows)
        adc: dict[str, Any] = {}
        mac: dict[str, Any] = {}
        for w, a in (DESIGN_POINT, HIGH_PRECISION):
            prec = precision_name(w, a)
            on = [r[f"{prec} {n} skip"] for n in rows]
            ns = [r[f"{prec} {n} noskip"] for n in rows]
            base = [r[f"{prec} {n} nosense"] for n in rows]
            mac_on = [sum(_energy(x, c) for c in (*MAC_COMPONENTS, "sense_row")) for x in on]
            mac_base = [sum(_energy(x, c) for c in MAC_COMPONENTS) for x in base]
            i128 = rows.index(128) if 128 in rows else None
            per_layer = None
            if i128 is not None:
                per_layer = {
                    "fan_in": on[i128]["fan_in"],
                    "normalized_adc_energy": [
                        _ratio(
                            lo["energy_per_inference_j"]["adc"], ln["energy_per_inference_j"]["adc"]
                        )
                        for lo, ln in zip(on[i128]["layers"], ns[i128]["layers"], strict=True)
                    ],
                    "skipped_cycle_fraction": [
                        lay["skipped_cycle_fraction"] for lay in on[i128]["layers"]
                    ],
                }
            digital = None
            if f"{prec} 128 digital-skip" in r:
                d_on, d_ns = r[f"{prec} 128 digital-skip"], r[f"{prec} 128 digital-noskip"]
                digital = {
                    "normalized_adc_energy": _ratio(_energy(d_on, "adc"), _energy(d_ns, "adc")),
                    "skipped_cycle_fraction": _skipped(d_on),
                    "adc_energy_j": _energy(d_ns, "adc"),
                }
            adc[prec] = {
                "rows": rows,
                "normalized_adc_energy": [
                    _ratio(_energy(x, "adc"), _energy(y, "adc"))
                    for x, y in zip(on, ns, strict=True)
                ],
                "normalized_adc_energy_vs_no_sense_row": [
                    _ratio(_energy(x, "adc"), _energy(y, "adc"))
                    for x, y in zip(on, base, strict=True)
                ],
                "skipped_cycle_fraction": [_skipped(x) for x in on],
                "bound_violations": [
                    sum(lay["bound_violations"] for lay in x["layers"]) for x in on
                ],
                "adc_energy_j": [_energy(x, "adc") for x in on],
                "adc_energy_no_skip_j": [_energy(x, "adc") for x in ns],
                "accuracy_skip": [x["accuracy_mean"] for x in on],
                "accuracy_no_skip": [x["accuracy_mean"] for x in ns],
                "per_layer_at_128": per_layer,
                "digital_partial_sums_at_128": digital,
                "level_bits": ctx.card.device.level_bits if not ctx.level_updates(w) else 8,
            }
            mac[prec] = {
                "rows": rows,
                "improvement": [_ratio(b, o) for b, o in zip(mac_base, mac_on, strict=True)],
                "mac_energy_j": mac_on,
                "mac_energy_baseline_j": mac_base,
                "adc_share_of_baseline": [
                    _ratio(_energy(x, "adc"), m) for x, m in zip(base, mac_base, strict=True)
                ],
                "sense_row_energy_j": [_energy(x, "sense_row") for x in on],
                "breakdown_baseline_j": [{c: _energy(x, c) for c in MAC_COMPONENTS} for x in base],
            }
        common = {
            "engine": "all non-idealities on except IR drop; analog partial sums (one "
            "conversion per output, as the paper's MAC unit); 1 chip",
            "samples": r[f"{precision_name(*DESIGN_POINT)} {rows[0]} skip"]["n_samples"],
        }
        adc["settings"] = common
        mac["settings"] = {
            **common,
            "mac_energy": "crossbar read + DAC + TIA + subtractor + ADC, plus the sense row "
            "when skipping; baseline: the same card with sense_row.enabled = false",
        }
        return {"adc_energy_vs_rows": adc, "mac_efficiency": mac}


def _energy(res: dict[str, Any], component: str) -> float:
    """Energy per inference (J) of one component in an evaluation result."""
    return float(res["energy_per_inference_j"][component])


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def _skipped(res: dict[str, Any]) -> float:
    """Skipped fraction of all SAR cycles of the final conversions (conversion-weighted)."""
    layers = res["layers"]
    conv = np.array([lay["conversions_per_inference"] for lay in layers])
    frac = np.array([lay["skipped_cycle_fraction"] for lay in layers])
    return float(np.sum(conv * frac) / max(np.sum(conv), 1e-30))
