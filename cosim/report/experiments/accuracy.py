"""Accuracy experiments: the precision grid (1), the clip bound (2), robustness to the
chip's non-idealities (3)."""

from __future__ import annotations

from typing import Any

import numpy as np

from cosim.report.context import ALL_OFF, StudyContext
from cosim.report.experiments.base import (
    Experiment,
    Results,
    other_seeds,
    precision_name,
    seeded,
)
from cosim.report.plan import DESIGN_POINT, HIGH_PRECISION
from cosim.report.tasks import Task


# ------------------------------------------------------------------------------ 1: grid
class AccuracyGrid(Experiment):
    """Test accuracy of global-quantized models over weight x activation bits, and float."""

    name = "accuracy_grid"
    title = "Accuracy over weight and activation precision"

    def declare(self, ctx: StudyContext) -> dict[str, Task]:
        p = ctx.plan
        out = {precision_name(w, a): ctx.main_model(w, a) for w in p.w_bits for a in p.a_bits}
        out["float"] = ctx.main_model(scheme="float")
        return out

    def assemble(self, ctx: StudyContext, r: Results) -> dict[str, Any]:
        p = ctx.plan
        grid = {
            precision_name(w, a): r[precision_name(w, a)]["test_accuracy"]
            for w in p.w_bits
            for a in p.a_bits
        }
        flt = r["float"]["test_accuracy"]
        best = max(grid, key=grid.__getitem__)
        dp = precision_name(*DESIGN_POINT)
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
                "matrix": [[grid[precision_name(w, a)] for a in p.a_bits] for w in p.w_bits],
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


# -------------------------------------------------------------------------- 1h: headline
#: The headline's chip: the engine's default (every non-ideality on, digital partial sums).
HEADLINE_CONFIG: dict[str, Any] = {}


class Headline(Experiment):
    """Float, W4A3 and W8A8 trained to convergence over the plan's seeds, each W4A3/W8A8
    model also on the chip: the headline's accuracies and gaps with 95 % intervals."""

    name = "headline"
    title = "Headline accuracy, trained to convergence"

    def declare(self, ctx: StudyContext) -> dict[str, Task]:
        p = ctx.plan
        out: dict[str, Task] = {}
        for s in p.seeds:
            out[f"float {s}"] = ctx.main_model(scheme="float", epochs=p.headline_epochs, seed=s)
            for w, a in (DESIGN_POINT, HIGH_PRECISION):
                name = precision_name(w, a)
                m = ctx.main_model(w, a, epochs=p.headline_epochs, seed=s)
                out[f"{name} {s}"] = m
                out[f"{name} {s} chip"] = ctx.evaluation(
                    m,
                    {**HEADLINE_CONFIG, "chips": p.robust_chips},
                    limit=p.headline_limit,
                    card_updates=ctx.level_updates(w),
                    label=f"headline {name} seed {s} on {p.robust_chips} chips",
                )
        return out

    def assemble(self, ctx: StudyContext, r: Results) -> dict[str, Any]:
        from cosim.report.stats import interval, paired

        p = ctx.plan
        seeds = list(p.seeds)
        flt = [r[f"float {s}"]["test_accuracy"] for s in seeds]
        out: dict[str, Any] = {
            "dataset": p.dataset,
            "arch": p.arch,
            "epochs": p.headline_epochs,
            "seeds": seeds,
            "chips": p.robust_chips,
            "chip_samples": r[f"{precision_name(*DESIGN_POINT)} {seeds[0]} chip"]["n_samples"],
            "engine": "the engine's default chip: every non-ideality on, digital partial sums",
            "float": interval(flt),
            # convergence: the float model's test accuracy after every epoch, per seed
            "float_epoch_accuracy": [
                [h["test_accuracy"] for h in r[f"float {s}"]["history"]] for s in seeds
            ],
        }
        for w, a in (DESIGN_POINT, HIGH_PRECISION):
            name = precision_name(w, a)
            acc = [r[f"{name} {s}"]["test_accuracy"] for s in seeds]
            chip = [r[f"{name} {s} chip"] for s in seeds]
            chip_mean = [c["accuracy_mean"] for c in chip]
            out[name] = {
                "software": interval(acc),
                "chip": interval(chip_mean),
                "chip_per_seed_and_chip": [c["accuracy_per_chip"] for c in chip],
                "minus_float": paired(acc, flt),
                "chip_minus_software": paired(chip_mean, acc),
                "w_max": [r[f"{name} {s}"]["w_max"][0] for s in seeds],
            }
        return {"headline": out}


