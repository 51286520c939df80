"""The study's figures (PNG, matplotlib's Agg backend), one or two per experiment.

Each function takes the assembled ``report.json`` dictionary and a path, draws our result
with the published value marked on the same axes where the paper gives a number, and writes
the PNG atomically. :data:`FIGURES` lists them in report order with the experiment each
belongs to.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cosim.fileio import atomic_path, png_metadata
from cosim.report.references import REFERENCES

Report = dict[str, Any]
PUB = {"color": "k", "marker": "*", "ms": 11, "ls": "none", "mfc": "none"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata=png_metadata())
    _plt().close(fig)
    return path


def _subtitle(rep: Report) -> str:
    p = rep["plan"]
    return f"{p['arch']} on {p['dataset']} — card '{rep['card']['card']['name']}'"


# ------------------------------------------------------------------------------ 1
def accuracy_grid(rep: Report, path: Path) -> Path:
    plt = _plt()
    d = rep["accuracy_grid_details"]
    m = np.asarray(d["matrix"]) * 100
    fig, ax = plt.subplots(figsize=(6.4, 5.0), dpi=110)
    im = ax.imshow(m, origin="lower", cmap="viridis", aspect="auto")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j,
                i,
                f"{m[i, j]:.1f}",
                ha="center",
                va="center",
                fontsize=7,
                color="w" if m[i, j] < m.mean() else "k",
            )
    ax.set_xticks(range(len(d["a_bits"])), [str(a) for a in d["a_bits"]])
    ax.set_yticks(range(len(d["w_bits"])), [str(w) for w in d["w_bits"]])
    ax.set_xlabel("activation bits (ADC/DAC)")
    ax.set_ylabel("weight bits (device levels)")
    if 4 in d["w_bits"] and 3 in d["a_bits"]:
        ax.add_patch(
            plt.Rectangle(
                (d["a_bits"].index(3) - 0.5, d["w_bits"].index(4) - 0.5),
                1,
                1,
                fill=False,
                ec="r",
                lw=2,
            )
        )
    ref = REFERENCES["accuracy_grid"]
    ax.set_title(
        f"test accuracy (%), global quantization; float {d['float_accuracy'] * 100:.2f} %\n"
        f"published (LeNet-5, MNIST): W4A3 {ref['W4A3'] * 100:.2f} %, float "
        f"{ref['float'] * 100:.2f} %\n{_subtitle(rep)}",
        fontsize=8,
    )
    fig.colorbar(im, ax=ax, label="accuracy (%)")
    return _save(fig, path)


# ------------------------------------------------------------------------------ 2
def clip_bound(rep: Report, path: Path) -> Path:
    plt = _plt()
    d = rep["clip_bound"]
    fig, ax = plt.subplots(figsize=(5.6, 3.8), dpi=110)
    ax.plot(d["hi"], np.asarray(d["accuracy"]) * 100, "o-", label=f"ours, {d['precision']}")
    ax.axvline(
        REFERENCES["clip_bound"]["best_hi"],
        color="k",
        ls="--",
        lw=1,
        label="published best: [0, 2]",
    )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("activation clip upper bound hi (training)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"accuracy vs clip bound — {_subtitle(rep)}", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


# ------------------------------------------------------------------------------ 3
def _curves(ax, curves: dict[str, Any], param: str) -> None:
    for i, (name, c) in enumerate(curves.items()):
        ax.errorbar(
            c["values"],
            np.asarray(c["accuracy_mean"]) * 100,
            yerr=np.asarray(c["accuracy_std"]) * 100,
            marker="o",
            ms=2.5,
            lw=1,
            capsize=1.5,
            color=f"C{i % 10}",
            label=name,
        )
        ax.axhline(c["threshold"] * 100, color=f"C{i % 10}", lw=0.5, ls=":")
    ax.set_xlabel(param)
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)


def _largest(ax, x: list[int], y: list[float], censored: list[bool], label: str, c: str) -> None:
    ax.plot(x, y, "o-", color=c, label=label)
    cx = [a for a, cen in zip(x, censored, strict=True) if cen]
    cy = [b for b, cen in zip(y, censored, strict=True) if cen]
    if cx:
        ax.plot(cx, cy, "^", color=c, ms=9, mfc="none")


def robustness_nvw(rep: Report, path: Path) -> Path:
    plt = _plt()
    d = rep["robustness"]["nvw"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9.5, 3.8), dpi=110)
    _curves(a1, d["curves"], "nvw = σ / (G_max − G_min)")
    a1.set_title(f"accuracy vs weight variation (A{d['a_bits']}; dotted: threshold)", fontsize=8)
    _largest(a2, d["w_bits"], d["largest"], d["censored"], f"A{d['a_bits']}", "C0")
    a2.set_xlabel("weight bits")
    a2.set_ylabel("largest tolerated nvw")
    a2.set_title(
        "published: lower weight precision is more robust\n"
        "(triangles: never fell below the threshold)",
        fontsize=8,
    )
    a2.grid(alpha=0.3)
    fig.suptitle(_subtitle(rep), fontsize=8)
    return _save(fig, path)


def robustness_nva(rep: Report, path: Path) -> Path:
    plt = _plt()
    d = rep["robustness"]["nva"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9.5, 3.8), dpi=110)
    w0 = d["w_bits"][len(d["w_bits"]) // 2] if d["w_bits"] else None
    if w0 is not None:
        _curves(
            a1, {k: v for k, v in d["curves"].items() if k.startswith(f"W{w0}A")}, "nva = σ / V_ref"
        )
        a1.set_title(f"accuracy vs comparison-level variation (W{w0})", fontsize=8)
    for i, w in enumerate(d["w_bits"]):
        _largest(a2, d["a_bits"], d["largest"][f"W{w}"], d["censored"][f"W{w}"], f"W{w}", f"C{i}")
    a2.set_yscale("log")
    a2.set_xlabel("activation bits")
    a2.set_ylabel("largest tolerated nva")
    a2.set_title(
        "published: lower activation precision is more robust,\nweight precision barely matters",
        fontsize=8,
    )
    a2.grid(alpha=0.3)
    a2.legend(fontsize=7)
    fig.suptitle(_subtitle(rep), fontsize=8)
    return _save(fig, path)


# ------------------------------------------------------------------------------ 4
def activation_cdf(rep: Report, path: Path) -> Path:
    plt = _plt()
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
    fig.suptitle(_subtitle(rep), fontsize=8)
    return _save(fig, path)


# ------------------------------------------------------------------------------ 5
def adc_energy_rows(rep: Report, path: Path) -> Path:
    plt = _plt()
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
    fig.suptitle(_subtitle(rep), fontsize=8)
    return _save(fig, path)


def mac_efficiency(rep: Report, path: Path) -> Path:
    plt = _plt()
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
    fig.suptitle(_subtitle(rep), fontsize=8)
    return _save(fig, path)


# ------------------------------------------------------------------------------ 6
def periphery_savings(rep: Report, path: Path) -> Path:
    plt = _plt()
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
    fig.suptitle(_subtitle(rep), fontsize=8)
    return _save(fig, path)


# ------------------------------------------------------------------------------ 7
def unipolar_tradeoff(rep: Report, path: Path) -> Path:
    plt = _plt()
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
    ax.set_title(f"{d['precision']}, shared periphery — {_subtitle(rep)}", fontsize=8)
    return _save(fig, path)


#: (file name, experiment section it needs, drawing function), in report order.
FIGURES: tuple[tuple[str, str, Callable[[Report, Path], Path]], ...] = (
    ("fig1_accuracy_grid.png", "accuracy_grid_details", accuracy_grid),
    ("fig2_clip_bound.png", "clip_bound", clip_bound),
    ("fig3a_robustness_nvw.png", "robustness", robustness_nvw),
    ("fig3b_robustness_nva.png", "robustness", robustness_nva),
    ("fig4_activation_cdf.png", "activation_cdf", activation_cdf),
    ("fig5a_adc_energy_vs_rows.png", "adc_energy_vs_rows", adc_energy_rows),
    ("fig5b_mac_efficiency.png", "mac_efficiency", mac_efficiency),
    ("fig6_periphery_savings.png", "periphery_savings", periphery_savings),
    ("fig7_unipolar_tradeoff.png", "unipolar_tradeoff", unipolar_tradeoff),
)


def draw_all(rep: Report, out_dir: Path) -> list[str]:
    """Draw every figure whose section is present (and not skipped); their file names."""
    done = []
    for name, section, fn in FIGURES:
        sec = rep.get(section)
        if not sec or (isinstance(sec, dict) and "skipped" in sec):
            continue
        fn(rep, out_dir / name)
        done.append(name)
    return done
