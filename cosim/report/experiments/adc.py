"""ADC architectures (8): SAR against flash at the low activation precisions.

Bao et al. note that at 1-bit activations the converters "can be substituted by more
compact and efficient circuit modules like ... voltage comparator[s]"; a flash ADC is that
comparator ladder at any resolution. Each architecture of the plan runs on its own variant
of the study card (``adc.architecture`` set to it, characterized into its own library), the
W4A``b`` models of the main experiments converting at ``b`` bits: energy per conversion
(from the SPICE-fitted surrogate, through the engine's conversion counts), the ADC's share
of the energy per inference, its area, and the accuracy over Monte-Carlo chips.

Row tiles join on the bitlines (``partial_sums="analog"``): with digital partial sums the
partial sums convert at the card's ``adc.bits``, which a 4-bit flash cannot hold, and the
comparison would be of the partial sums, not of the activations.
"""

from __future__ import annotations

from typing import Any

from cosim.report.context import StudyContext
from cosim.report.experiments.base import Experiment, Results, precision_name
from cosim.report.tasks import Task

#: The engine's default chip, row tiles joined on the bitlines (one conversion per output).
ADC_CONFIG: dict[str, Any] = {"chips": 3, "partial_sums": "analog"}
W_BITS = 4


def architectures(ctx: StudyContext) -> tuple[str, ...]:
    """The architectures compared: the plan's, or the study card's own alone."""
    return ctx.plan.adc_architectures or (ctx.card.adc.architecture,)


class AdcArchitectures(Experiment):
    """Energy, area and accuracy of each ADC plug-in at the plan's activation precisions."""

    name = "adc_architectures"
    title = "ADC architectures: SAR versus flash"

    def declare(self, ctx: StudyContext) -> dict[str, Task]:
        p = ctx.plan
        out: dict[str, Task] = {}
        for b in p.adc_bits:
            m = ctx.main_model(W_BITS, b)
            out[f"A{b} model"] = m
            for arch in architectures(ctx):
                out[f"A{b} {arch}"] = ctx.evaluation(
                    m,
                    ADC_CONFIG,
                    limit=p.energy_limit,
                    label=f"{precision_name(W_BITS, b)} on the {arch} ADC",
                    adc_architecture=arch,
                )
        return out

    def assemble(self, ctx: StudyContext, r: Results) -> dict[str, Any]:
        bits = list(ctx.plan.adc_bits)
        per_arch: dict[str, Any] = {}
        for arch in architectures(ctx):
            rows = [r[f"A{b} {arch}"] for b in bits]
            conv = [sum(lay["conversions_per_inference"] for lay in x["layers"]) for x in rows]
            adc_e = [x["energy_per_inference_j"]["adc"] for x in rows]
            total = [x["energy_total_per_inference_j"] for x in rows]
            per_arch[arch] = {
                "accuracy": [x["accuracy_mean"] for x in rows],
                "accuracy_per_chip": [x["accuracy_per_chip"] for x in rows],
                "conversions_per_inference": conv,
                "adc_energy_per_inference_j": adc_e,
                "energy_per_conversion_j": [
                    e / c if c else None for e, c in zip(adc_e, conv, strict=True)
                ],
                "energy_per_inference_j": total,
                "adc_energy_share": [
                    e / t if t else None for e, t in zip(adc_e, total, strict=True)
                ],
                "adc_area_m2": [x["area_m2"]["breakdown_m2"]["adc"] for x in rows],
                "area_m2": [x["area_m2"]["total_m2"] for x in rows],
            }
        return {
            "adc_architectures": {
                "dataset": ctx.plan.dataset,
                "arch": ctx.plan.arch,
                "w_bits": W_BITS,
                "bits": bits,
                "chips": ADC_CONFIG["chips"],
                "partial_sums": ADC_CONFIG["partial_sums"],
                "software_accuracy": [r[f"A{b} model"]["test_accuracy"] for b in bits],
                "architectures": per_arch,
            }
        }
