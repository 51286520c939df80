"""The ADC-architecture section of ``report.md`` (8): SAR against flash."""

from __future__ import annotations

from cosim.report.markdown.common import Report, block, net, pct, pub


def _fj(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e15:.1f} fJ"


def adc_architectures(rep: Report) -> str:
    d = rep["adc_architectures"]
    bits, archs = d["bits"], d["architectures"]
    parts = []
    for name, a in archs.items():
        per_bit = ", ".join(
            f"A{b} {_fj(e)} per conversion, {pct(acc, 2)}"
            for b, e, acc in zip(bits, a["energy_per_conversion_j"], a["accuracy"], strict=True)
        )
        parts.append(f"{name}: {per_bit}")
    ours = "; ".join(parts) + "."
    why = (
        f"{net(rep)}, W{d['w_bits']} and A{bits[0]}-{bits[-1]}, on {d['chips']} chips with "
        "every non-ideality on and the row tiles joined on the bitlines (one conversion per "
        "output at the activation bits); each architecture on its own variant of the card, "
        "characterized in ngspice (energy per conversion: the SPICE-fitted converter through "
        "the engine's conversion counts, sense-row skips included); the ADC area is the "
        "card's `adc.area_m2` for either architecture (cosim has no area model per "
        "architecture: a flash card states its own), so only energy and accuracy are "
        "compared; the paper gives the survey's trend, not a circuit."
    )
    rows = [["quantity", *[f"A{b}" for b in bits]]]
    rows.append(["software accuracy (integer)", *[pct(x, 2) for x in d["software_accuracy"]]])
    for name, a in archs.items():
        rows.append([f"{name}: accuracy on the chip", *[pct(x, 2) for x in a["accuracy"]]])
        rows.append(
            [f"{name}: energy per conversion", *[_fj(x) for x in a["energy_per_conversion_j"]]]
        )
        rows.append(
            [
                f"{name}: ADC share of the energy",
                *[pct(x) if x is not None else "-" for x in a["adc_energy_share"]],
            ]
        )
    return block("fig8_adc_architectures.png", pub("adc_architectures"), ours, why, rows)
