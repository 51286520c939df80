"""The seven experiments: which tasks each needs and how their results become numbers.

Each experiment declares named tasks (:meth:`Experiment.declare`) and assembles the
results into the sections of ``report.json`` (:meth:`Experiment.assemble`). The
experiment's cache key hashes its name, its tasks' keys and the assembly settings, so an
unchanged experiment is read back whole on a rerun. docs/report.md explains each method and
how it differs from the papers.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from cosim.report.context import ALL_OFF, StudyContext
from cosim.report.plan import DESIGN_POINT, HIGH_PRECISION
from cosim.report.tasks import Task

Results = dict[str, dict[str, Any]]


def _name(w: int, a: int) -> str:
    return f"W{w}A{a}"


class Experiment:
    """Base class: ``name`` (cache and figure name), ``title`` and the two steps."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""

    def declare(self, ctx: StudyContext) -> dict[str, Task]:
        """Named tasks this experiment needs."""
        raise NotImplementedError

    def settings(self, ctx: StudyContext) -> dict[str, Any]:
        """Settings used only while assembling (part of the experiment's cache key)."""
        return {}

    def assemble(self, ctx: StudyContext, r: Results) -> dict[str, Any]:
        """Sections of report.json from the named task results ``r``."""
        raise NotImplementedError


# ------------------------------------------------------------------------------ 1: grid
class AccuracyGrid(Experiment):
    """Test accuracy of global-quantized models over weight x activation bits, and float."""

    name = "accuracy_grid"
    title = "Accuracy over weight and activation precision"

    def declare(self, ctx: StudyContext) -> dict[str, Task]:
        p = ctx.plan
        out = {_name(w, a): ctx.main_model(w, a) for w in p.w_bits for a in p.a_bits}
        out["float"] = ctx.main_model(scheme="float")
        return out

    def assemble(self, ctx: StudyContext, r: Results) -> dict[str, Any]:
        p = ctx.plan
        grid = {_name(w, a): r[_name(w, a)]["test_accuracy"] for w in p.w_bits for a in p.a_bits}
        flt = r["float"]["test_accuracy"]
        best = max(grid, key=grid.__getitem__)
        dp = _name(*DESIGN_POINT)
        return {
            "accuracy_grid": grid,
            "accuracy_grid_details": {
                "dataset": p.dataset,
                "arch": p.arch,
                "epochs": p.epochs,
                "train_samples": r["float"]["n_train"],
                "test_samples": r["float"]["n_test"],
                "w_bits": list(p.w_bits),
                "a_bits": list(p.a_bits),
                "matrix": [[grid[_name(w, a)] for a in p.a_bits] for w in p.w_bits],
                "float_accuracy": flt,
                "design_point": dp,
                "design_point_accuracy": grid[dp],
                "design_point_minus_float": grid[dp] - flt,
                "best": {"name": best, "accuracy": grid[best]},
                "w_max": {k: r[k]["w_max"][0] for k in grid},
                "device_level_bits": ctx.card.device.level_bits,
                "train_seconds": sum(r[k].get("task_seconds", 0.0) for k in r),
            },
        }


# -------------------------------------------------------------------------- 2: clip bound
class ClipBound(Experiment):
    """W4A3 accuracy versus the activation clip upper bound ``hi`` of training."""

    name = "clip_bound"
    title = "Accuracy versus the activation clip bound"

    def declare(self, ctx: StudyContext) -> dict[str, Task]:
        w, a = DESIGN_POINT
        return {f"{hi:g}": ctx.main_model(w, a, hi=hi) for hi in ctx.plan.clip_his}

    def assemble(self, ctx: StudyContext, r: Results) -> dict[str, Any]:
        his = list(ctx.plan.clip_his)
        acc = [r[f"{hi:g}"]["test_accuracy"] for hi in his]
        i = int(np.argmax(acc))
        return {
            "clip_bound": {
                "precision": _name(*DESIGN_POINT),
                "hi": his,
                "accuracy": acc,
                "best_hi": his[i],
                "best_accuracy": acc[i],
                "spread": float(max(acc) - min(acc)),
                "w_max": [r[f"{hi:g}"]["w_max"][0] for hi in his],
                "epochs": ctx.plan.epochs,
            }
        }


