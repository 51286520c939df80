"""The shared-periphery sections of ``report.md``: savings of unipolar filters (6) and the
accuracy they cost (7)."""

from __future__ import annotations

from cosim.report.markdown.common import Report, block, net, pct, pub


def periphery(rep: Report) -> str:
    d = rep["periphery_savings"]
    ours = (
        "; ".join(
            f"{f} ({v['dataset']}, unipolar {v['unipolar_fraction']:g}): "
            f"{pct(v['area_fraction_saved'])} area and {pct(v['energy_fraction_saved'])} energy "
            f"saved (shared periphery alone: {pct(v['area_fraction_saved_shared_only'])} / "
            f"{pct(v['energy_fraction_saved_shared_only'])})"
            for f, v in d.items()
        )
        + "."
    )
    why = (
        "traditional = per-layer STE W4A3 model on dedicated per-layer periphery with "
        "differential columns and subtractors; proposed = global W4A3 with unipolar filters "
        "on one shared periphery bank; areas and energies come from the card's component "
        "figures and the engine's counts (shared periphery saves area, not energy per "
        "operation); the paper used HAR and CIFAR-10 networks and custom 55 nm converters."
    )
    rows = [
        [
            "model",
            "area saved",
            "energy saved",
            "accuracy trad. / proposed (integer)",
            "on the chip (engine)",
            "published",
        ]
    ]
    for f, v in d.items():
        rows.append(
            [
                f"{f} ({v['dataset']})",
                pct(v["area_fraction_saved"]),
                pct(v["energy_fraction_saved"]),
                f"{pct(v['accuracy']['traditional'])} / {pct(v['accuracy']['proposed'])}",
                f"{pct(v['engine_accuracy']['traditional'])} / "
                f"{pct(v['engine_accuracy']['proposed'])}",
                "up to 80 % / 45 % area / energy (v2: 67 % / 40 %)",
            ]
        )
    return block("fig6_periphery_savings.png", pub("periphery_savings"), ours, why, rows)


def unipolar(rep: Report) -> str:
    d = rep["unipolar_tradeoff"]
    fr = d["fractions"]
    a0 = d["accuracy"][0]
    near = min(range(len(fr)), key=lambda i: abs(fr[i] - 0.4))
    ours = (
        f"at {fr[near]:g} unipolar: {pct(d['accuracy'][near], 2)} vs {pct(a0, 2)} all-bipolar "
        f"({(d['accuracy'][near] - a0) * 100:+.2f} points), area {pct(d['area_relative'][near])}"
        f" and energy {pct(d['energy_relative'][near])} of all-bipolar; all unipolar: "
        f"{pct(d['accuracy'][-1], 2)}."
    )
    why = (
        f"{net(rep)} ({d['hidden_filters']} hidden filters, {d['epochs']} epochs) instead of the "
        "six-conv CNN on CIFAR-10; filters chosen by cosim's measured-sensitivity search; "
        "accuracy on the chip, area and energy from one evaluation on the engine's default "
        "chip (shared periphery, every non-ideality on); with every filter unipolar the "
        "chip loses more to programming noise and IR drop, which no differential pair "
        "cancels."
    )
    rows = [["unipolar fraction", *[f"{f:g}" for f in fr]]]
    rows.append(["accuracy", *[pct(a, 2) for a in d["accuracy"]]])
    rows.append(["engine accuracy", *[pct(a, 2) for a in d["engine_accuracy"]]])
    rows.append(["area (rel.)", *[pct(a) for a in d["area_relative"]]])
    rows.append(["energy (rel.)", *[pct(a) for a in d["energy_relative"]]])
    return block("fig7_unipolar_tradeoff.png", pub("unipolar_tradeoff"), ours, why, rows)
