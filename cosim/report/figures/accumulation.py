"""Accumulation figures: normalized ADC energy and MAC efficiency against n, and MAC
efficiency against the ADC's share of the MAC energy."""

from __future__ import annotations

from pathlib import Path

from cosim.report.figures.common import Report, pyplot, save_png


def accumulation(rep: Report, path: Path) -> Path:
    """Three panels per precision row: ADC energy vs n, efficiency vs n, efficiency vs share."""
    plt = pyplot()
    d = rep["accumulation"]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), dpi=100)
    for row, prec in zip(axes, ("W4A3", "W8A8"), strict=True):
        r = d[prec]
        ns, pub = r["n"], r["published"]
        ax0, ax1, ax2 = row
        ax0.plot(ns, [p["normalized_adc_energy"] for p in r["model"]], "k-o", label="model codes")
        for i, z in enumerate(("0.9", "0.99", "1.0")):
            ax0.plot(
                ns,
                [p["normalized_adc_energy"] for p in r["sweep"][z]],
                "--",
                color=f"C{i}",
                label=f"{float(z) * 100:g} % zeros",
            )
        if "curve" in r["required"]:
            ax0.plot(
                ns,
                [p["normalized_adc_energy"] for p in r["required"]["curve"]],
                "r-",
                label="required sparsity",
            )
        ax0.plot([128], [pub["normalized_adc_energy"]], "r*", ms=12, label="published")
        ax0.set(xlabel="inputs per conversion n", ylabel="ADC energy skip / no skip")
        for ax in (ax0, ax1):
            ax.set_xscale("log", base=2)
            ax.set_xticks(ns, [str(n) for n in ns])
            ax.minorticks_off()
        ax0.set_title(f"{prec}: normalized ADC energy", fontsize=9)
        ax0.legend(fontsize=7)
        ax1.plot(ns, [p["mac_efficiency"] for p in r["model"]], "k-o", label="model codes")
        ax1.plot(ns, [p["mac_efficiency"] for p in r["sweep"]["1.0"]], "C2--", label="all zeros")
        ax1.plot([128], [pub["mac_efficiency"]], "r*", ms=12, label="published")
        ax1.axhline(1.0, color="0.7", lw=0.8)
        ax1.set(xlabel="inputs per conversion n", ylabel="MAC efficiency (x)")
        ax1.set_title(f"{prec}: MAC efficiency (card)", fontsize=9)
        ax1.legend(fontsize=7)
        for key, style, what in (
            ("model", "k-", "model codes"),
            ("required", "r-", "required sparsity"),
            ("all_zero_n32", "g--", "all zeros"),
        ):
            if key in r["adc_share"]:
                s = r["adc_share"][key]
                ax2.plot(
                    [x * 100 for x in s["adc_share"]],
                    s["mac_efficiency"],
                    style,
                    label=f"{what}, n = {s['n']}: adc.e_conv_j swept",
                )
        s = r["adc_share"]["model"]
        ax2.plot(s["card"]["adc_share"] * 100, s["card"]["mac_efficiency"], "ks", label="card")
        dom = s["adc_dominated_card"]
        ax2.plot(dom["adc_share"] * 100, dom["mac_efficiency"], "bD", label="ADC-dominated card")
        ax2.axhline(pub["mac_efficiency"], color="r", ls=":", label="published")
        ax2.set(xlabel="ADC share of MAC energy (%)", ylabel="MAC efficiency (x)")
        ax2.set_title(f"{prec}: efficiency vs ADC share", fontsize=9)
        ax2.legend(fontsize=7)
    fig.tight_layout()
    return save_png(fig, path)