# -------------------------------------------------------------------------- 3: robustness
class Robustness(Experiment):
    """Largest ``nvw`` per weight precision and ``nva`` per activation precision."""

    name = "robustness"
    title = "Robustness to weight and converter variation"

    def _config(self, ctx: StudyContext) -> dict[str, Any]:
        return {**ALL_OFF, "partial_sums": "analog", "chips": ctx.plan.robust_chips}

    def declare(self, ctx: StudyContext) -> dict[str, Task]:
        p = ctx.plan
        cfg = self._config(ctx)
        out: dict[str, Task] = {}
        a = p.nvw_a_bits
        for w in p.w_bits:
            out[f"nvw {_name(w, a)}"] = ctx.sweep(
                ctx.main_model(w, a),
                "nvw",
                p.nvw_values,
                cfg,
                limit=p.robust_limit,
                drop=p.robust_drop,
                card_updates=ctx.level_updates(w),
                label=_name(w, a),
            )
        for w in p.nva_w_bits:
            if w not in p.w_bits:
                continue
            for a2 in p.a_bits:
                out[f"nva {_name(w, a2)}"] = ctx.sweep(
                    ctx.main_model(w, a2),
                    "nva",
                    p.nva_values,
                    cfg,
                    limit=p.robust_limit,
                    drop=p.robust_drop,
                    card_updates=ctx.level_updates(w),
                    label=_name(w, a2),
                )
        return out

    def assemble(self, ctx: StudyContext, r: Results) -> dict[str, Any]:
        p = ctx.plan
        a = p.nvw_a_bits

        def curve(res: dict[str, Any]) -> dict[str, Any]:
            keep = ("values", "accuracy_mean", "accuracy_std", "reference_accuracy", "threshold")
            return {k: res[k] for k in keep}

        nvw_keys = [f"nvw {_name(w, a)}" for w in p.w_bits]
        nva_w = [w for w in p.nva_w_bits if w in p.w_bits]
        return {
            "robustness": {
                "criterion": f"largest variation whose mean accuracy over {p.robust_chips} "
                f"chips stays within {p.robust_drop * 100:g} points of the noiseless accuracy",
                "drop": p.robust_drop,
                "chips": p.robust_chips,
                "samples": r[nvw_keys[0]]["samples"],
                "engine": "every non-ideality off except the swept one; analog partial sums "
                "(one conversion per output at the activation precision)",
                "what_if_level_bits_8_for_w_bits": [
                    w for w in p.w_bits if w > ctx.card.device.level_bits
                ],
                "nvw": {
                    "a_bits": a,
                    "w_bits": list(p.w_bits),
                    "largest": [r[k]["largest"] for k in nvw_keys],
                    "censored": [r[k]["censored"] for k in nvw_keys],
                    "curves": {k.split()[1]: curve(r[k]) for k in nvw_keys},
                },
                "nva": {
                    "w_bits": nva_w,
                    "a_bits": list(p.a_bits),
                    "largest": {
                        f"W{w}": [r[f"nva {_name(w, a2)}"]["largest"] for a2 in p.a_bits]
                        for w in nva_w
                    },
                    "censored": {
                        f"W{w}": [r[f"nva {_name(w, a2)}"]["censored"] for a2 in p.a_bits]
                        for w in nva_w
                    },
                    "curves": {
                        _name(w, a2): curve(r[f"nva {_name(w, a2)}"])
                        for w in nva_w
                        for a2 in p.a_bits
                    },
                },
            }
        }


