"""The accumulation section of ``report.md``: normalized ADC energy and MAC efficiency
against the inputs summed per conversion and against the ADC's share of the MAC energy."""

from __future__ import annotations

from typing import Any

from cosim.report.markdown.common import Report, block, pct
from cosim.report.markdown.common import pub as published

#: The section's figure (:func:`cosim.report.figures.accumulation.accumulation`).
FIGURE = "fig9_accumulation.png"


def _f(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}g}"


def accumulation(rep: Report) -> str:
    """Markdown of the ``accumulation`` section (tables per precision)."""
    d = rep["accumulation"]
    if "skipped" in d:
        return f"Not run: {d['skipped']}."
    parts: list[str] = []
    for prec in ("W4A3", "W8A8"):
        r: dict[str, Any] = d[prec]
        pub = r["published"]
        ns = r["n"]
        zeros = r["sweep"]
        rows = ["| inputs | n = " + " | ".join(str(n) for n in ns) + " |"]
        rows.append("|---" * (len(ns) + 1) + "|")
        rows.append(
            f"| model codes ({pct(r['pmf'][0])} zeros), normalized ADC energy | "
            + " | ".join(_f(p["normalized_adc_energy"]) for p in r["model"])
            + " |"
        )
        rows.append(
            "| model codes, MAC efficiency | "
            + " | ".join(_f(p["mac_efficiency"]) for p in r["model"])
            + " |"
        )
        for z in ("0.9", "0.99", "1.0"):
            rows.append(
                f"| {pct(float(z))} zeros, normalized ADC energy | "
                + " | ".join(_f(p["normalized_adc_energy"]) for p in zeros[z])
                + " |"
            )
        req = r["required"]
        if req["zero_fraction"] is None:
            floor = zeros["1.0"][ns.index(128)]["normalized_adc_energy"]
            need = (
                f"no zero fraction reaches the published {pub['normalized_adc_energy']:.2f} at "
                f"n = 128 (all-zero inputs give {_f(floor)})"
            )
        else:
            at512 = r["required_at_512"]["normalized_adc_energy"]
            need = (
                f"the published {pub['normalized_adc_energy']:.2f} at n = 128 needs "
                f"{pct(req['zero_fraction'])} zero codes (mean code {req['mean_code']:.3g}); "
                f"at that sparsity n = 512 gives {_f(at512)}"
            )
        sh = r["adc_share"]["model"]
        card = sh["card"]
        dom = sh["adc_dominated_card"]
        share_pub = sh["share_for_published"]
        eff = (
            f"the published {pub['mac_efficiency']:.2f}x is reached at an ADC share of "
            f"{pct(share_pub)}"
            if share_pub is not None
            else f"no ADC share reaches the published {pub['mac_efficiency']:.2f}x (largest "
            f"{_f(sh['largest_efficiency'])}x)"
        )
        z32 = r["adc_share"]["all_zero_n32"]
        eff += (
            f"; where the sense row does skip (all-zero inputs, n = 32: ADC energy "
            f"{_f(z32['card']['normalized_adc_energy'])}) "
            + (
                f"the published {pub['mac_efficiency']:.2f}x needs an ADC share of "
                f"{pct(z32['share_for_published'])}"
                if z32["share_for_published"] is not None
                else f"the efficiency tops out at {_f(z32['largest_efficiency'])}x"
            )
            + f" (the ADC-dominated card: {pct(z32['adc_dominated_card']['adc_share'])}, "
            f"{_f(z32['adc_dominated_card']['mac_efficiency'])}x)"
        )
        if "required" in r["adc_share"]:
            rq = r["adc_share"]["required"]
            eff += "; at the required sparsity " + (
                f"at a share of {pct(rq['share_for_published'])}"
                if rq["share_for_published"] is not None
                else f"not either (largest {_f(rq['largest_efficiency'])}x)"
            )
        parts.append(
            f"**{prec}** (layer {r['layer']}, R_t = {r['r_t_ohm']:.4g} Ω, {r['bits']}-bit "
            f"conversions, {r['trials']} conversions per point). Published at n = 128: "
            f"{pub['normalized_adc_energy']:.2f} ADC energy, {pub['mac_efficiency']:.2f}x.\n\n"
            + "\n".join(rows)
            + f"\n\nSparsity: {need}. ADC share on the model's codes at n = 128: the card's "
            f"{pct(card['adc_share'])} gives {_f(card['mac_efficiency'])}x; the ADC-dominated "
            f"card's {pct(dom['adc_share'])} gives {_f(dom['mac_efficiency'])}x; {eff}. "
            f"Sense thresholds at n = 128 (V): "
            + ", ".join(f"{t:.3g}" for t in r["model_at_128"]["thresholds_v"])
            + " (0: that many cycles never skip; the random op-amp offset allowance grows "
            "with the column conductance, i.e. with n)."
        )
    why = (
        "no conversion skips on the model's codes at n = 128: the thresholds' random op-amp "
        "offset allowance grows with the column conductance (with n) and the characterized "
        "SAR keeps part of its energy when it skips (see the per-precision notes below); "
        "Bao et al.'s MNIST activations are sparser and their ADC dominates the MAC energy."
    )
    ours = "; ".join(
        f"{prec}: {d[prec]['model_at_128']['normalized_adc_energy']:.2f} ADC energy, "
        f"{d[prec]['model_at_128']['mac_efficiency']:.3f}x at n = 128 on the model's codes"
        for prec in ("W4A3", "W8A8")
    )
    head = block(FIGURE, published("accumulation"), ours + ".", why)
    parts.append(
        "Energy provenance of these points: crossbar read from the engine's formula; DAC, "
        "TIA, subtractor and sense row from the card; the ADC from the library's SPICE "
        "characterization on the study card and from `adc.e_conv_j` (card) on the "
        "ADC-dominated card and in the ADC-share sweep."
    )
    return head + "\n" + "\n\n".join(parts)
