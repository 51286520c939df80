"""Shared-periphery figures: savings of unipolar filters (6) and their accuracy cost (7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cosim.report.figures.common import Report, pyplot, save_png, subtitle
from cosim.report.references import REFERENCES


# ------------------------------------------------------------------------------ 6
def _tick(f: str, v: dict) -> str:
    """x label of one network: name, dataset, precision and what its fraction counts."""
    scope = "conv" if v.get("unipolar_scope") == "conv" else "hidden"
    name = f.split(" ")[0]
    stand = "\nHAR stand-in" if v.get("stand_in") else ""
    return (
        f"{name} ({v['dataset']}) {v.get('precision', 'W4A3')}\n"
        f"unipolar {v['unipolar_fraction']:g} of {scope}{stand}"
    )


def periphery_savings(rep: Report, path: Path) -> Path:
    plt = pyplot()
    d = rep["periphery_savings"]
    ref = REFERENCES["periphery_savings"]
    designs = ("traditional_untuned", "traditional", "shared", "unipolar_only", "proposed")
    labels = {"traditional_untuned": "traditional, tuning not costed"}
    fams = list(d)
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.2), dpi=110)
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
            v = [d[f][key].get(des, np.nan) / d[f][key]["traditional"] * 100 for f in fams]
            bars = ax.bar(
                x + (j - 2) * 0.16,
                v,
                0.16,
                color=f"C{j}",
                hatch="//" if des == "traditional_untuned" else None,
                label=labels.get(des, des.replace("_", " ")),
            )
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
        ax.set_xticks(x, [_tick(f, d[f]) for f in fams], fontsize=7)
        ax.set_ylabel(f"{what}, % of traditional (tuning costed)")
        ax.set_title(f"{what}: shared + unipolar vs per-layer tuned", fontsize=8)
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
    counted = "convolution" if d.get("unipolar_scope") == "conv" else "hidden"
    ax.set_xlabel(f"unipolar filters (% of {counted} filters)")
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
