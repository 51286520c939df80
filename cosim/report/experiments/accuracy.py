"""Accuracy experiments: the precision grid (1), the clip bound (2), robustness to the
chip's non-idealities (3)."""

from __future__ import annotations

from typing import Any

import numpy as np

from cosim.report.context import ALL_OFF, StudyContext
from cosim.report.experiments.base import Experiment, Results, precision_name
from cosim.report.plan import DESIGN_POINT
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
                "precision": precision_name(*DESIGN_POINT),
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

        def sweep(param: str, w: int, a: int) -> Task:
            return ctx.sweep(
                ctx.main_model(w, a),
                param,
                p.nvw_values if param == "nvw" else p.nva_values,
                cfg,
                limit=p.robust_limit,
                drop=p.robust_drop,
                card_updates=ctx.level_updates(w),
                label=precision_name(w, a),
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
        return out

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
                },
                "nvw_by_a": {
                    "w_bits": p.nvw_w_bits,
                    "a_bits": list(p.a_bits),
                    "largest": [r[k]["largest"] for k in by_a],
                    "censored": [r[k]["censored"] for k in by_a],
                    "curves": {k.split()[1]: curve(r[k]) for k in by_a},
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
                },
            }
        }
