"""Shared-periphery figures: savings of unipolar filters (6) and their accuracy cost (7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cosim.report.figures.common import Report, pyplot, save_png, subtitle
from cosim.report.references import REFERENCES


# ------------------------------------------------------------------------------ 6
def periphery_savings(rep: Report, path: Path) -> Path:
    plt = pyplot()
    d = rep["periphery_savings"]
    ref = REFERENCES["periphery_savings"]
    designs = ("traditional", "shared", "unipolar_only", "proposed")
    fams = list(d)
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8), dpi=110)
    for ax, what, key, pub in (
        (axes[0], "area", "area_m2", 1 - ref["area_fraction_saved"]),
        (
            axes[1],
            "energy per inference",
            "energy_per_inference_j",
            1 - ref["energy_fraction_saved"],
        ),
    ):
        x = np.arange(len(fams))
        for j, des in enumerate(designs):
            v = [d[f][key][des] / d[f][key]["traditional"] * 100 for f in fams]
            bars = ax.bar(x + (j - 1.5) * 0.2, v, 0.2, color=f"C{j}", label=des.replace("_", " "))
            if des == "proposed":  # the headline: what the proposed design saves
                for b, val in zip(bars, v, strict=True):
                    ax.annotate(
                        f"-{100 - val:.0f} %",
                        (b.get_x() + b.get_width() / 2, val),
                        ha="center",
                        va="bottom",
                        fontsize=7,
                    )
        ax.axhline(
            pub * 100, color="k", ls="--", lw=1, label=f"published: {(1 - pub) * 100:.0f} % saved"
        )
        ax.set_xticks(x, [f"{f} ({d[f]['dataset']})" for f in fams], fontsize=8)
        ax.set_ylabel(f"{what}, % of traditional")
        ax.set_title(
            f"{what}: W4A3, unipolar fraction "
            + ", ".join(f"{f} {d[f]['unipolar_fraction']:g}" for f in fams),
            fontsize=8,
        )
        ax.grid(alpha=0.3, axis="y")
        ax.set_ylim(0, 140)  # room for the legend above the bars
        ax.legend(fontsize=7, ncol=3, loc="upper center")
    fig.suptitle(subtitle(rep), fontsize=8)
    return save_png(fig, path)


# ------------------------------------------------------------------------------ 7
def unipolar_tradeoff(rep: Report, path: Path) -> Path:
    plt = pyplot()
    d = rep["unipolar_tradeoff"]
    fig, ax = plt.subplots(figsize=(6.0, 4.0), dpi=110)
    f = np.asarray(d["fractions"]) * 100
    ax.plot(f, np.asarray(d["accuracy"]) * 100, "o-", color="C0", label="accuracy (integer)")
    ax.plot(
        f,
        np.asarray(d["engine_accuracy"]) * 100,
        "s--",
        color="C0",
        ms=4,
        alpha=0.6,
        label="accuracy on the chip (engine)",
    )
    ax.axvline(
        REFERENCES["unipolar_tradeoff"]["competitive_fraction"] * 100,
        color="k",
        ls=":",
        label="published: ~40 % stays competitive",
    )
    ax.set_xlabel("unipolar filters (% of hidden filters)")
    ax.set_ylabel("test accuracy (%)", color="C0")
    ax2 = ax.twinx()
    ax2.plot(f, np.asarray(d["area_relative"]) * 100, "^-", color="C3", label="area")
    ax2.plot(f, np.asarray(d["energy_relative"]) * 100, "v-", color="C2", label="energy")
    ax2.set_ylabel("area / energy, % of all-bipolar", color="C3")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    ax.set_title(f"{d['precision']}, shared periphery — {subtitle(rep)}", fontsize=8)
    return save_png(fig, path)