# -------------------------------------------------------------------------- 2: clip bound
class ClipBound(Experiment):
    """W4A3 accuracy versus the activation clip upper bound ``hi``, trained with Bao et al.'s
    fixed-range recipe (:data:`cosim.train.config.RECIPES` ``["bao"]``: inputs in [0, 1],
    hidden activations clipped at ``hi``, weights at +-0.25, SGD), over the plan's seeds.

    In the default global scheme the input DAC shares the activation range and the integer
    network does not depend on ``hi``; the fixed-range scheme makes ``hi`` a real clipping
    level, as in the paper's Fig. 2A.
    """

    name = "clip_bound"
    title = "Accuracy versus the activation clip bound"

    @staticmethod
    def _key(hi: float, seed: int, ctx: StudyContext) -> str:
        return seeded(f"{hi:g}", seed, ctx)

    def declare(self, ctx: StudyContext) -> dict[str, Task]:
        from cosim.train.config import RECIPES

        p = ctx.plan
        w, a = DESIGN_POINT
        return {
            self._key(hi, s, ctx): ctx.model(
                p.dataset,
                p.arch,
                epochs=p.epochs,
                train_limit=p.train_limit,
                w_bits=w,
                a_bits=a,
                hi=hi,
                seed=s,
                **RECIPES["bao"],
            )
            for hi in p.clip_his
            for s in p.seeds
        }

    def assemble(self, ctx: StudyContext, r: Results) -> dict[str, Any]:
        from cosim.report.stats import interval, paired
        from cosim.train.config import RECIPES

        p = ctx.plan
        his, seeds = list(p.clip_his), list(p.seeds)
        per_seed = [[r[self._key(hi, s, ctx)]["test_accuracy"] for s in seeds] for hi in his]
        ivs = [interval(v) for v in per_seed]
        acc = [iv["mean"] for iv in ivs]
        i = int(np.argmax(acc))
        # the best hi against every other, paired by seed: is the best one established?
        vs_best = [paired(per_seed[i], per_seed[j]) for j in range(len(his))]
        return {
            "clip_bound": {
                "precision": precision_name(*DESIGN_POINT),
                "recipe": "bao",
                "recipe_fields": dict(RECIPES["bao"]),
                "hi": his,
                "seeds": seeds,
                "accuracy": acc,
                "accuracy_per_seed": per_seed,
                "accuracy_interval": ivs,
                "best_hi": his[i],
                "best_accuracy": acc[i],
                "best_minus": vs_best,
                "spread": float(max(acc) - min(acc)),
                "w_max": [r[self._key(hi, p.seed, ctx)]["w_max"][0] for hi in his],
                "epochs": p.epochs,
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

        def sweep(param: str, w: int, a: int, seed: int | None = None) -> Task:
            return ctx.sweep(
                ctx.main_model(w, a, seed=seed),
                param,
                p.nvw_values if param == "nvw" else p.nva_values,
                cfg,
                limit=p.robust_limit,
                drop=p.robust_drop,
                card_updates=ctx.level_updates(w),
                label=precision_name(w, a) + ("" if seed is None else f" seed {seed}"),
            )

        for w in p.w_bits:  # Fig. 3A: nvw against weight precision at one A
            out[f"nvw {precision_name(w, p.nvw_a_bits)}"] = sweep("nvw", w, p.nvw_a_bits)
        for a2 in p.a_bits:  # Fig. 3B: nvw against activation precision at one W
            name = precision_name(p.nvw_w_bits, a2)
            out[f"nvw-by-a {name}"] = sweep("nvw", p.nvw_w_bits, a2)
        for w in p.nva_w_bits:
            if w not in p.w_bits:
                continue
            for a2 in p.a_bits:
                out[f"nva {precision_name(w, a2)}"] = sweep("nva", w, a2)
        # the trends at the design point's precisions, repeated over the other seeds
        for seed in other_seeds(ctx):
            for w in p.w_bits:
                name = precision_name(w, p.nvw_a_bits)
                out[seeded(f"nvw {name}", seed, ctx)] = sweep("nvw", w, p.nvw_a_bits, seed)
            for a2 in p.a_bits:
                name = precision_name(p.nvw_w_bits, a2)
                out[seeded(f"nvw-by-a {name}", seed, ctx)] = sweep("nvw", p.nvw_w_bits, a2, seed)
                if self._nva_seeded_w(ctx) is not None:
                    out[seeded(f"nva {name}", seed, ctx)] = sweep("nva", p.nvw_w_bits, a2, seed)
        return out

    @staticmethod
    def _nva_seeded_w(ctx: StudyContext) -> int | None:
        """The weight precision whose nva trend is repeated over seeds (the nvw-by-a
        sweep's, when the nva sweep runs at it)."""
        p = ctx.plan
        return p.nvw_w_bits if p.nvw_w_bits in p.nva_w_bits else None

    def _seeded(
        self, ctx: StudyContext, r: Results, prefix: str, names: list[str], x: list[int]
    ) -> dict[str, Any]:
        """Per-seed largest values of one series, each precision's interval over seeds,
        and the interval of the per-seed trend (upper half against lower half)."""
        from cosim.report.stats import interval
        from cosim.report.verdicts import half_change

        seeds = [ctx.plan.seed, *other_seeds(ctx)]
        per_seed = [[r[seeded(f"{prefix} {n}", s, ctx)]["largest"] for n in names] for s in seeds]
        trend = [half_change(x, vals) for vals in per_seed]
        return {
            "seeds": seeds,
            "largest_per_seed": per_seed,
            "largest_interval": [interval([v[i] for v in per_seed]) for i in range(len(names))],
            "trend_per_seed": trend,
            "trend_interval": interval([float("nan") if t is None else t for t in trend]),
        }

    def assemble(self, ctx: StudyContext, r: Results) -> dict[str, Any]:
        p = ctx.plan
        a = p.nvw_a_bits

        def curve(res: dict[str, Any]) -> dict[str, Any]:
            keep = ("values", "accuracy_mean", "accuracy_std", "reference_accuracy", "threshold")
            return {k: res[k] for k in keep}

        nvw_keys = [f"nvw {precision_name(w, a)}" for w in p.w_bits]
        by_a = [f"nvw-by-a {precision_name(p.nvw_w_bits, a2)}" for a2 in p.a_bits]
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
                    "seeded": self._seeded(
                        ctx, r, "nvw", [precision_name(w, a) for w in p.w_bits], list(p.w_bits)
                    ),
                },
                "nvw_by_a": {
                    "w_bits": p.nvw_w_bits,
                    "a_bits": list(p.a_bits),
                    "largest": [r[k]["largest"] for k in by_a],
                    "censored": [r[k]["censored"] for k in by_a],
                    "curves": {k.split()[1]: curve(r[k]) for k in by_a},
                    "seeded": self._seeded(
                        ctx,
                        r,
                        "nvw-by-a",
                        [precision_name(p.nvw_w_bits, a2) for a2 in p.a_bits],
                        list(p.a_bits),
                    ),
                },
                "nva": {
                    "w_bits": nva_w,
                    "a_bits": list(p.a_bits),
                    "largest": {
                        f"W{w}": [r[f"nva {precision_name(w, a2)}"]["largest"] for a2 in p.a_bits]
                        for w in nva_w
                    },
                    "censored": {
                        f"W{w}": [r[f"nva {precision_name(w, a2)}"]["censored"] for a2 in p.a_bits]
                        for w in nva_w
                    },
                    "curves": {
                        precision_name(w, a2): curve(r[f"nva {precision_name(w, a2)}"])
                        for w in nva_w
                        for a2 in p.a_bits
                    },
                    "seeded_w_bits": self._nva_seeded_w(ctx),
                    "seeded": (
                        None
                        if self._nva_seeded_w(ctx) is None
                        else self._seeded(
                            ctx,
                            r,
                            "nva",
                            [precision_name(p.nvw_w_bits, a2) for a2 in p.a_bits],
                            list(p.a_bits),
                        )
                    ),
                },
            }
        }
