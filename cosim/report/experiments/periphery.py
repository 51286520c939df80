"""Shared-periphery experiments: energy and area of unipolar filters (6), and the
accuracy they trade for it (7), under García-Redondo et al.'s conditions.

Experiment 6 compares three designs per network: **traditional** (per-layer STE model on
dedicated periphery with differential columns, its per-layer tuned references costed:
``EngineConfig.layer_tuning``, card ``tia.tuning_*``), **shared** (global model, one shared
periphery bank, bipolar) and **proposed** (global model, shared bank, unipolar filters).
The networks: the CNN with the unipolar fraction counted over its convolution filters (the
paper's CIFAR-10 experiment; 0.4 is its competitive point), the MLP at the design point, and
the 2-bit all-unipolar MLP that stands in for the paper's HAR network (no HAR data here:
the MLP's dataset, labelled as a stand-in).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from cosim.report.context import StudyContext
from cosim.report.experiments.base import (
    Experiment,
    Results,
    other_seeds,
    precision_name,
    seeded,
)
from cosim.report.plan import DESIGN_POINT
from cosim.report.tasks import Task

# -------------------------------------------------------- 6: shared periphery, unipolar
#: Energy and area: the engine's default chip (every non-ideality on, digital partial sums).
ENERGY_CONFIG: dict[str, Any] = {"chips": 1}
#: Accuracy on the chip: the very same evaluation (one task). Until engine version 2 the
#: digital partial sums broke unipolar columns and this used analog partial sums.
ACCURACY_CONFIG: dict[str, Any] = ENERGY_CONFIG
#: Energy and area of the traditional design: the same chip with its per-layer tuned
#: periphery counted (the accuracy does not depend on it: ACCURACY_CONFIG's evaluation).
TRADITIONAL_CONFIG: dict[str, Any] = {**ENERGY_CONFIG, "layer_tuning": True}
#: The paper's HAR network: a 2-bit all-unipolar fully connected network (abstract: 92.91 %,
#: 95 % in floating point); our stand-in is the MLP at W2A2 with every hidden filter unipolar.
HAR_BITS = (2, 2)


def unipolar_scope(arch: str) -> str:
    """The filters a unipolar fraction counts for ``arch``: the convolution filters of a
    CNN (as the paper counts them), every hidden filter of an MLP."""
    from cosim.train.network import has_convolutions

    return "conv" if has_convolutions(arch) else "hidden"


def conv_filter_counts(metrics: dict[str, Any], arch: str) -> tuple[int, int]:
    """``(unipolar convolution filters, convolution filters)`` of a trained model, from its
    metrics (models trained before the counts were recorded: from its layers' grids and the
    architecture)."""
    from cosim.train.network import ARCHITECTURES

    total = sum(s[1] for s in ARCHITECTURES[arch] if s[0] == "conv")
    if "unipolar_conv_filters" in metrics:
        return int(metrics["unipolar_conv_filters"]), int(metrics.get("conv_filters", total))
    uni = sum(
        int(g.get("unipolar_filters", 0))
        for g in metrics.get("grids", [])
        if g.get("kind") == "conv2d" and g.get("role") == "hidden"
    )
    return uni, total


class Family(NamedTuple):
    """One network of experiment 6 and its proposed design."""

    key: str  # section key
    spec: dict[str, Any]  # dataset, arch and training settings
    bits: tuple[int, int]  # (w, a)
    fraction: float  # unipolar fraction of the proposed design
    scope: str  # the filters it counts (TrainConfig.unipolar_scope)
    paper: str  # the paper's network it is compared with
    stand_in: str  # "" or what it stands in for


class PeripherySavings(Experiment):
    """Shared periphery + unipolar weights versus per-layer tuned periphery + differential
    pairs."""

    name = "periphery_savings"
    title = "Shared periphery and unipolar weights versus the traditional design"

    def settings(self, ctx: StudyContext) -> dict[str, Any]:
        # the section's layout (sections assembled before it were laid out otherwise)
        return {"layout": "tuning-costed, conv scope, HAR stand-in"}

    def _families(self, ctx: StudyContext) -> list[Family]:
        p = ctx.plan
        mlp = {
            "dataset": p.mlp_dataset,
            "arch": "mlp",
            "epochs": p.mlp_epochs if p.has_cnn else p.unipolar_epochs,
            "batch_size": p.mlp_batch_size,
            "lr": p.mlp_lr,
        }
        fams = [
            Family("mlp", mlp, DESIGN_POINT, p.proposed_unipolar_mlp, "hidden", "HAR FC", ""),
            Family(
                "mlp W2A2",
                mlp,
                HAR_BITS,
                1.0,
                "hidden",
                "HAR FC (2-bit, all unipolar)",
                f"the paper's HAR network (no HAR data: {p.mlp_dataset})",
            ),
        ]
        if p.has_cnn:
            cnn = {
                "dataset": p.dataset,
                "arch": p.arch,
                "epochs": p.unipolar_epochs,
                "batch_size": p.batch_size,
                "lr": p.lr,
                "train_limit": p.train_limit,
            }
            fams.append(
                Family(
                    p.arch,
                    cnn,
                    DESIGN_POINT,
                    p.proposed_unipolar_cnn,
                    unipolar_scope(p.arch),
                    "CIFAR-10 six-conv CNN",
                    "",
                )
            )
        return fams

    #: Designs repeated over the plan's other seeds (their accuracy: global versus per-layer,
    #: unipolar versus bipolar); area and energy come from the counts of one seed.
    SEEDED = ("traditional", "shared", "proposed")

    @staticmethod
    def _designs(ctx: StudyContext, fam: Family, seed: int | None = None) -> dict[str, Task]:
        spec = fam.spec
        ds, arch = spec["dataset"], spec["arch"]
        kw = {k: v for k, v in spec.items() if k not in ("dataset", "arch")}
        w, a = fam.bits
        scope: dict[str, Any] = {"unipolar_scope": fam.scope} if fam.scope != "hidden" else {}
        designs = {
            "traditional": ctx.model(
                ds, arch, scheme="per-layer", w_bits=w, a_bits=a, seed=seed, **kw
            ),
            "shared": ctx.model(ds, arch, w_bits=w, a_bits=a, seed=seed, **kw),
            "proposed": ctx.model(
                ds, arch, w_bits=w, a_bits=a, unipolar=fam.fraction, seed=seed, **scope, **kw
            ),
        }
        if seed is not None:
            return designs
        if fam.scope != "hidden":  # the same fraction over every hidden filter, for contrast
            designs["proposed_hidden_scope"] = ctx.model(
                ds, arch, w_bits=w, a_bits=a, unipolar=fam.fraction, **kw
            )
        if fam.stand_in:  # the paper quotes the float accuracy beside it
            designs["float"] = ctx.model(ds, arch, scheme="float", **kw)
        return designs

    def declare(self, ctx: StudyContext) -> dict[str, Task]:
        out: dict[str, Task] = {}
        for fam in self._families(ctx):
            for d, m in self._designs(ctx, fam).items():
                out[f"{fam.key} {d} model"] = m
                if d == "float":
                    continue
                cfg = TRADITIONAL_CONFIG if d == "traditional" else ENERGY_CONFIG
                out[f"{fam.key} {d}"] = ctx.evaluation(
                    m, cfg, limit=ctx.plan.energy_limit, label=f"{fam.key} {d} design"
                )
                out[f"{fam.key} {d} accuracy"] = ctx.evaluation(
                    m, ACCURACY_CONFIG, limit=ctx.plan.energy_limit, label=f"{fam.key} {d} accuracy"
                )
            for seed in other_seeds(ctx):
                for d, m in self._designs(ctx, fam, seed).items():
                    name = seeded(f"{fam.key} {d}", seed, ctx)
                    out[f"{name} model"] = m
                    out[f"{name} accuracy"] = ctx.evaluation(
                        m,
                        ACCURACY_CONFIG,
                        limit=ctx.plan.energy_limit,
                        label=f"{fam.key} {d} seed {seed} accuracy",
                    )
        return out

    def _seeded(self, ctx: StudyContext, r: Results, k: str) -> dict[str, Any]:
        """Accuracy of the seeded designs over seeds, and the paired differences that the
        paper's claims rest on: global versus per-layer, proposed versus shared."""
        from cosim.report.stats import interval, paired

        seeds = [ctx.plan.seed, *other_seeds(ctx)]

        def values(d: str, task: str, field: str) -> list[float]:
            return [r[f"{seeded(f'{k} {d}', s, ctx)} {task}"][field] for s in seeds]

        soft = {d: values(d, "model", "test_accuracy") for d in self.SEEDED}
        chip = {d: values(d, "accuracy", "accuracy_mean") for d in self.SEEDED}
        return {
            "seeds": seeds,
            "accuracy": {d: interval(v) for d, v in soft.items()},
            "engine_accuracy": {d: interval(v) for d, v in chip.items()},
            "shared_minus_traditional": paired(soft["shared"], soft["traditional"]),
            "proposed_minus_shared": paired(soft["proposed"], soft["shared"]),
            "engine_shared_minus_traditional": paired(chip["shared"], chip["traditional"]),
        }

    def assemble(self, ctx: StudyContext, r: Results) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for fam in self._families(ctx):
            k = fam.key
            names = [d for d in self._designs(ctx, fam) if d != "float"]
            res = {d: r[f"{k} {d}"] for d in names}
            mod = {d: r[f"{k} {d} model"] for d in names}
            trad = res["traditional"]
            tuning_area = trad["area_m2"]["breakdown_m2"].get("layer_tuning", 0.0)
            tuning_energy = trad["energy_per_inference_j"].get("layer_tuning", 0.0)
            area = {
                "traditional": trad["area_m2"]["total_dedicated_m2"],
                "traditional_untuned": trad["area_m2"]["total_dedicated_m2"] - tuning_area,
                "shared": res["shared"]["area_m2"]["total_shared_m2"],
                "unipolar_only": res["proposed"]["area_m2"]["total_dedicated_m2"],
                "proposed": res["proposed"]["area_m2"]["total_shared_m2"],
            }
            energy = {
                "traditional": trad["energy_total_per_inference_j"],
                "traditional_untuned": trad["energy_total_per_inference_j"] - tuning_energy,
                "shared": res["shared"]["energy_total_per_inference_j"],
                "unipolar_only": res["proposed"]["energy_total_per_inference_j"],
                "proposed": res["proposed"]["energy_total_per_inference_j"],
            }
            arch = fam.spec["arch"]
            sec: dict[str, Any] = {
                "dataset": fam.spec["dataset"],
                "arch": arch,
                "precision": precision_name(*fam.bits),
                "epochs": fam.spec["epochs"],
                "paper_network": fam.paper,
                "stand_in": fam.stand_in,
                "unipolar_fraction": fam.fraction,
                "unipolar_scope": fam.scope,
                "unipolar_filters": mod["proposed"]["unipolar_filters"],
                "hidden_filters": mod["proposed"]["hidden_filters"],
                "area_m2": area,
                "energy_per_inference_j": energy,
                "layer_tuning": {
                    "area_m2": tuning_area,
                    "energy_per_inference_j": tuning_energy,
                    "buffers": trad["area_m2"]["counts"].get("tuning_buffers", 0),
                    "dacs": trad["area_m2"]["counts"].get("tuning_dacs", 0),
                    "source": "card",
                },
                "area_fraction_saved": 1.0 - area["proposed"] / area["traditional"],
                "energy_fraction_saved": 1.0 - energy["proposed"] / energy["traditional"],
                "area_fraction_saved_untuned": 1.0 - area["proposed"] / area["traditional_untuned"],
                "energy_fraction_saved_untuned": 1.0
                - energy["proposed"] / energy["traditional_untuned"],
                "area_fraction_saved_shared_only": 1.0 - area["shared"] / area["traditional"],
                "energy_fraction_saved_shared_only": 1.0 - energy["shared"] / energy["traditional"],
                "accuracy": {d: mod[d]["test_accuracy"] for d in mod},
                "engine_accuracy": {d: r[f"{k} {d} accuracy"]["accuracy_mean"] for d in res},
                "area_breakdown_m2": {
                    "traditional": trad["area_m2"]["breakdown_m2"],
                    "proposed": res["proposed"]["area_m2"]["breakdown_m2"],
                },
                "energy_breakdown_j": {
                    d: res[d]["energy_per_inference_j"] for d in ("traditional", "proposed")
                },
            }
            if arch != "mlp":
                sec["unipolar_conv_filters"], sec["conv_filters"] = conv_filter_counts(
                    mod["proposed"], arch
                )
            if "proposed_hidden_scope" in res:
                h = res["proposed_hidden_scope"]
                hm = mod["proposed_hidden_scope"]
                sec["hidden_scope"] = {
                    "unipolar_filters": hm["unipolar_filters"],
                    "unipolar_conv_filters": conv_filter_counts(hm, arch)[0],
                    "area_fraction_saved": 1.0
                    - h["area_m2"]["total_shared_m2"] / area["traditional"],
                    "energy_fraction_saved": 1.0
                    - h["energy_total_per_inference_j"] / energy["traditional"],
                }
            if fam.stand_in:
                sec["float_accuracy"] = r[f"{k} float model"]["test_accuracy"]
            if other_seeds(ctx):
                sec["seeded"] = self._seeded(ctx, r, k)
            out[k] = sec
        return {"periphery_savings": out}


