"""Shared-periphery experiments: energy and area of unipolar filters (6), and the
accuracy they trade for it (7)."""

from __future__ import annotations

from typing import Any

from cosim.report.context import StudyContext
from cosim.report.experiments.base import Experiment, Results, precision_name
from cosim.report.plan import DESIGN_POINT
from cosim.report.tasks import Task

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
                "precision": precision_name(*DESIGN_POINT),
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
                "precision": precision_name(*DESIGN_POINT),
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