# ------------------------------------------------------------------- 4: activation CDFs
class ActivationCdf(Experiment):
    """Per-layer distributions of the ADC output codes for W4A3 and W8A8."""

    name = "activation_cdf"
    title = "Distributions of the activation codes"

    def declare(self, ctx: StudyContext) -> dict[str, Task]:
        return {
            _name(w, a): ctx.activations(
                ctx.main_model(w, a), limit=ctx.plan.cdf_limit, label=_name(w, a)
            )
            for w, a in (DESIGN_POINT, HIGH_PRECISION)
        }

    def assemble(self, ctx: StudyContext, r: Results) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for prec, (_, a) in (
            (_name(*DESIGN_POINT), DESIGN_POINT),
            (_name(*HIGH_PRECISION), HIGH_PRECISION),
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
            _name(*DESIGN_POINT): {
                "fewer_bits": k_dp,
                "fraction": out[_name(*DESIGN_POINT)]["total"]["fraction_fewer_bits"][str(k_dp)],
            },
            _name(*HIGH_PRECISION): {
                "fewer_bits": k_hp,
                "fraction": out[_name(*HIGH_PRECISION)]["total"]["fraction_fewer_bits"][str(k_hp)],
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
        # every non-ideality on except IR drop: the crossbar surrogate's nodal solve takes
        # minutes per 512 x 512 tile, and it is validated at the library's size only
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
                    out[f"{_name(w, a)} {rows} {tag}"] = ctx.evaluation(
                        model,
                        self._config(ctx, ps, skip),
                        limit=p.energy_limit,
                        card_updates=upd,
                        label=f"{_name(w, a)} {rows}x{rows} {tag}",
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
            prec = _name(w, a)
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
            "samples": r[f"{_name(*DESIGN_POINT)} {rows[0]} skip"]["n_samples"],
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


# -------------------------------------------------------- 6: shared periphery, unipolar
#: Energy and area: the engine's default chip (every non-ideality on, digital partial sums).
ENERGY_CONFIG: dict[str, Any] = {"chips": 1}
#: Accuracy on the chip: the very same evaluation (one task). Until engine version 2 the
#: digital partial sums broke unipolar columns and this used analog partial sums.
ACCURACY_CONFIG: dict[str, Any] = ENERGY_CONFIG


class PeripherySavings(Experiment):
    """Shared periphery + unipolar weights versus per-layer periphery + differential pairs."""

    name = "periphery_savings"
    title = "Shared periphery and unipolar weights versus the traditional design"

    def _families(self, ctx: StudyContext) -> list[tuple[str, dict[str, Any], float]]:
        p = ctx.plan
        mlp = {
            "dataset": p.mlp_dataset,
            "arch": "mlp",
            "epochs": p.mlp_epochs if p.has_cnn else p.unipolar_epochs,
            "batch_size": p.mlp_batch_size,
            "lr": p.mlp_lr,
        }
        fams = [("mlp", mlp, p.proposed_unipolar_mlp)]
        if p.has_cnn:
            cnn = {
                "dataset": p.dataset,
                "arch": p.arch,
                "epochs": p.unipolar_epochs,
                "batch_size": p.batch_size,
                "lr": p.lr,
                "train_limit": p.train_limit,
            }
            fams.append((p.arch, cnn, p.proposed_unipolar_cnn))
        return fams

    def declare(self, ctx: StudyContext) -> dict[str, Task]:
        out: dict[str, Task] = {}
        w, a = DESIGN_POINT
        for fam, spec, frac in self._families(ctx):
            ds, arch = spec["dataset"], spec["arch"]
            kw = {k: v for k, v in spec.items() if k not in ("dataset", "arch")}
            designs = {
                "traditional": ctx.model(ds, arch, scheme="per-layer", w_bits=w, a_bits=a, **kw),
                "shared": ctx.model(ds, arch, w_bits=w, a_bits=a, **kw),
                "proposed": ctx.model(ds, arch, w_bits=w, a_bits=a, unipolar=frac, **kw),
            }
            for d, m in designs.items():
                out[f"{fam} {d} model"] = m
                out[f"{fam} {d}"] = ctx.evaluation(
                    m, ENERGY_CONFIG, limit=ctx.plan.energy_limit, label=f"{fam} {d} design"
                )
                out[f"{fam} {d} accuracy"] = ctx.evaluation(
                    m, ACCURACY_CONFIG, limit=ctx.plan.energy_limit, label=f"{fam} {d} accuracy"
                )
        return out

    def assemble(self, ctx: StudyContext, r: Results) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for fam, spec, frac in self._families(ctx):
            res = {d: r[f"{fam} {d}"] for d in ("traditional", "shared", "proposed")}
            mod = {d: r[f"{fam} {d} model"] for d in res}
            area = {
                "traditional": res["traditional"]["area_m2"]["total_dedicated_m2"],
                "shared": res["shared"]["area_m2"]["total_shared_m2"],
                "unipolar_only": res["proposed"]["area_m2"]["total_dedicated_m2"],
                "proposed": res["proposed"]["area_m2"]["total_shared_m2"],
            }
            energy = {
                "traditional": res["traditional"]["energy_total_per_inference_j"],
                "shared": res["shared"]["energy_total_per_inference_j"],
                "unipolar_only": res["proposed"]["energy_total_per_inference_j"],
                "proposed": res["proposed"]["energy_total_per_inference_j"],
            }
            out[fam] = {
                "dataset": spec["dataset"],
                "precision": _name(*DESIGN_POINT),
                "epochs": spec["epochs"],
                "unipolar_fraction": frac,
                "unipolar_filters": mod["proposed"]["unipolar_filters"],
                "hidden_filters": mod["proposed"]["hidden_filters"],
                "area_m2": area,
                "energy_per_inference_j": energy,
                "area_fraction_saved": 1.0 - area["proposed"] / area["traditional"],
                "energy_fraction_saved": 1.0 - energy["proposed"] / energy["traditional"],
                "area_fraction_saved_shared_only": 1.0 - area["shared"] / area["traditional"],
                "energy_fraction_saved_shared_only": 1.0 - energy["shared"] / energy["traditional"],
                "accuracy": {d: mod[d]["test_accuracy"] for d in mod},
                "engine_accuracy": {d: r[f"{fam} {d} accuracy"]["accuracy_mean"] for d in res},
                "area_breakdown_m2": {
                    "traditional": res["traditional"]["area_m2"]["breakdown_m2"],
                    "proposed": res["proposed"]["area_m2"]["breakdown_m2"],
                },
                "energy_breakdown_j": {
                    d: res[d]["energy_per_inference_j"] for d in ("traditional", "proposed")
                },
            }
        return {"periphery_savings": out}


# ---------------------------------------------------------------- 7: unipolar trade-off
class UnipolarTradeoff(Experiment):
    """Accuracy, area and energy versus the fraction of unipolar filters (W4A3, shared)."""

    name = "unipolar_tradeoff"
    title = "Accuracy versus the fraction of unipolar filters"

    def declare(self, ctx: StudyContext) -> dict[str, Task]:
        p = ctx.plan
        out: dict[str, Task] = {}
        w, a = DESIGN_POINT
        for f in p.unipolar_fractions:
            m = ctx.main_model(w, a, unipolar=f, epochs=p.unipolar_epochs)
            out[f"{f:g} model"] = m
            out[f"{f:g}"] = ctx.evaluation(
                m, ENERGY_CONFIG, limit=p.energy_limit, label=f"unipolar {f:g}"
            )
            out[f"{f:g} accuracy"] = ctx.evaluation(
                m, ACCURACY_CONFIG, limit=p.energy_limit, label=f"unipolar {f:g} accuracy"
            )
        return out

    def assemble(self, ctx: StudyContext, r: Results) -> dict[str, Any]:
        fr = list(ctx.plan.unipolar_fractions)
        area = [r[f"{f:g}"]["area_m2"]["total_shared_m2"] for f in fr]
        energy = [r[f"{f:g}"]["energy_total_per_inference_j"] for f in fr]
        return {
            "unipolar_tradeoff": {
                "dataset": ctx.plan.dataset,
                "arch": ctx.plan.arch,
                "precision": _name(*DESIGN_POINT),
                "epochs": ctx.plan.unipolar_epochs,
                "fractions": fr,
                "accuracy": [r[f"{f:g} model"]["test_accuracy"] for f in fr],
                "engine_accuracy": [r[f"{f:g} accuracy"]["accuracy_mean"] for f in fr],
                "unipolar_filters": [r[f"{f:g} model"]["unipolar_filters"] for f in fr],
                "hidden_filters": r[f"{fr[0]:g} model"]["hidden_filters"],
                "area_m2": area,
                "energy_per_inference_j": energy,
                "area_relative": [x / area[0] for x in area],
                "energy_relative": [x / energy[0] for x in energy],
            }
        }


EXPERIMENTS: tuple[Experiment, ...] = (
    AccuracyGrid(),
    ClipBound(),
    Robustness(),
    ActivationCdf(),
    SparsityAdc(),
    PeripherySavings(),
    UnipolarTradeoff(),
)
