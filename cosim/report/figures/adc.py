"""The ADC-architecture figure (8): energy per conversion and accuracy of each plug-in."""

from __future__ import annotations

from pathlib import Path

from cosim.report.figures.common import Report, pyplot, save_png, subtitle


def adc_architectures(rep: Report, path: Path) -> Path:
    plt = pyplot()
    d = rep["adc_architectures"]
    bits = d["bits"]
    fig, (ax_e, ax_a) = plt.subplots(1, 2, figsize=(9.5, 3.8), dpi=110)
    for j, (name, a) in enumerate(d["architectures"].items()):
        e = [None if x is None else x * 1e15 for x in a["energy_per_conversion_j"]]
        ax_e.plot(bits, e, "o-", color=f"C{j}", label=name)
        mean = [x * 100 for x in a["accuracy"]]
        lo = [m - min(c) * 100 for m, c in zip(mean, a["accuracy_per_chip"], strict=True)]
        hi = [max(c) * 100 - m for m, c in zip(mean, a["accuracy_per_chip"], strict=True)]
        ax_a.errorbar(bits, mean, yerr=[lo, hi], marker="o", capsize=3, color=f"C{j}", label=name)
    ax_a.plot(bits, [x * 100 for x in d["software_accuracy"]], "k:", marker="x", label="software")
    ax_e.set_yscale("log")
    ax_e.set_xlabel("ADC bits (= activation bits)")
    ax_e.set_ylabel("energy per conversion (fJ)")
    ax_e.set_title("SPICE-fitted converters, through the engine's counts", fontsize=8)
    ax_a.set_xlabel("activation bits")
    ax_a.set_ylabel("accuracy (%), range over chips")
    ax_a.set_title(f"W{d['w_bits']}, every non-ideality on, {d['chips']} chips", fontsize=8)
    for ax in (ax_e, ax_a):
        ax.set_xticks(bits)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(subtitle(rep), fontsize=8)
    return save_png(fig, path)