# ---------------------------------------------------------------- 7: unipolar trade-off
class UnipolarTradeoff(Experiment):
    """Accuracy, area and energy versus the fraction of unipolar filters (W4A3, shared);
    a CNN's fraction counts its convolution filters (as the paper's)."""

    name = "unipolar_tradeoff"
    title = "Accuracy versus the fraction of unipolar filters"

    def settings(self, ctx: StudyContext) -> dict[str, Any]:
        # the section's layout (sections assembled before it lack the scope and counts)
        return {"layout": "unipolar scope"}

    def declare(self, ctx: StudyContext) -> dict[str, Task]:
        p = ctx.plan
        out: dict[str, Task] = {}
        w, a = DESIGN_POINT
        scope = unipolar_scope(p.arch)
        for f in p.unipolar_fractions:
            kw = {"unipolar_scope": scope} if f > 0 and scope != "hidden" else {}
            m = ctx.main_model(w, a, unipolar=f, epochs=p.unipolar_epochs, **kw)
            out[f"{f:g} model"] = m
            out[f"{f:g}"] = ctx.evaluation(
                m, ENERGY_CONFIG, limit=p.energy_limit, label=f"unipolar {f:g}"
            )
            out[f"{f:g} accuracy"] = ctx.evaluation(
                m, ACCURACY_CONFIG, limit=p.energy_limit, label=f"unipolar {f:g} accuracy"
            )
            if f not in self._seeded_fractions(ctx):
                continue
            for seed in other_seeds(ctx):
                m = ctx.main_model(w, a, unipolar=f, epochs=p.unipolar_epochs, seed=seed, **kw)
                out[f"{seeded(f'{f:g}', seed, ctx)} model"] = m
                out[f"{seeded(f'{f:g}', seed, ctx)} accuracy"] = ctx.evaluation(
                    m, ACCURACY_CONFIG, limit=p.energy_limit, label=f"unipolar {f:g} seed {seed}"
                )
        return out

    @staticmethod
    def _seeded_fractions(ctx: StudyContext) -> list[float]:
        """The fractions repeated over seeds: all bipolar, the one nearest the paper's
        competitive 0.4 (experiment 6's proposed design) and all unipolar."""
        fr = list(ctx.plan.unipolar_fractions)
        target = ctx.plan.proposed_unipolar_cnn
        near = min(fr, key=lambda f: (abs(f - target), f))
        return [f for f in fr if f in (0.0, near, 1.0)]

    def _seeded(self, ctx: StudyContext, r: Results) -> dict[str, Any]:
        from cosim.report.stats import interval, paired

        seeds = [ctx.plan.seed, *other_seeds(ctx)]
        fr = self._seeded_fractions(ctx)

        def acc(f: float, key: str, field: str) -> list[float]:
            return [r[f"{seeded(f'{f:g}', s, ctx)}{key}"][field] for s in seeds]

        soft = {f: acc(f, " model", "test_accuracy") for f in fr}
        chip = {f: acc(f, " accuracy", "accuracy_mean") for f in fr}
        return {
            "seeds": seeds,
            "fractions": fr,
            "accuracy": [interval(soft[f]) for f in fr],
            "engine_accuracy": [interval(chip[f]) for f in fr],
            "minus_bipolar": [paired(soft[f], soft[0.0]) if 0.0 in soft else None for f in fr],
            "engine_minus_bipolar": [
                paired(chip[f], chip[0.0]) if 0.0 in chip else None for f in fr
            ],
        }

    def assemble(self, ctx: StudyContext, r: Results) -> dict[str, Any]:
        fr = list(ctx.plan.unipolar_fractions)
        arch = ctx.plan.arch
        area = [r[f"{f:g}"]["area_m2"]["total_shared_m2"] for f in fr]
        energy = [r[f"{f:g}"]["energy_total_per_inference_j"] for f in fr]
        sec: dict[str, Any] = {
            "dataset": ctx.plan.dataset,
            "arch": arch,
            "precision": precision_name(*DESIGN_POINT),
            "epochs": ctx.plan.unipolar_epochs,
            "unipolar_scope": unipolar_scope(arch),
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
        if arch != "mlp":
            counts = [conv_filter_counts(r[f"{f:g} model"], arch) for f in fr]
            sec["unipolar_conv_filters"] = [c[0] for c in counts]
            sec["conv_filters"] = counts[0][1]
        if other_seeds(ctx):
            sec["seeded"] = self._seeded(ctx, r)
        return {"unipolar_tradeoff": sec}
