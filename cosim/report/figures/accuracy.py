"""Accuracy figures: the precision grid (1), the clip bound (2), robustness to weight and
converter variation (3a, 3b)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cosim.report.figures.common import Report, pyplot, save_png, subtitle
from cosim.report.references import REFERENCES


# ------------------------------------------------------------------------------ 0
def _errorbar(ax, x, iv: list[dict[str, Any]], scale: float, **kw: Any) -> None:
    """Means with their 95 % intervals over seeds (no bar where one seed)."""
    mean = np.array([v["mean"] for v in iv]) * scale
    err = np.array([v["half_width"] or 0.0 for v in iv]) * scale
    ax.errorbar(x, mean, yerr=err, capsize=3, **kw)


def headline(rep: Report, path: Path) -> Path:
    """Float test accuracy per epoch (convergence) and the converged accuracies with their
    95 % intervals over seeds, in software and on the chip."""
    plt = pyplot()
    h = rep["headline"]
    ref = REFERENCES["accuracy_grid"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9.5, 3.8), dpi=110)
    for s, curve in zip(h["seeds"], h["float_epoch_accuracy"], strict=True):
        a1.plot(range(1, len(curve) + 1), np.asarray(curve) * 100, "o-", ms=3, label=f"seed {s}")
    a1.set_xlabel("epoch")
    a1.set_ylabel("float test accuracy (%)")
    a1.set_title("convergence of the float model", fontsize=8)
    a1.grid(alpha=0.3)
    a1.legend(fontsize=7)
    names = ["float", *[k for k in ("W4A3", "W8A8") if k in h]]
    soft = [h["float"], *[h[k]["software"] for k in names[1:]]]
    _errorbar(a2, np.arange(len(names)) - 0.1, soft, 100, fmt="o", label="software (integer)")
    _errorbar(
        a2, np.arange(1, len(names)) + 0.1, [h[k]["chip"] for k in names[1:]], 100, fmt="s",
        label=f"on the chip ({h['chips']} chips)",
    )  # fmt: skip
    a2.set_xticks(range(len(names)), names)
    a2.set_ylabel("test accuracy (%)")
    a2.set_title(
        f"mean ± 95 % interval over {len(h['seeds'])} seeds\npublished (MNIST): float "
        f"{ref['float'] * 100:.2f} %, W4A3 {ref['W4A3'] * 100:.2f} %",
        fontsize=8,
    )
    a2.grid(alpha=0.3)
    a2.legend(fontsize=7)
    fig.suptitle(subtitle(rep), fontsize=8)
    return save_png(fig, path)


# ------------------------------------------------------------------------------ 1
def accuracy_grid(rep: Report, path: Path) -> Path:
    plt = pyplot()
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
        f"{ref['float'] * 100:.2f} %\n{subtitle(rep)}",
        fontsize=8,
    )
    fig.colorbar(im, ax=ax, label="accuracy (%)")
    return save_png(fig, path)


# ------------------------------------------------------------------------------ 2
def clip_bound(rep: Report, path: Path) -> Path:
    plt = pyplot()
    d = rep["clip_bound"]
    fig, ax = plt.subplots(figsize=(5.6, 3.8), dpi=110)
    if "accuracy_interval" in d:
        _errorbar(
            ax, d["hi"], d["accuracy_interval"], 100, fmt="o-",
            label=f"ours, {d['precision']}, Bao et al.'s recipe ({len(d['seeds'])} seeds, 95 %)",
        )  # fmt: skip
    else:
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
    ax.set_title(f"accuracy vs clip bound — {subtitle(rep)}", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_png(fig, path)


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


def _nvw_figure(rep: Report, path: Path, d: dict, word: str, fixed: str, published: str) -> Path:
    """Accuracy curves and the largest tolerated ``nvw`` over the ``word`` ("weight" or
    "activation") precisions at the ``fixed`` other one; ``published``: the title's claim."""
    plt = pyplot()
    xs = d["w_bits"] if word == "weight" else d["a_bits"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9.5, 3.8), dpi=110)
    _curves(a1, d["curves"], "nvw = σ / (G_max − G_min)")
    a1.set_title(f"accuracy vs weight variation ({fixed}; dotted: threshold)", fontsize=8)
    _largest(a2, xs, d["largest"], d["censored"], fixed, "C0")
    sd = d.get("seeded")
    if sd and sd["trend_interval"]["n"] > 1:
        _errorbar(
            a2, np.asarray(xs) + 0.1, sd["largest_interval"], 1.0, fmt="s", color="C3",
            label=f"mean of {len(sd['seeds'])} seeds ± 95 %",
        )  # fmt: skip
        a2.legend(fontsize=7)
    a2.set_xlabel(f"{word} bits")
    a2.set_ylabel("largest tolerated nvw")
    a2.set_title(f"{published}\n(triangles: never fell below the threshold)", fontsize=8)
    a2.grid(alpha=0.3)
    fig.suptitle(subtitle(rep), fontsize=8)
    return save_png(fig, path)


def robustness_nvw(rep: Report, path: Path) -> Path:
    d = rep["robustness"]["nvw"]
    return _nvw_figure(
        rep,
        path,
        d,
        "weight",
        f"A{d['a_bits']}",
        "published: lower weight precision is more robust",
    )


def robustness_nvw_by_a(rep: Report, path: Path) -> Path:
    d = rep["robustness"]["nvw_by_a"]
    return _nvw_figure(
        rep,
        path,
        d,
        "activation",
        f"W{d['w_bits']}",
        "published (Fig. 3B): no distinct tendency with activation precision",
    )


def robustness_nva(rep: Report, path: Path) -> Path:
    plt = pyplot()
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
    sd = d.get("seeded")
    if sd and sd["trend_interval"]["n"] > 1:
        _errorbar(
            a2, np.asarray(d["a_bits"]) + 0.1, sd["largest_interval"], 1.0, fmt="s",
            color="C7", label=f"W{d['seeded_w_bits']}, mean of {len(sd['seeds'])} seeds ± 95 %",
        )  # fmt: skip
    a2.set_yscale("log")
    a2.set_xlabel("activation bits")
    a2.set_ylabel("largest tolerated nva")
    a2.set_title(
        "published: lower activation precision is more robust,\nweight precision barely matters",
        fontsize=8,
    )
    a2.grid(alpha=0.3)
    a2.legend(fontsize=7)
    fig.suptitle(subtitle(rep), fontsize=8)
    return save_png(fig, path)
