"""Sparsity figures: activation CDFs (4), ADC energy versus rows (5a), MAC efficiency (5b)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cosim.report.figures.common import PUB, Report, pyplot, save_png, subtitle
from cosim.report.references import REFERENCES


# ------------------------------------------------------------------------------ 4
def activation_cdf(rep: Report, path: Path) -> Path:
    plt = pyplot()
    d = rep["activation_cdf"]
    ref = REFERENCES["activation_cdf"]
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8), dpi=110)
    for ax, prec in zip(axes, ("W4A3", "W8A8"), strict=True):
        dd = d[prec]
        bits = dd["total"]["bits"]
        codes = np.arange(1 << bits)
        for i, lay in enumerate(dd["layers"]):
            ax.step(
                codes,
                np.asarray(lay["cdf"]) * 100,
                where="post",
                lw=1,
                color=f"C{i}",
                label=f"layer {lay['name']} (fan-in {lay['fan_in']})",
            )
        ax.step(
            codes,
            np.asarray(dd["total"]["cdf"]) * 100,
            where="post",
            lw=2.2,
            color="k",
            label="all hidden layers",
        )
        k = ref[prec]["fewer_bits"]
        edge = (1 << (bits - k)) - 1
        ours = dd["total"]["fraction_fewer_bits"][str(k)] * 100
        ax.axvline(edge, color="r", ls="--", lw=1)
        ax.plot([edge], [ref[prec]["fraction"] * 100], **PUB, label="published")
        ax.set_title(
            f"{prec}: {ours:.1f} % fit in {bits - k} bits (code ≤ {edge}); "
            f"published {ref[prec]['fraction'] * 100:.0f} %",
            fontsize=8,
        )
        if bits > 4:
            ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("ADC output code")
        ax.set_ylabel("cumulative fraction (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower right")
    fig.suptitle(subtitle(rep), fontsize=8)
    return save_png(fig, path)


# ------------------------------------------------------------------------------ 5
def adc_energy_rows(rep: Report, path: Path) -> Path:
    plt = pyplot()
    d = rep["adc_energy_vs_rows"]
    ref = REFERENCES["adc_energy_vs_rows"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9.5, 3.8), dpi=110)
    for i, prec in enumerate(("W4A3", "W8A8")):
        if prec not in d:
            continue
        dd = d[prec]
        a1.plot(
            dd["rows"],
            np.asarray(dd["normalized_adc_energy"]) * 100,
            "o-",
            color=f"C{i}",
            label=f"ours {prec}",
        )
        a1.plot(
            [128, 512],
            [ref["normalized_adc_energy_at_128"][prec] * 100, ref["at_512"][prec] * 100],
            marker="*",
            ms=11,
            ls="none",
            mfc="none",
            color=f"C{i}",
            label=f"published {prec}",
        )
        pl = dd.get("per_layer_at_128")
        if pl:
            a2.plot(
                pl["fan_in"],
                np.asarray(pl["normalized_adc_energy"]) * 100,
                "o",
                color=f"C{i}",
                label=f"ours {prec}, per layer",
            )
    a1.set_xscale("log", base=2)
    a1.set_xlabel("array rows (= columns), what-if cards")
    a1.set_ylabel("ADC energy, skip on / off (%)")
    a1.set_ylim(0, 110)
    a1.set_title("normalized ADC energy (analog partial sums)", fontsize=8)
    a1.grid(alpha=0.3)
    a1.legend(fontsize=7)
    a2.set_xlabel("layer fan-in (rows summed per conversion)")
    a2.set_ylabel("ADC energy, skip on / off (%)")
    a2.set_ylim(0, 110)
    a2.set_title("per hidden layer at 128 x 128", fontsize=8)
    a2.grid(alpha=0.3)
    a2.legend(fontsize=7)
    fig.suptitle(subtitle(rep), fontsize=8)
    return save_png(fig, path)


def mac_efficiency(rep: Report, path: Path) -> Path:
    plt = pyplot()
    d = rep["mac_efficiency"]
    ref = REFERENCES["mac_efficiency"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9.5, 3.8), dpi=110)
    precs = [p for p in ("W4A3", "W8A8") if p in d]
    for i, prec in enumerate(precs):
        dd = d[prec]
        a1.plot(dd["rows"], dd["improvement"], "o-", color=f"C{i}", label=f"ours {prec}")
        pts = {"128": ref["improvement_at_128"][prec], **ref["improvement_range"][prec]}
        xs = sorted(int(k) for k in pts)
        a1.plot(
            xs,
            [pts[str(x)] for x in xs],
            marker="*",
            ms=11,
            ls="none",
            mfc="none",
            color=f"C{i}",
            label=f"published {prec}",
        )
    a1.axhline(1.0, color="gray", lw=0.8)
    a1.set_xscale("log", base=2)
    a1.set_yscale("log")
    a1.set_xlabel("array rows (= columns)")
    a1.set_ylabel("MAC energy efficiency improvement (x)")
    a1.set_title("with the sense row's own cost", fontsize=8)
    a1.grid(alpha=0.3, which="both")
    a1.legend(fontsize=7)
    comps = ("crossbar_read", "dac", "tia", "subtractor", "adc")
    if precs:
        i128 = d[precs[0]]["rows"].index(128) if 128 in d[precs[0]]["rows"] else 0
        bottom = np.zeros(len(precs))
        for j, c in enumerate(comps):
            v = np.array([d[p]["breakdown_baseline_j"][i128][c] for p in precs]) * 1e9
            a2.bar(precs, v, bottom=bottom, color=f"C{j}", label=c)
            bottom += v
        a2.set_ylabel("MAC energy per inference (nJ), no sense row")
        a2.set_title(f"baseline breakdown at {d[precs[0]]['rows'][i128]} rows", fontsize=8)
        a2.set_ylim(0, 1.35 * float(bottom.max()))  # room for the legend above the bars
        a2.legend(fontsize=7, ncol=3, loc="upper center")
    fig.suptitle(subtitle(rep), fontsize=8)
    return save_png(fig, path)
